"""The store turns a database that cannot be used into the domain's UnavailableError, once,
at the unit of work, so no layer above it handles a driver exception.

No mock: the databases are real files that cannot be opened or have no schema.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import DBAPIError

from autosettle.domain.errors import ErrorCode, UnavailableError
from autosettle.services import database
from autosettle.store.engine import normalize_url
from autosettle.store.uow import Database


def _unopenable(tmp_path: Path) -> Database:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the database directory should be")
    url = f"sqlite:///{blocker}/autosettle.db"
    db = Database.__new__(Database)  # Database() would create the SQLite directory: skip it
    db.url = url
    db.engine = create_engine(normalize_url(url))
    return db


def test_unreachable_database_is_unavailable(tmp_path: Path) -> None:
    db = _unopenable(tmp_path)
    try:
        with pytest.raises(UnavailableError) as caught, db.unit_of_work():
            pass
        assert caught.value.code is ErrorCode.UNAVAILABLE
        assert isinstance(caught.value.__cause__, DBAPIError)
        assert not db.ping()
    finally:
        db.dispose()


def test_missing_schema_is_unavailable(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/empty.db")  # never upgraded: no tables
    try:
        with pytest.raises(UnavailableError, match="OperationalError"), \
                db.unit_of_work() as uow:
            uow.merchants.get("M000000000000001")
    finally:
        db.dispose()


def test_revision_before_and_after_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/fresh.db"
    assert database.current_revision(url) is None
    database.upgrade(url)
    assert database.current_revision(url) is not None
