"""recon_matches found by the id range on the day's row, not by an index by day

Revision ID: 0016
Revises: 0014
Create Date: 2026-12-04 11:45:00.000000

Written by hand; ``tests/terminal_host/test_schema.py`` checks it against ``tables.py``.
A run writes a day's matches together (a million rows a day), and they are only ever found
again to be replaced by the day's next run. ``recon_days`` keeps the id range of the day's
rows (``first_match_id`` .. ``last_match_id``), found through the primary key; the index
by (channel, business_date), a million entries to maintain per day written, goes. A day
reconciled before this migration gets the range of its rows here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("recon_days", sa.Column("first_match_id", sa.BigInteger(), nullable=True))
    op.add_column("recon_days", sa.Column("last_match_id", sa.BigInteger(), nullable=True))
    # the days reconciled already get the range of their rows (found by the index, which
    # goes after); a range may span other days' rows: a day's rows are always also
    # selected by channel and date
    for column, bound in (("first_match_id", "min"), ("last_match_id", "max")):
        op.execute(
            f"UPDATE recon_days SET {column} = (SELECT {bound}(m.match_id) FROM recon_matches m "
            "WHERE m.channel = recon_days.channel "
            "AND m.business_date = recon_days.business_date)")
    op.drop_index("ix_recon_matches_day", table_name="recon_matches")


def downgrade() -> None:
    with op.batch_alter_table("recon_days") as batch:
        batch.drop_column("last_match_id")
        batch.drop_column("first_match_id")
    op.create_index("ix_recon_matches_day", "recon_matches", ["channel", "business_date"])
