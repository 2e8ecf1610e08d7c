"""Migration 0004 (written by hand) creates exactly the terminal host tables of tables.py."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from autosettle.store.engine import make_engine
from autosettle.store.tables import metadata

HOST_TABLES = {"terminal_keys", "terminal_state", "terminal_settlements",
               "terminal_upload_items", "terminal_batch_flags"}


def _table_of(diff: Any) -> str | None:
    """The table a compare_metadata difference is about."""
    if isinstance(diff, list):  # column modifications come as a list of tuples
        return _table_of(diff[0])
    for item in diff[1:]:
        name = getattr(item, "name", None) if not isinstance(item, str) else None
        table = getattr(item, "table", None)
        if table is not None and hasattr(table, "name"):
            return str(table.name)
        if name in HOST_TABLES:
            return str(name)
    if len(diff) > 2 and isinstance(diff[2], str):
        return diff[2]
    return None


def test_migration_matches_tables(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = compare_metadata(context, metadata)
            names = set(engine.dialect.get_table_names(conn))
    finally:
        engine.dispose()
    assert names >= HOST_TABLES
    ours = [d for d in diffs if _table_of(d) in HOST_TABLES]
    assert ours == [], ours
