"""Migration 0007 (written by hand) creates exactly the console tables and the transaction
indexes of tables.py."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from autosettle.store.engine import make_engine
from autosettle.store.tables import metadata

OURS = {"console_users", "console_sessions"}
INDEXES = {"ix_transactions_created", "ix_transactions_merchant_created",
           "ix_transactions_amount", "ix_transactions_auth_code", "ix_console_sessions_user"}


def _mentions(diff: object) -> bool:
    text = repr(diff)
    return any(name in text for name in OURS | INDEXES)


def test_migration_matches_tables(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = compare_metadata(context, metadata)
            names = set(engine.dialect.get_table_names(conn))
            indexes = {i["name"] for t in ("transactions", "console_sessions")
                       for i in engine.dialect.get_indexes(conn, t)}
    finally:
        engine.dispose()
    assert names >= OURS
    assert indexes >= INDEXES
    assert [d for d in diffs if _mentions(d)] == []
