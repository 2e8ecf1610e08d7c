"""printing: printer profiles per terminal and the persisted print queue (issue 14)

Revision ID: 0008
Revises: 0011
Create Date: 2026-12-04 08:00:00.000000

Written by hand; ``tests/printing/test_print_schema.py`` checks it against ``tables.py``.
New tables only: nothing existing changes, so the upgrade is safe under a running fleet.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from autosettle.store.types import BigIntId, UTCDateTime

revision = "0008"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "printer_profiles",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=15), nullable=False),
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("interface", sa.String(length=10), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("width_cols", sa.Integer(), nullable=False),
        sa.Column("encoding", sa.String(length=10), nullable=False),
        sa.Column("copies", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("txn_cursor_at", UTCDateTime(), nullable=False),
        sa.Column("settlement_cursor_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["merchant_id", "terminal_id"],
                                ["terminals.merchant_id", "terminals.terminal_id"],
                                name=op.f("fk_printer_profiles_merchant_id_terminals")),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_printer_profiles")),
        sa.UniqueConstraint("merchant_id", "terminal_id", name=op.f("uq_printer_profiles_terminal")),
        sa.CheckConstraint("interface IN ('network', 'usb', 'serial', 'parallel', 'file')",
                           name=op.f("ck_printer_profiles_interface_known")),
        sa.CheckConstraint("width_cols IN (32, 48)", name=op.f("ck_printer_profiles_width_known")),
        sa.CheckConstraint("copies BETWEEN 1 AND 3", name=op.f("ck_printer_profiles_copies_range")),
    )
    op.create_table(
        "print_jobs",
        sa.Column("job_id", BigIntId, autoincrement=True, nullable=False),
        sa.Column("job_key", sa.String(length=120), nullable=False),
        sa.Column("printer_name", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=15), nullable=False),
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("copy", sa.String(length=12), nullable=True),
        sa.Column("duplicate", sa.Boolean(), nullable=False),
        sa.Column("txn_id", sa.String(length=32), nullable=True),
        sa.Column("batch_no", sa.String(length=6), nullable=True),
        sa.Column("stan", sa.String(length=6), nullable=True),
        sa.Column("rrn", sa.String(length=12), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("printed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_print_jobs")),
        sa.UniqueConstraint("job_key", name=op.f("uq_print_jobs_job_key")),
        sa.CheckConstraint("state IN ('pending', 'printed', 'cancelled')",
                           name=op.f("ck_print_jobs_state_known")),
        sa.CheckConstraint("kind IN ('receipt', 'decline', 'settlement', 'test')",
                           name=op.f("ck_print_jobs_kind_known")),
    )
    op.create_index("ix_print_jobs_due", "print_jobs", ["state", "next_attempt_at"])
    op.create_index("ix_print_jobs_printer", "print_jobs", ["printer_name", "job_id"])
    op.create_index("ix_print_jobs_txn", "print_jobs", ["merchant_id", "txn_id"])


def downgrade() -> None:
    op.drop_index("ix_print_jobs_txn", table_name="print_jobs")
    op.drop_index("ix_print_jobs_printer", table_name="print_jobs")
    op.drop_index("ix_print_jobs_due", table_name="print_jobs")
    op.drop_table("print_jobs")
    op.drop_table("printer_profiles")
