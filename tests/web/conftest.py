"""Fixtures of the console tests: the API app with the console mounted, as ``autosettle
serve`` builds it, on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from consoletools import ConsoleWorld, build_console_world
from fastapi.testclient import TestClient

from autosettle.api.app import create_app
from autosettle.services.context import ServiceContext
from autosettle.web.app import mount_console


@pytest.fixture
def console(ctx: ServiceContext) -> Iterator[TestClient]:
    app = mount_console(create_app(ctx), ctx)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def world(ctx: ServiceContext) -> ConsoleWorld:
    return build_console_world(ctx)
