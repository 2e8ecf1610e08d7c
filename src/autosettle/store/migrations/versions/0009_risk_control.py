"""risk control: versioned rules, counters, pre-registrations, decisions, merchant scores

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 08:00:00.000000

Written by hand; ``tests/terminal_host/test_schema.py`` checks it against ``tables.py``.
See docs/risk.md. Existing data: no rules are stored (the built-in defaults by merchant type
apply); counters start at zero, so sales made before this revision do not count.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from autosettle.store.types import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_index("ix_transactions_card_recent", "transactions",
                    ["card_token", "created_at"], unique=False)
    op.create_table(
        "risk_rules",
        sa.Column("seq", _ID, autoincrement=True, nullable=False),
        sa.Column("rule_id", sa.String(length=80), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("scope_value", sa.String(length=40), nullable=True),
        sa.Column("card_kind", sa.String(length=10), nullable=True),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("stamp", sa.String(length=32), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_risk_rules")),
        sa.UniqueConstraint("rule_id", "version", name="uq_risk_rules_version"),
    )
    op.create_table(
        "risk_counters",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("bucket", sa.String(length=12), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("txn_count", sa.Integer(), nullable=False),
        sa.Column("limit_amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("limit_count", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("key", "bucket", name=op.f("pk_risk_counters")),
    )
    op.create_table(
        "risk_preregistrations",
        sa.Column("prereg_id", _ID, autoincrement=True, nullable=False),
        sa.Column("merchant_id", sa.String(length=15), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("valid_from", UTCDateTime(), nullable=False),
        sa.Column("valid_to", UTCDateTime(), nullable=False),
        sa.Column("terminal_id", sa.String(length=8), nullable=True),
        sa.Column("card_last4", sa.String(length=4), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("used_txn_id", sa.String(length=32), nullable=True),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("amount_minor > 0",
                           name=op.f("ck_risk_preregistrations_prereg_amount_positive")),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.merchant_id"],
                                name=op.f("fk_risk_preregistrations_merchant_id_merchants")),
        sa.PrimaryKeyConstraint("prereg_id", name=op.f("pk_risk_preregistrations")),
    )
    op.create_index("ix_risk_preregistrations_merchant", "risk_preregistrations",
                    ["merchant_id", "status", "valid_to"], unique=False)
    op.create_table(
        "risk_decisions",
        sa.Column("txn_id", sa.String(length=32), nullable=False),
        sa.Column("merchant_id", sa.String(length=15), nullable=False),
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("decision", sa.String(length=10), nullable=False),
        sa.Column("response_code", sa.String(length=2), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("reason_en", sa.String(length=200), nullable=False),
        sa.Column("reason_zh", sa.String(length=200), nullable=False),
        sa.Column("fired", sa.Text(), nullable=False),
        sa.Column("preregistration_id", sa.BigInteger(), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("txn_id", name=op.f("pk_risk_decisions")),
    )
    op.create_index("ix_risk_decisions_merchant", "risk_decisions",
                    ["merchant_id", "created_at"], unique=False)
    op.create_index("ix_risk_decisions_decision", "risk_decisions",
                    ["decision", "created_at"], unique=False)
    op.create_table(
        "risk_merchant_scores",
        sa.Column("merchant_id", sa.String(length=15), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("on_review", sa.Boolean(), nullable=False),
        sa.Column("released_at", UTCDateTime(), nullable=True),
        sa.Column("released_by", sa.String(length=100), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("merchant_id", "business_date",
                                name=op.f("pk_risk_merchant_scores")),
    )
    op.create_index("ix_risk_merchant_scores_review", "risk_merchant_scores",
                    ["on_review", "business_date"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_risk_merchant_scores_review", table_name="risk_merchant_scores")
    op.drop_table("risk_merchant_scores")
    op.drop_index("ix_risk_decisions_decision", table_name="risk_decisions")
    op.drop_index("ix_risk_decisions_merchant", table_name="risk_decisions")
    op.drop_table("risk_decisions")
    op.drop_index("ix_risk_preregistrations_merchant", table_name="risk_preregistrations")
    op.drop_table("risk_preregistrations")
    op.drop_table("risk_counters")
    op.drop_table("risk_rules")
    op.drop_index("ix_transactions_card_recent", table_name="transactions")
