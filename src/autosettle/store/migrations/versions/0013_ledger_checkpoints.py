"""ledger balance checkpoints: a balance read no longer sums the whole history

Revision ID: 0013
Revises: 0010
Create Date: 2026-12-04 09:20:00.000000

Written by hand; ``tests/terminal_host/test_schema.py`` checks it against ``tables.py``.
``ledger_checkpoints`` holds, per checkpoint (``through_entry_id``, a high-water mark of
journal entry ids), the balance of every account with lines up to that mark. It is derived
and rebuildable (``autosettle ledger checkpoint``); a balance is the newest checkpoint plus
the account's lines above its mark (docs/ledger.md, "Balance checkpoints"). It starts empty:
until the first checkpoint, balances are the full sums as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from autosettle.store.types import UTCDateTime

revision = "0013"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_checkpoints",
        sa.Column("through_entry_id", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("account_code", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("merchant_id", sa.String(15), nullable=True),
        sa.Column("balance_minor", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("through_entry_id", "account_code", "currency"),
    )
    op.create_index("ix_ledger_checkpoints_merchant", "ledger_checkpoints",
                    ["merchant_id", "through_entry_id"])


def downgrade() -> None:
    op.drop_index("ix_ledger_checkpoints_merchant", table_name="ledger_checkpoints")
    op.drop_table("ledger_checkpoints")
