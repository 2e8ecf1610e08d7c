"""reconciliation: imported files and lines, matches, discrepancies, business dates

Revision ID: 0010
Revises: 0012
Create Date: 2026-12-04 08:00:00.000000

Rendered by Alembic's autogenerate from ``tables.py`` (issue 12, docs/reconciliation.md).
New tables only; nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from autosettle.store.types import UTCDateTime

revision = "0010"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recon_days",
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("matched_count", sa.Integer(), nullable=False),
        sa.Column("cleared_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("run_at", UTCDateTime(), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("closed_by", sa.String(length=100), nullable=True),
        sa.CheckConstraint(
            "state IN ('open', 'reconciled', 'closed')", name=op.f("ck_recon_days_state_known")
        ),
        sa.PrimaryKeyConstraint("channel", "business_date", name=op.f("pk_recon_days")),
    )
    op.create_table(
        "recon_discrepancies",
        sa.Column(
            "discrepancy_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("klass", sa.String(length=20), nullable=False),
        sa.Column("merchant_id", sa.String(length=15), nullable=True),
        sa.Column("txn_id", sa.String(length=32), nullable=True),
        sa.Column("line_id", sa.BigInteger(), nullable=True),
        sa.Column("our_amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("their_amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("our_fee_minor", sa.BigInteger(), nullable=True),
        sa.Column("their_fee_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=True),
        sa.Column("resolution", sa.String(length=20), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("entry_key", sa.String(length=200), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "state IN ('open', 'resolved')", name=op.f("ck_recon_discrepancies_state_known")
        ),
        sa.PrimaryKeyConstraint("discrepancy_id", name=op.f("pk_recon_discrepancies")),
    )
    op.create_index(
        "ix_recon_discrepancies_day",
        "recon_discrepancies",
        ["channel", "business_date", "state"],
        unique=False,
    )
    op.create_index("ix_recon_discrepancies_txn", "recon_discrepancies", ["txn_id"], unique=False)
    op.create_table(
        "recon_files",
        sa.Column(
            "file_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("file_name", sa.String(length=200), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("file_date", sa.Date(), nullable=True),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("bad_count", sa.Integer(), nullable=False),
        sa.Column("imported_at", UTCDateTime(), nullable=False),
        sa.Column("imported_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("file_id", name=op.f("pk_recon_files")),
        sa.UniqueConstraint("source", "content_hash", name="uq_recon_files_hash"),
    )
    op.create_index("ix_recon_files_date", "recon_files", ["channel", "file_date"], unique=False)
    op.create_table(
        "recon_lines",
        sa.Column(
            "line_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("file_id", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("file_date", sa.Date(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("txn_type", sa.String(length=20), nullable=True),
        sa.Column("line_date", sa.Date(), nullable=True),
        sa.Column("txn_at_s", sa.BigInteger(), nullable=True),
        sa.Column("merchant_id", sa.String(length=15), nullable=True),
        sa.Column("terminal_id", sa.String(length=8), nullable=True),
        sa.Column("order_ref", sa.String(length=32), nullable=True),
        sa.Column("rrn", sa.String(length=12), nullable=True),
        sa.Column("trace", sa.String(length=6), nullable=True),
        sa.Column("batch_no", sa.String(length=6), nullable=True),
        sa.Column("pan_last4", sa.String(length=4), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("fee_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("result", sa.String(length=10), nullable=True),
        sa.Column("reason", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("line_id", name=op.f("pk_recon_lines")),
    )
    op.create_index("ix_recon_lines_day", "recon_lines", ["channel", "file_date"], unique=False)
    op.create_index("ix_recon_lines_file", "recon_lines", ["file_id"], unique=False)
    op.create_table(
        "recon_matches",
        sa.Column(
            "match_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("merchant_id", sa.String(length=15), nullable=True),
        sa.Column("txn_id", sa.String(length=32), nullable=False),
        sa.Column("line_id", sa.BigInteger(), nullable=False),
        sa.Column("rule", sa.String(length=10), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.PrimaryKeyConstraint("match_id", name=op.f("pk_recon_matches")),
    )
    op.create_index(
        "ix_recon_matches_day", "recon_matches", ["channel", "business_date"], unique=False
    )
    op.create_table(
        "recon_quarantine",
        sa.Column("file_id", sa.BigInteger(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("file_id", "line_no", name=op.f("pk_recon_quarantine")),
    )


def downgrade() -> None:
    op.drop_table("recon_quarantine")
    op.drop_index("ix_recon_matches_day", table_name="recon_matches")
    op.drop_table("recon_matches")
    op.drop_index("ix_recon_lines_file", table_name="recon_lines")
    op.drop_index("ix_recon_lines_day", table_name="recon_lines")
    op.drop_table("recon_lines")
    op.drop_index("ix_recon_files_date", table_name="recon_files")
    op.drop_table("recon_files")
    op.drop_index("ix_recon_discrepancies_txn", table_name="recon_discrepancies")
    op.drop_index("ix_recon_discrepancies_day", table_name="recon_discrepancies")
    op.drop_table("recon_discrepancies")
    op.drop_table("recon_days")
