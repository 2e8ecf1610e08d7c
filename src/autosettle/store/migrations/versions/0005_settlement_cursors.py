"""settlement: batch membership by cursor instead of writing batch_id on every item

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 03:00:00.000000

Written by hand; ``tests/terminal_host/test_schema.py`` checks it against ``tables.py``.

Until now a run marked every item it settled (``UPDATE settlement_items SET batch_id``),
which rewrote each row and two of its indexes: settling a million items cost 25x (SQLite)
to 155x (PostgreSQL) one ``GROUP BY`` over them. Now each (merchant, cycle) has a cursor
(through_date, through_item_id); a batch covers the items inside its new cursor and outside
the old one, and records both. Items stay as written. Held items a cursor passes are listed
in ``settlement_carried`` until a later batch takes them.

Existing data: each (merchant, cycle)'s cursor is set to cover every item already in a
batch (the latest due date and the highest item id among them); unsettled items that fall
inside it are listed as carried, so the next run settles them. Items keep ``batch_id`` for
those old batches.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from autosettle.store.types import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_RECORDED = ["merchant_id", "cycle", "item_id", "due_date", "held", "currency",
             "amount_minor", "fee_minor"]


def upgrade() -> None:
    op.create_table(
        "settlement_cursors",
        sa.Column("merchant_id", sa.String(length=15), nullable=False),
        sa.Column("cycle", sa.String(length=4), nullable=False),
        sa.Column("through_date", sa.Date(), nullable=False),
        sa.Column("through_item_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("merchant_id", "cycle", name=op.f("pk_settlement_cursors")),
    )
    op.create_table(
        "settlement_carried",
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("merchant_id", sa.String(length=15), nullable=False),
        sa.Column("cycle", sa.String(length=4), nullable=False),
        sa.Column("carried_at", UTCDateTime(), nullable=False),
        sa.Column("batch_id", sa.String(length=48), nullable=True),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_settlement_carried")),
    )
    op.create_index("ix_settlement_carried_open", "settlement_carried",
                    ["merchant_id", "batch_id"], unique=False)
    with op.batch_alter_table("settlement_batches") as batch:
        batch.add_column(sa.Column("from_date", sa.Date(), nullable=True))
        batch.add_column(sa.Column("from_item_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("through_date", sa.Date(), nullable=True))
        batch.add_column(sa.Column("through_item_id", sa.BigInteger(), nullable=True))
    op.create_index("ix_settlement_batches_cursor", "settlement_batches",
                    ["merchant_id", "cycle", "through_item_id"], unique=False)
    op.drop_index("ix_settlement_items_due", table_name="settlement_items")
    op.drop_index("ix_settlement_items_open", table_name="settlement_items")
    op.create_index("ix_settlement_items_recorded", "settlement_items", _RECORDED, unique=False)
    op.create_index("ix_settlement_items_due", "settlement_items",
                    ["merchant_id", "cycle", "due_date"], unique=False)
    op.execute(
        "INSERT INTO settlement_cursors (merchant_id, cycle, through_date, through_item_id, "
        "updated_at) SELECT merchant_id, cycle, MAX(due_date), MAX(item_id), MAX(created_at) "
        "FROM settlement_items WHERE batch_id IS NOT NULL GROUP BY merchant_id, cycle")
    op.execute(
        "INSERT INTO settlement_carried (item_id, merchant_id, cycle, carried_at, batch_id) "
        "SELECT i.item_id, i.merchant_id, i.cycle, c.updated_at, NULL FROM settlement_items i "
        "JOIN settlement_cursors c ON c.merchant_id = i.merchant_id AND c.cycle = i.cycle "
        "WHERE i.batch_id IS NULL AND i.due_date <= c.through_date "
        "AND i.item_id <= c.through_item_id")


def downgrade() -> None:
    op.drop_index("ix_settlement_items_due", table_name="settlement_items")
    op.drop_index("ix_settlement_items_recorded", table_name="settlement_items")
    op.create_index("ix_settlement_items_open", "settlement_items",
                    ["batch_id", "due_date", "cycle"], unique=False)
    op.create_index("ix_settlement_items_due", "settlement_items",
                    ["merchant_id", "batch_id", "due_date"], unique=False)
    op.drop_index("ix_settlement_batches_cursor", table_name="settlement_batches")
    with op.batch_alter_table("settlement_batches") as batch:
        batch.drop_column("through_item_id")
        batch.drop_column("through_date")
        batch.drop_column("from_item_id")
        batch.drop_column("from_date")
    op.drop_index("ix_settlement_carried_open", table_name="settlement_carried")
    op.drop_table("settlement_carried")
    op.drop_table("settlement_cursors")
