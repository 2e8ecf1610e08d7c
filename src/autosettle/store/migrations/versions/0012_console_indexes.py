"""console indexes: the console's searches and merchant page on a year of data

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-04 09:00:00.000000

Written by hand; ``tests/terminal_host/test_schema.py`` checks it against ``tables.py``.
Measured by ``python -m bench console`` (bench/console.py) on about 2,000,000 transactions
of the three demo merchants (see the console benchmark's notes in docs/console.md):

- The transaction search is newest first (``ORDER BY created_at DESC, txn_id DESC LIMIT
  50``). SQLite, which is never ANALYZEd, prefers an index that gives that order (the
  console's ``(merchant_id, created_at, txn_id)``) to one that finds the few rows asked for,
  so a merchant's search by last 4 digits, RRN, auth code or trace walked all of the
  merchant's transactions (over a second on half the data), and an operator's (no merchant)
  walked every transaction. Each searched field now leads an index that goes on with the
  merchant and the order: ``(field, merchant_id, created_at, txn_id)``; an operator's search
  sorts the few rows of one value, a merchant's reads them in order. The last-4, RRN and auth
  code indexes replace ``(merchant_id, pan_last4)``, ``(rrn)`` and 0007's ``(auth_code)``
  (same names).
- A transaction's chain: its follow-ups are read by ``(merchant_id, original_txn_id)`` in
  time order, which SQLite also read through the newest-first index (all of the merchant's
  transactions); the index now ends with ``created_at`` (same name). An operator opens a
  transaction by its id alone (the primary key leads with the merchant): ``(txn_id)``, else
  every page of a transaction was a full scan on both databases.
- The merchant page sums the merchant's journal lines per account (balances are derived,
  never stored): ``(merchant_id, account_code, currency, amount_minor)`` answers it from the
  index alone, in group order, and replaces ``(merchant_id)`` (same name; the reports'
  ``(merchant_id, entry_id)`` serves lookups by merchant too).
- The cycle comparison on the merchant page sums 30 days of the merchant's captures per day:
  ``settlement_items (merchant_id, kind, business_date, currency, amount_minor, fee_minor)``
  answers it from the index alone.
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0009"  # re-chained at merge: 0007 → 0011 → 0008 → 0009 → 0012
branch_labels = None
depends_on = None

_REPLACED = (  # name, table, columns before, columns after
    ("ix_transactions_last4", "transactions", ["merchant_id", "pan_last4"],
     ["pan_last4", "merchant_id", "created_at", "txn_id"]),
    ("ix_transactions_rrn", "transactions", ["rrn"],
     ["rrn", "merchant_id", "created_at", "txn_id"]),
    ("ix_transactions_original", "transactions", ["merchant_id", "original_txn_id"],
     ["merchant_id", "original_txn_id", "created_at"]),
    ("ix_transactions_auth_code", "transactions", ["auth_code"],
     ["auth_code", "merchant_id", "created_at", "txn_id"]),
    ("ix_journal_lines_merchant", "journal_lines", ["merchant_id"],
     ["merchant_id", "account_code", "currency", "amount_minor"]),
)
_NEW = (
    ("ix_transactions_txn_id", "transactions", ["txn_id"]),
    ("ix_transactions_trace", "transactions", ["stan", "merchant_id", "created_at", "txn_id"]),
    ("ix_settlement_items_captures", "settlement_items",
     ["merchant_id", "kind", "business_date", "currency", "amount_minor", "fee_minor"]),
)


def upgrade() -> None:
    for name, table, _, after in _REPLACED:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, after)
    for name, table, columns in _NEW:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(_NEW):
        op.drop_index(name, table_name=table)
    for name, table, before, _ in reversed(_REPLACED):
        op.drop_index(name, table_name=table)
        op.create_index(name, table, before)
