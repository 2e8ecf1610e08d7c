"""A fresh database at an older migration revision, for tests of a migration on the data
written before it (SQLite file or a PostgreSQL database of its own, dropped afterwards)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from autosettle.store import migrate
from autosettle.store.engine import normalize_url

PG_URL_ENV = "AUTOSETTLE_TEST_POSTGRES_URL"


def database_at(revision: str, kind: str, tmp_path: Path, tag: str) -> Iterator[str]:
    """Yield the URL of a new database migrated to ``revision`` (``kind``: "sqlite" or
    "postgres"; ``tag`` names the PostgreSQL database, with the worker and process)."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'legacy.db'}"
        migrate.upgrade(url, revision)
        yield url
        return
    base = os.environ.get(PG_URL_ENV)
    if not base:
        pytest.skip(f"PostgreSQL not configured ({PG_URL_ENV})")
    base_url = make_url(normalize_url(base))
    name = f"autosettle_{tag}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base_url.set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url, revision)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
