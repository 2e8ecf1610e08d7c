"""reports: indexes for the report queries (statement pages, one-day and period sums)

Revision ID: 0011
Revises: 0007
Create Date: 2026-12-04 08:00:00.000000

Written by hand; ``tests/terminal_host/test_schema.py`` checks it against ``tables.py``.

- ``journal_lines (merchant_id, entry_id)``: a statement reads a merchant's lines page by
  page in entry order (keyset on entry_id); without it every page scans all the merchant's
  lines again.
- ``transactions (business_date)``: the daily summary and terminal health of every merchant
  read one business date (the existing index leads with the merchant).
- ``settlement_items (business_date)``: the fee analysis and daily summary sum the items of a
  period across merchants.
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0007"  # re-chained after 0007 (console) when wt-console merged wt-reports
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_journal_lines_merchant_entry", "journal_lines", ["merchant_id", "entry_id"]),
    ("ix_transactions_day", "transactions", ["business_date"]),
    ("ix_settlement_items_day", "settlement_items", ["business_date"]),
)


def upgrade() -> None:
    for name, table, columns in _INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(_INDEXES):
        op.drop_index(name, table_name=table)
