"""Table definitions (SQLAlchemy Core). Migrations in ``migrations/`` create exactly these."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from autosettle.store.types import BigIntId, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

merchants = Table(
    "merchants", metadata,
    Column("merchant_id", String(15), primary_key=True),
    Column("legal_name", String(200), nullable=False),
    Column("short_name", String(60), nullable=False),
    Column("merchant_type", String(20), nullable=False),
    Column("mcc", String(4), nullable=False),
    Column("status", String(20), nullable=False),
    Column("settlement_cycle", String(4), nullable=False),
    Column("single_limit_minor", BigInteger, nullable=True),
    Column("currency", String(3), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("length(merchant_id) = 15", name="merchant_id_len"),
    CheckConstraint("single_limit_minor IS NULL OR single_limit_minor > 0",
                    name="single_limit_positive"),
)

settlement_accounts = Table(
    "settlement_accounts", metadata,
    Column("merchant_id", String(15), ForeignKey("merchants.merchant_id"), primary_key=True),
    Column("account_id", String(32), primary_key=True),
    Column("bank_name", String(100), nullable=False),
    Column("bank_code", String(20), nullable=True),
    Column("account_number_sealed", LargeBinary, nullable=False),
    Column("account_number_masked", String(40), nullable=False),
    Column("account_number_digest", String(64), nullable=False),
    Column("holder_name", String(200), nullable=False),
    Column("account_type", String(20), nullable=False),
    Column("verified", Boolean, nullable=False),
    Column("status", String(20), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

terminals = Table(
    "terminals", metadata,
    Column("merchant_id", String(15), ForeignKey("merchants.merchant_id"), primary_key=True),
    Column("terminal_id", String(8), primary_key=True),
    Column("serial_no", String(40), nullable=False),
    Column("model", String(40), nullable=False),
    Column("status", String(20), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("length(terminal_id) = 8", name="terminal_id_len"),
)

api_keys = Table(
    "api_keys", metadata,
    Column("key_id", String(24), primary_key=True),
    Column("secret_digest", String(64), nullable=False),
    Column("role", String(20), nullable=False),
    Column("merchant_id", String(15), nullable=True),
    Column("terminal_id", String(8), nullable=True),
    Column("name", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    ForeignKeyConstraint(["merchant_id"], ["merchants.merchant_id"]),
    ForeignKeyConstraint(["merchant_id", "terminal_id"],
                         ["terminals.merchant_id", "terminals.terminal_id"]),
)

journal_entries = Table(
    "journal_entries", metadata,
    Column("entry_id", BigIntId, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("fingerprint", String(64), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("merchant_id", String(15), nullable=True),
    Column("reference", String(100), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)

journal_lines = Table(
    "journal_lines", metadata,
    Column("line_id", BigIntId, primary_key=True, autoincrement=True),
    Column("entry_id", BigInteger, ForeignKey("journal_entries.entry_id"), nullable=False),
    Column("account_code", String(64), nullable=False),
    Column("merchant_id", String(15), nullable=True),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    CheckConstraint("amount_minor <> 0", name="amount_nonzero"),
    CheckConstraint("amount_minor BETWEEN -1000000000000000 AND 1000000000000000",
                    name="amount_range"),
    Index("ix_journal_lines_entry", "entry_id"),
    Index("ix_journal_lines_account", "account_code", "currency"),
    Index("ix_journal_lines_merchant", "merchant_id"),
)

idempotency_records = Table(
    "idempotency_records", metadata,
    Column("scope", String(100), primary_key=True),
    Column("idempotency_key", String(200), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("state", String(20), nullable=False),
    Column("response_status", Integer, nullable=True),
    Column("response_body", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime, nullable=True),
)

audit_log = Table(
    "audit_log", metadata,
    Column("audit_id", BigIntId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("action", String(60), nullable=False),
    Column("resource", String(200), nullable=False),
    Column("origin", String(100), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("detail", Text, nullable=True),
    Index("ix_audit_log_at", "at"),
)

APPEND_ONLY_TABLES = ("journal_entries", "journal_lines", "audit_log")
