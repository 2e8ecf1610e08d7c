"""Migration 0008 (written by hand) creates exactly the printing tables of tables.py."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from autosettle.store.engine import make_engine
from autosettle.store.tables import metadata

PRINT_TABLES = {"printer_profiles", "print_jobs"}


def _mentions_print_table(diff: Any) -> bool:
    if isinstance(diff, list):
        return any(_mentions_print_table(d) for d in diff)
    text = repr(diff)
    return any(f"'{name}'" in text or f"table={name}" in text or f"Table('{name}'" in text
               for name in PRINT_TABLES)


def test_migration_matches_tables(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = compare_metadata(context, metadata)
            names = set(engine.dialect.get_table_names(conn))
    finally:
        engine.dispose()
    assert names >= PRINT_TABLES
    ours = [d for d in diffs if _mentions_print_table(d)]
    assert ours == [], ours
