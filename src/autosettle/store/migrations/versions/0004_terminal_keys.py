"""terminal host: keys, terminal state, batch settlements, batch upload, reconciliation flags

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 10:00:00.000000

Written by hand; ``tests/terminal_host/test_schema.py`` checks it against ``tables.py``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from autosettle.store.types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TERMINAL_FK = (["merchant_id", "terminal_id"], ["terminals.merchant_id", "terminals.terminal_id"])


def upgrade() -> None:
    op.create_table(
        "terminal_keys",
        sa.Column("merchant_id", sa.String(length=15), nullable=False),
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("tmk_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("tmk_kcv", sa.String(length=8), nullable=True),
        sa.Column("tmk_generation", sa.Integer(), nullable=False),
        sa.Column("key_generation", sa.Integer(), nullable=False),
        sa.Column("pik_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("pik_kcv", sa.String(length=8), nullable=True),
        sa.Column("mak_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("mak_kcv", sa.String(length=8), nullable=True),
        sa.Column("tdk_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("tdk_kcv", sa.String(length=8), nullable=True),
        sa.Column("provisioned_at", UTCDateTime(), nullable=True),
        sa.Column("keys_issued_at", UTCDateTime(), nullable=True),
        sa.Column("reset_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('active', 'reset')", name=op.f("ck_terminal_keys_status_known")
        ),
        sa.ForeignKeyConstraint(
            *_TERMINAL_FK, name=op.f("fk_terminal_keys_merchant_id_terminals")
        ),
        sa.PrimaryKeyConstraint("merchant_id", "terminal_id", name=op.f("pk_terminal_keys")),
    )
    op.create_table(
        "terminal_state",
        sa.Column("merchant_id", sa.String(length=15), nullable=False),
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("signed_on", sa.Boolean(), nullable=False),
        sa.Column("mac_algorithm", sa.String(length=10), nullable=False),
        sa.Column("double_length", sa.Boolean(), nullable=False),
        sa.Column("last_sign_on_at", UTCDateTime(), nullable=True),
        sa.Column("last_message_at", UTCDateTime(), nullable=True),
        sa.Column("open_batch_no", sa.String(length=6), nullable=True),
        sa.Column("software_version", sa.String(length=16), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "mac_algorithm IN ('cup_ecb', 'x919')",
            name=op.f("ck_terminal_state_mac_algorithm_known"),
        ),
        sa.ForeignKeyConstraint(
            *_TERMINAL_FK, name=op.f("fk_terminal_state_merchant_id_terminals")
        ),
        sa.PrimaryKeyConstraint("merchant_id", "terminal_id", name=op.f("pk_terminal_state")),
    )
    with op.batch_alter_table("terminal_state", schema=None) as batch_op:
        batch_op.create_index("ix_terminal_state_last_message", ["last_message_at"], unique=False)

    op.create_table(
        "terminal_settlements",
        sa.Column("merchant_id", sa.String(length=15), nullable=False),
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("batch_no", sa.String(length=6), nullable=False),
        sa.Column("terminal_totals", sa.String(length=62), nullable=False),
        sa.Column("host_totals", sa.String(length=62), nullable=False),
        sa.Column("answer_totals", sa.String(length=62), nullable=False),
        sa.Column("verdict", sa.String(length=1), nullable=False),
        sa.Column("upload_state", sa.String(length=10), nullable=False),
        sa.Column("uploaded_count", sa.Integer(), nullable=False),
        sa.Column("settled_at", UTCDateTime(), nullable=False),
        sa.Column("upload_finished_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            *_TERMINAL_FK, name=op.f("fk_terminal_settlements_merchant_id_terminals")
        ),
        sa.PrimaryKeyConstraint(
            "merchant_id", "terminal_id", "batch_no", name=op.f("pk_terminal_settlements")
        ),
    )
    op.create_table(
        "terminal_upload_items",
        sa.Column("merchant_id", sa.String(length=15), nullable=False),
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("batch_no", sa.String(length=6), nullable=False),
        sa.Column("stan", sa.String(length=6), nullable=False),
        sa.Column("card_org", sa.String(length=2), nullable=False),
        sa.Column("pan_masked", sa.String(length=19), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "merchant_id",
            "terminal_id",
            "batch_no",
            "stan",
            name=op.f("pk_terminal_upload_items"),
        ),
    )
    op.create_table(
        "terminal_batch_flags",
        sa.Column(
            "flag_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("merchant_id", sa.String(length=15), nullable=False),
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("batch_no", sa.String(length=6), nullable=False),
        sa.Column("stan", sa.String(length=6), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("terminal_amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("host_amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("txn_id", sa.String(length=32), nullable=True),
        sa.Column("pan_masked", sa.String(length=19), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('terminal_only', 'host_only', 'mismatch')",
            name=op.f("ck_terminal_batch_flags_kind_known"),
        ),
        sa.PrimaryKeyConstraint("flag_id", name=op.f("pk_terminal_batch_flags")),
        sa.UniqueConstraint(
            "merchant_id",
            "terminal_id",
            "batch_no",
            "stan",
            "kind",
            name="uq_terminal_batch_flags_item",
        ),
    )
    with op.batch_alter_table("terminal_batch_flags", schema=None) as batch_op:
        batch_op.create_index(
            "ix_terminal_batch_flags_open", ["merchant_id", "resolved_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("terminal_batch_flags", schema=None) as batch_op:
        batch_op.drop_index("ix_terminal_batch_flags_open")
    op.drop_table("terminal_batch_flags")
    op.drop_table("terminal_upload_items")
    op.drop_table("terminal_settlements")
    with op.batch_alter_table("terminal_state", schema=None) as batch_op:
        batch_op.drop_index("ix_terminal_state_last_message")
    op.drop_table("terminal_state")
    op.drop_table("terminal_keys")
