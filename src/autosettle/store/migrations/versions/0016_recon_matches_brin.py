"""recon_matches: the day's index a BRIN on PostgreSQL (cheap to fill a million rows a day)

Revision ID: 0016
Revises: 0013
Create Date: 2026-12-04 11:20:00.000000

Written by hand; ``tests/terminal_host/test_schema.py`` checks it against ``tables.py``.
A day's matches are written in one go, in order, and only ever found (or replaced) by day:
a block-range index on (channel, business_date) finds them as well as the B-tree did, for a
fraction of the work per row written. SQLite keeps its B-tree (it has no BRIN).
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_recon_matches_day", table_name="recon_matches")
    op.create_index("ix_recon_matches_day", "recon_matches", ["channel", "business_date"],
                    postgresql_using="brin")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_recon_matches_day", table_name="recon_matches")
    op.create_index("ix_recon_matches_day", "recon_matches", ["channel", "business_date"])
