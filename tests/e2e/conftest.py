"""Fixtures of the end-to-end API tests."""

from __future__ import annotations

import pytest
from apitools import World, build_world

from autosettle.services.context import ServiceContext


@pytest.fixture
def world(ctx: ServiceContext) -> World:
    """Two merchants with terminals and accounts, and a key for every kind of caller."""
    return build_world(ctx)
