"""web console: console users and sessions; newest-first transaction indexes

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 08:00:00.000000

Written by hand; ``tests/web/test_schema.py`` checks it against ``tables.py``.

``console_users`` holds the people who log in to the console (operators, and merchant users
bound to one merchant) with argon2id password hashes and their failed-login counter;
``console_sessions`` the server-side sessions, keyed by the SHA-256 digest of the random
session id the browser carries. Two transaction indexes serve the console's newest-first
pages (all merchants, one merchant) without sorting the whole table, two its searches by
amount and by auth code (alone, over a year of transactions).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from autosettle.store.types import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_users",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("username", sa.String(length=60), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("merchant_id", sa.String(length=15), nullable=True),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", UTCDateTime(), nullable=True),
        sa.Column("password_changed_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("(role = 'operator' AND merchant_id IS NULL) OR "
                           "(role = 'merchant' AND merchant_id IS NOT NULL)",
                           name=op.f("ck_console_users_role_scope")),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.merchant_id"],
                                name=op.f("fk_console_users_merchant_id_merchants")),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_console_users")),
        sa.UniqueConstraint("username", name=op.f("uq_console_users_username")),
    )
    op.create_table(
        "console_sessions",
        sa.Column("session_digest", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["console_users.user_id"],
                                name=op.f("fk_console_sessions_user_id_console_users")),
        sa.PrimaryKeyConstraint("session_digest", name=op.f("pk_console_sessions")),
    )
    op.create_index("ix_console_sessions_user", "console_sessions", ["user_id"])
    op.create_index("ix_transactions_created", "transactions", ["created_at", "txn_id"])
    op.create_index("ix_transactions_merchant_created", "transactions",
                    ["merchant_id", "created_at", "txn_id"])
    op.create_index("ix_transactions_amount", "transactions", ["amount_minor"])
    op.create_index("ix_transactions_auth_code", "transactions", ["auth_code"])


def downgrade() -> None:
    op.drop_index("ix_transactions_auth_code", table_name="transactions")
    op.drop_index("ix_transactions_amount", table_name="transactions")
    op.drop_index("ix_transactions_merchant_created", table_name="transactions")
    op.drop_index("ix_transactions_created", table_name="transactions")
    op.drop_index("ix_console_sessions_user", table_name="console_sessions")
    op.drop_table("console_sessions")
    op.drop_table("console_users")
