"""Table definitions (SQLAlchemy Core). Migrations in ``migrations/`` create exactly these."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
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
    Index("ix_journal_entries_reference", "reference"),
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
    # Balances of one merchant from the index alone (migration 0012).
    Index("ix_journal_lines_merchant", "merchant_id", "account_code", "currency", "amount_minor"),
    Index("ix_journal_lines_merchant_entry", "merchant_id", "entry_id"),  # statements
)

# Ledger balance checkpoints (migration 0013): derived, rebuildable. Each checkpoint is the
# balance of every account that has lines up to ``through_entry_id`` (a high-water mark of
# journal entry ids below which every entry is committed); a balance is the newest
# checkpoint plus the lines above its mark (docs/ledger.md, "Balance checkpoints").
ledger_checkpoints = Table(
    "ledger_checkpoints", metadata,
    Column("through_entry_id", BigInteger, primary_key=True, autoincrement=False),
    Column("account_code", String(64), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("merchant_id", String(15), nullable=True),
    Column("balance_minor", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_ledger_checkpoints_merchant", "merchant_id", "through_entry_id"),
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
    Index("ix_audit_log_resource", "resource", "audit_id"),  # an object's history (0014)
)

APPEND_ONLY_TABLES = ("journal_entries", "journal_lines", "audit_log")

# -- payments (issue 3) -----------------------------------------------------------------------

transactions = Table(
    "transactions", metadata,
    Column("merchant_id", String(15), ForeignKey("merchants.merchant_id"), primary_key=True),
    Column("txn_id", String(32), primary_key=True),
    Column("terminal_id", String(8), nullable=False),
    Column("txn_type", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("refunded_minor", BigInteger, nullable=False),
    Column("original_txn_id", String(32), nullable=True),
    Column("card_token", String(64), nullable=True),
    Column("pan_masked", String(19), nullable=True),
    Column("pan_last4", String(4), nullable=True),
    Column("card_brand", String(12), nullable=True),
    Column("card_kind", String(10), nullable=True),
    Column("entry_mode", String(3), nullable=True),
    Column("batch_no", String(6), nullable=False),
    Column("stan", String(6), nullable=False),
    Column("rrn", String(12), nullable=False),
    Column("auth_code", String(6), nullable=True),
    Column("response_code", String(2), nullable=True),
    Column("refusal_reason", String(40), nullable=True),
    Column("channel", String(20), nullable=False),
    Column("channel_ref", String(64), nullable=True),
    Column("idempotency_key", String(200), nullable=True),
    Column("request_fingerprint", String(64), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("expires_on", Date, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("answered_at", UTCDateTime, nullable=True),
    CheckConstraint("amount_minor >= 0", name="amount_not_negative"),
    CheckConstraint("refunded_minor >= 0 AND refunded_minor <= amount_minor",
                    name="refunded_within_amount"),
    UniqueConstraint("merchant_id", "terminal_id", "batch_no", "stan",
                     name="uq_transactions_terminal_trace"),
    UniqueConstraint("merchant_id", "terminal_id", "idempotency_key",
                     name="uq_transactions_terminal_idempotency_key"),
    Index("ix_transactions_business_date", "merchant_id", "business_date"),
    # Searches by one field, newest first, for everyone or one merchant (migration 0012).
    Index("ix_transactions_rrn", "rrn", "merchant_id", "created_at", "txn_id"),
    Index("ix_transactions_last4", "pan_last4", "merchant_id", "created_at", "txn_id"),
    Index("ix_transactions_auth_code", "auth_code", "merchant_id", "created_at", "txn_id"),
    Index("ix_transactions_trace", "stan", "merchant_id", "created_at", "txn_id"),
    Index("ix_transactions_original", "merchant_id", "original_txn_id", "created_at"),
    Index("ix_transactions_txn_id", "txn_id"),  # an operator opens one by its id alone
    Index("ix_transactions_status", "status", "created_at"),
    # The console's newest-first pages (migration 0007): every merchant's, and one's own.
    Index("ix_transactions_created", "created_at", "txn_id"),
    Index("ix_transactions_merchant_created", "merchant_id", "created_at", "txn_id"),
    Index("ix_transactions_amount", "amount_minor"),  # the console's search by amount
    Index("ix_transactions_day", "business_date"),  # reports of every merchant's day
    Index("ix_transactions_card_recent", "card_token", "created_at"),  # risk: velocity
)

terminal_batches = Table(
    "terminal_batches", metadata,
    Column("merchant_id", String(15), primary_key=True),
    Column("terminal_id", String(8), primary_key=True),
    Column("batch_no", String(6), primary_key=True),
    Column("status", String(10), nullable=False),
    Column("next_stan", Integer, nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime, nullable=True),
    ForeignKeyConstraint(["merchant_id", "terminal_id"],
                         ["terminals.merchant_id", "terminals.terminal_id"]),
    Index("ix_terminal_batches_open", "merchant_id", "terminal_id", "status"),
)

pending_reversals = Table(
    "pending_reversals", metadata,
    Column("merchant_id", String(15), primary_key=True),
    Column("txn_id", String(32), primary_key=True),
    Column("channel", String(20), nullable=False),
    Column("reason", String(2), nullable=False),
    Column("state", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", String(200), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("acknowledged_at", UTCDateTime, nullable=True),
    Index("ix_pending_reversals_due", "state", "next_attempt_at"),
)

merchant_payment_rules = Table(
    "merchant_payment_rules", metadata,
    Column("merchant_id", String(15), ForeignKey("merchants.merchant_id"), primary_key=True),
    Column("allowed_txn_types", String(200), nullable=False),
    Column("allowed_card_kinds", String(100), nullable=False),
    Column("completion_ratio_max", String(10), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# -- settlement (issue 4) ---------------------------------------------------------------------

settlement_items = Table(
    "settlement_items", metadata,
    Column("item_id", BigIntId, primary_key=True, autoincrement=True),
    Column("merchant_id", String(15), nullable=False),
    Column("txn_id", String(32), nullable=False),
    Column("source_txn_id", String(32), nullable=False),
    Column("kind", String(12), nullable=False),
    Column("txn_type", String(20), nullable=False),
    Column("card_kind", String(10), nullable=True),
    Column("business_date", Date, nullable=False),
    Column("cycle", String(4), nullable=False),
    Column("due_date", Date, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("fee_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("fee_schedule", String(60), nullable=False),
    Column("held", Boolean, nullable=False),
    # Batches made before migration 0005 only; later membership is the batch's cursor range.
    Column("batch_id", String(48), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("merchant_id", "txn_id", "kind", name="uq_settlement_items_event"),
    # What a run reads: the items recorded since a cursor (covering: no table lookups) ...
    Index("ix_settlement_items_recorded", "merchant_id", "cycle", "item_id", "due_date", "held",
          "currency", "amount_minor", "fee_minor"),
    # ... and the items recorded before it that have fallen due since.
    Index("ix_settlement_items_due", "merchant_id", "cycle", "due_date"),
    Index("ix_settlement_items_source", "merchant_id", "source_txn_id"),
    Index("ix_settlement_items_day", "business_date"),  # reports over a period
    # A merchant's captures per day, from the index alone (cycle comparison; migration 0012).
    Index("ix_settlement_items_captures", "merchant_id", "kind", "business_date", "currency",
          "amount_minor", "fee_minor"),
)

settlement_cursors = Table(
    # How far each merchant's items of a cycle are settled: every item with due_date <=
    # through_date and item_id <= through_item_id is in a batch, except the held ones listed
    # in settlement_carried. Advanced by each batch, in the batch's transaction.
    "settlement_cursors", metadata,
    Column("merchant_id", String(15), primary_key=True),
    Column("cycle", String(4), primary_key=True),
    Column("through_date", Date, nullable=False),
    Column("through_item_id", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

settlement_carried = Table(
    # Items a cursor passed while they were held: settled by a later batch once released.
    "settlement_carried", metadata,
    Column("item_id", BigInteger, primary_key=True),
    Column("merchant_id", String(15), nullable=False),
    Column("cycle", String(4), nullable=False),
    Column("carried_at", UTCDateTime, nullable=False),
    Column("batch_id", String(48), nullable=True),
    Index("ix_settlement_carried_open", "merchant_id", "batch_id"),
)

settlement_batches = Table(
    "settlement_batches", metadata,
    Column("batch_id", String(48), primary_key=True),
    Column("merchant_id", String(15), ForeignKey("merchants.merchant_id"), nullable=False),
    Column("cycle", String(4), nullable=False),
    Column("settlement_date", Date, nullable=False),
    Column("run_key", String(40), nullable=False),
    Column("item_count", Integer, nullable=False),
    Column("gross_minor", BigInteger, nullable=False),
    Column("fee_minor", BigInteger, nullable=False),
    Column("surcharge_minor", BigInteger, nullable=False),
    Column("debt_recovered_minor", BigInteger, nullable=False),
    Column("debt_added_minor", BigInteger, nullable=False),
    Column("payout_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(20), nullable=False),
    Column("expected_arrival", Date, nullable=False),
    Column("entry_id", BigInteger, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    # The cursor before and after this batch: its items are those of the merchant, cycle
    # and currency inside the new cursor and outside the old one (minus carried items),
    # plus carried items that name it. NULL for batches made before migration 0005.
    Column("from_date", Date, nullable=True),
    Column("from_item_id", BigInteger, nullable=True),
    Column("through_date", Date, nullable=True),
    Column("through_item_id", BigInteger, nullable=True),
    UniqueConstraint("merchant_id", "run_key", name="uq_settlement_batches_run"),
    CheckConstraint("payout_minor >= 0", name="payout_not_negative"),
    Index("ix_settlement_batches_date", "settlement_date"),
    Index("ix_settlement_batches_cursor", "merchant_id", "cycle", "through_item_id"),
)

payouts = Table(
    "payouts", metadata,
    Column("payout_id", String(32), primary_key=True),
    Column("merchant_id", String(15), ForeignKey("merchants.merchant_id"), nullable=False),
    Column("batch_id", String(48), nullable=False, unique=True),
    Column("account_id", String(32), nullable=True),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("expected_arrival", Date, nullable=False),
    Column("file_name", String(100), nullable=True),
    Column("failure_reason", String(200), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("amount_minor > 0", name="amount_positive"),
    Index("ix_payouts_status", "status", "expected_arrival"),
)

alerts = Table(
    "alerts", metadata,
    Column("alert_id", BigIntId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("severity", String(10), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("merchant_id", String(15), nullable=True),
    Column("message", String(500), nullable=False),
    Column("dedup_key", String(120), nullable=True, unique=True),
    Column("resolved_at", UTCDateTime, nullable=True),
)

fee_schedules = Table(
    "fee_schedules", metadata,
    Column("merchant_id", String(15), ForeignKey("merchants.merchant_id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("effective_from", Date, nullable=False),
    Column("spec", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

calendar_overrides = Table(
    "calendar_overrides", metadata,
    Column("day", Date, primary_key=True),
    Column("is_workday", Boolean, nullable=False),
    Column("note", String(200), nullable=False),
)

maintenance_windows = Table(
    "maintenance_windows", metadata,
    Column("window_id", BigIntId, primary_key=True, autoincrement=True),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=False),
    Column("note", String(500), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("ends_at > starts_at", name="ends_after_start"),
)

job_runs = Table(
    "job_runs", metadata,
    Column("job_name", String(40), primary_key=True),
    Column("run_key", String(40), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("owner", String(100), nullable=False),
    Column("lease_expires_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("counts", Text, nullable=True),
    Column("error", String(500), nullable=True),
)

# -- terminal host (issue 5) ------------------------------------------------------------------
# Keys are stored sealed (AES-GCM under the data key, bound to terminal, role and
# generation) with their check values; never in clear. The reconciliation tables record what
# a 0500/0320 batch close found; a transaction only the terminal has is flagged, never posted.

terminal_keys = Table(
    "terminal_keys", metadata,
    Column("merchant_id", String(15), primary_key=True),
    Column("terminal_id", String(8), primary_key=True),
    Column("status", String(10), nullable=False),
    Column("tmk_sealed", LargeBinary, nullable=True),
    Column("tmk_kcv", String(8), nullable=True),
    Column("tmk_generation", Integer, nullable=False),
    Column("key_generation", Integer, nullable=False),
    Column("pik_sealed", LargeBinary, nullable=True),
    Column("pik_kcv", String(8), nullable=True),
    Column("mak_sealed", LargeBinary, nullable=True),
    Column("mak_kcv", String(8), nullable=True),
    Column("tdk_sealed", LargeBinary, nullable=True),
    Column("tdk_kcv", String(8), nullable=True),
    Column("provisioned_at", UTCDateTime, nullable=True),
    Column("keys_issued_at", UTCDateTime, nullable=True),
    Column("reset_at", UTCDateTime, nullable=True),
    # Keys issued by a sign-on while working keys exist: pending until the terminal's next
    # MAC'd message verifies under the pending MAK (migration 0006, issue 9).
    Column("pending_generation", Integer, nullable=True),
    Column("pending_pik_sealed", LargeBinary, nullable=True),
    Column("pending_pik_kcv", String(8), nullable=True),
    Column("pending_mak_sealed", LargeBinary, nullable=True),
    Column("pending_mak_kcv", String(8), nullable=True),
    Column("pending_tdk_sealed", LargeBinary, nullable=True),
    Column("pending_tdk_kcv", String(8), nullable=True),
    Column("pending_double_length", Boolean, nullable=True),
    Column("pending_issued_at", UTCDateTime, nullable=True),
    ForeignKeyConstraint(["merchant_id", "terminal_id"],
                         ["terminals.merchant_id", "terminals.terminal_id"]),
    CheckConstraint("status IN ('active', 'reset')", name="status_known"),
)

terminal_state = Table(
    "terminal_state", metadata,
    Column("merchant_id", String(15), primary_key=True),
    Column("terminal_id", String(8), primary_key=True),
    Column("signed_on", Boolean, nullable=False),
    Column("mac_algorithm", String(10), nullable=False),
    Column("double_length", Boolean, nullable=False),
    Column("last_sign_on_at", UTCDateTime, nullable=True),
    Column("last_message_at", UTCDateTime, nullable=True),
    Column("open_batch_no", String(6), nullable=True),
    Column("software_version", String(16), nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    ForeignKeyConstraint(["merchant_id", "terminal_id"],
                         ["terminals.merchant_id", "terminals.terminal_id"]),
    CheckConstraint("mac_algorithm IN ('cup_ecb', 'x919')", name="mac_algorithm_known"),
    Index("ix_terminal_state_last_message", "last_message_at"),
)

terminal_settlements = Table(
    "terminal_settlements", metadata,
    Column("merchant_id", String(15), primary_key=True),
    Column("terminal_id", String(8), primary_key=True),
    Column("batch_no", String(6), primary_key=True),
    Column("terminal_totals", String(62), nullable=False),
    Column("host_totals", String(62), nullable=False),
    Column("answer_totals", String(62), nullable=False),
    Column("verdict", String(1), nullable=False),
    Column("upload_state", String(10), nullable=False),
    Column("uploaded_count", Integer, nullable=False),
    Column("settled_at", UTCDateTime, nullable=False),
    Column("upload_finished_at", UTCDateTime, nullable=True),
    ForeignKeyConstraint(["merchant_id", "terminal_id"],
                         ["terminals.merchant_id", "terminals.terminal_id"]),
)

terminal_upload_items = Table(
    "terminal_upload_items", metadata,
    Column("merchant_id", String(15), primary_key=True),
    Column("terminal_id", String(8), primary_key=True),
    Column("batch_no", String(6), primary_key=True),
    Column("stan", String(6), primary_key=True),
    Column("card_org", String(2), nullable=False),
    Column("pan_masked", String(19), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
)

terminal_batch_flags = Table(
    "terminal_batch_flags", metadata,
    Column("flag_id", BigIntId, primary_key=True, autoincrement=True),
    Column("merchant_id", String(15), nullable=False),
    Column("terminal_id", String(8), nullable=False),
    Column("batch_no", String(6), nullable=False),
    Column("stan", String(6), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("terminal_amount_minor", BigInteger, nullable=True),
    Column("host_amount_minor", BigInteger, nullable=True),
    Column("txn_id", String(32), nullable=True),
    Column("pan_masked", String(19), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime, nullable=True),
    UniqueConstraint("merchant_id", "terminal_id", "batch_no", "stan", "kind",
                     name="uq_terminal_batch_flags_item"),
    CheckConstraint("kind IN ('terminal_only', 'host_only', 'mismatch')", name="kind_known"),
    Index("ix_terminal_batch_flags_open", "merchant_id", "resolved_at"),
)

# -- printing (issue 14) ----------------------------------------------------------------------
# A printer profile per terminal (or cash register) and the persisted print queue. A job's
# content is the slip's data as JSON: masked card number (6+4) only, like every other table.
# The profile carries the follower's cursors: how far the terminal's transactions and batch
# closes have been turned into jobs (docs/printers.md#the-print-queue).

printer_profiles = Table(
    "printer_profiles", metadata,
    Column("name", String(40), primary_key=True),
    Column("merchant_id", String(15), nullable=False),
    Column("terminal_id", String(8), nullable=False),
    Column("interface", String(10), nullable=False),
    Column("address", String(200), nullable=False),
    Column("width_cols", Integer, nullable=False),
    Column("encoding", String(10), nullable=False),
    Column("copies", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("txn_cursor_at", UTCDateTime, nullable=False),
    Column("settlement_cursor_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    ForeignKeyConstraint(["merchant_id", "terminal_id"],
                         ["terminals.merchant_id", "terminals.terminal_id"]),
    UniqueConstraint("merchant_id", "terminal_id", name="uq_printer_profiles_terminal"),
    CheckConstraint("interface IN ('network', 'usb', 'serial', 'parallel', 'file')",
                    name="interface_known"),
    CheckConstraint("width_cols IN (32, 48)", name="width_known"),
    CheckConstraint("copies BETWEEN 1 AND 3", name="copies_range"),
)

print_jobs = Table(
    "print_jobs", metadata,
    Column("job_id", BigIntId, primary_key=True, autoincrement=True),
    Column("job_key", String(120), nullable=False),
    Column("printer_name", String(40), nullable=False),
    Column("merchant_id", String(15), nullable=False),
    Column("terminal_id", String(8), nullable=False),
    Column("kind", String(12), nullable=False),
    Column("copy", String(12), nullable=True),
    Column("duplicate", Boolean, nullable=False),
    Column("txn_id", String(32), nullable=True),
    Column("batch_no", String(6), nullable=True),
    Column("stan", String(6), nullable=True),
    Column("rrn", String(12), nullable=True),
    Column("content", Text, nullable=False),
    Column("state", String(10), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", String(200), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("printed_at", UTCDateTime, nullable=True),
    UniqueConstraint("job_key", name="uq_print_jobs_job_key"),
    CheckConstraint("state IN ('pending', 'printed', 'cancelled')", name="state_known"),
    CheckConstraint("kind IN ('receipt', 'decline', 'settlement', 'test')", name="kind_known"),
    Index("ix_print_jobs_due", "state", "next_attempt_at"),
    Index("ix_print_jobs_printer", "printer_name", "job_id"),
    Index("ix_print_jobs_txn", "merchant_id", "txn_id"),
)


# -- risk control (issue 13; docs/risk.md) ------------------------------------------------------

risk_rules = Table(
    # Every version of every rule, append-only: an edit adds a version, nothing is updated.
    # ``stamp`` is random per row: the newest row's stamp tells a process its cached rule
    # set is stale (read with the payment's context, in the same statement).
    "risk_rules", metadata,
    Column("seq", BigIntId, primary_key=True, autoincrement=True),
    Column("rule_id", String(80), nullable=False),
    Column("version", Integer, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("scope", String(20), nullable=False),
    Column("scope_value", String(40), nullable=True),
    Column("card_kind", String(10), nullable=True),
    Column("action", String(10), nullable=False),
    Column("params", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("note", String(200), nullable=False),
    Column("stamp", String(32), nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("rule_id", "version", name="uq_risk_rules_version"),
)

risk_counters = Table(
    # Cumulative amount and count per terminal or card ("t:", "c:" key) and business day or
    # month ("D2026-12-04", "M2026-12"). Room is reserved by one conditional upsert. The
    # merchant's own counter is in shards (risk_merchant_shards) on PostgreSQL; on SQLite
    # (one writer) it is here too ("m:" key).
    "risk_counters", metadata,
    Column("key", String(80), primary_key=True),
    Column("bucket", String(12), primary_key=True),
    Column("amount_minor", BigInteger, nullable=False),
    Column("txn_count", Integer, nullable=False),
    Column("limit_amount_minor", BigInteger, nullable=True),
    Column("limit_count", Integer, nullable=True),
)

risk_merchant_shards = Table(
    # A merchant's day and month counter in shards (domain/risk_shards.py): each shard's
    # totals of the business day and month it last moved in, the limits its allotment was
    # made under, and the allotment (the room it may take without looking at the others).
    "risk_merchant_shards", metadata,
    Column("merchant_id", String(15), primary_key=True),
    Column("shard", Integer, primary_key=True),
    Column("day", Date, nullable=True),
    Column("day_amount_minor", BigInteger, nullable=False),
    Column("day_count", Integer, nullable=False),
    Column("month", String(7), nullable=True),
    Column("month_amount_minor", BigInteger, nullable=False),
    Column("month_count", Integer, nullable=False),
    Column("limit_day_amount_minor", BigInteger, nullable=True),
    Column("limit_day_count", Integer, nullable=True),
    Column("limit_month_amount_minor", BigInteger, nullable=True),
    Column("limit_month_count", Integer, nullable=True),
    Column("allot_day_amount_minor", BigInteger, nullable=True),
    Column("allot_day_count", Integer, nullable=True),
    Column("allot_month_amount_minor", BigInteger, nullable=True),
    Column("allot_month_count", Integer, nullable=True),
)

risk_preregistrations = Table(
    "risk_preregistrations", metadata,
    Column("prereg_id", BigIntId, primary_key=True, autoincrement=True),
    Column("merchant_id", String(15), ForeignKey("merchants.merchant_id"), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("valid_from", UTCDateTime, nullable=False),
    Column("valid_to", UTCDateTime, nullable=False),
    Column("terminal_id", String(8), nullable=True),
    Column("card_last4", String(4), nullable=True),
    Column("note", String(200), nullable=False),
    Column("status", String(10), nullable=False),
    Column("used_txn_id", String(32), nullable=True),
    Column("used_at", UTCDateTime, nullable=True),
    Column("created_by", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("amount_minor > 0", name="prereg_amount_positive"),
    Index("ix_risk_preregistrations_merchant", "merchant_id", "status", "valid_to"),
)

risk_decisions = Table(
    # One row per transaction on which a rule fired (a decline, review or alert, or a
    # pre-registration used); a plain approval writes none.
    "risk_decisions", metadata,
    Column("txn_id", String(32), primary_key=True),
    Column("merchant_id", String(15), nullable=False),
    Column("terminal_id", String(8), nullable=False),
    Column("decision", String(10), nullable=False),
    Column("response_code", String(2), nullable=False),
    Column("reason", String(40), nullable=False),
    Column("reason_en", String(200), nullable=False),
    Column("reason_zh", String(200), nullable=False),
    Column("fired", Text, nullable=False),
    Column("preregistration_id", BigInteger, nullable=True),
    Column("amount_minor", BigInteger, nullable=False),
    Column("business_date", Date, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_risk_decisions_merchant", "merchant_id", "created_at"),
    Index("ix_risk_decisions_decision", "decision", "created_at"),
)

risk_merchant_scores = Table(
    # The cash-out score of a merchant's business day, with its reasons (JSON).
    "risk_merchant_scores", metadata,
    Column("merchant_id", String(15), primary_key=True),
    Column("business_date", Date, primary_key=True),
    Column("score", Integer, nullable=False),
    Column("reasons", Text, nullable=False),
    Column("on_review", Boolean, nullable=False),
    Column("released_at", UTCDateTime, nullable=True),
    Column("released_by", String(100), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_risk_merchant_scores_review", "on_review", "business_date"),
)


# -- the web console (issue 11) ---------------------------------------------------------------
# People who log in to the console: operators, and merchant users bound to one merchant.
# Passwords are argon2id hashes; a session row holds only the SHA-256 digest of the random
# session id the browser carries (a leaked table opens no session).

console_users = Table(
    "console_users", metadata,
    Column("user_id", String(32), primary_key=True),
    Column("username", String(60), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("merchant_id", String(15), ForeignKey("merchants.merchant_id"), nullable=True),
    Column("display_name", String(100), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("failed_logins", Integer, nullable=False),
    Column("locked_until", UTCDateTime, nullable=True),
    Column("password_changed_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("(role = 'operator' AND merchant_id IS NULL) OR "
                    "(role = 'merchant' AND merchant_id IS NOT NULL)",
                    name="role_scope"),
)

console_sessions = Table(
    "console_sessions", metadata,
    Column("session_digest", String(64), primary_key=True),
    Column("user_id", String(32), ForeignKey("console_users.user_id"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_console_sessions_user", "user_id"),
)


# -- reconciliation (issue 12) ----------------------------------------------------------------
# The other side's files as imported (one row per file, one per good line, one per
# quarantined line), what a run found (matched pairs, discrepancies) and each business
# date's state per channel. docs/reconciliation.md.

recon_files = Table(
    "recon_files", metadata,
    Column("file_id", BigIntId, primary_key=True, autoincrement=True),
    Column("source", String(40), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("file_name", String(200), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("file_date", Date, nullable=True),
    Column("line_count", Integer, nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("bad_count", Integer, nullable=False),
    Column("imported_at", UTCDateTime, nullable=False),
    Column("imported_by", String(100), nullable=False),
    UniqueConstraint("source", "content_hash", name="uq_recon_files_hash"),
    Index("ix_recon_files_date", "channel", "file_date"),
)

recon_lines = Table(
    "recon_lines", metadata,
    Column("line_id", BigIntId, primary_key=True, autoincrement=True),
    Column("file_id", BigInteger, nullable=False),
    Column("channel", String(20), nullable=False),
    Column("file_date", Date, nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("txn_type", String(20), nullable=True),
    Column("line_date", Date, nullable=True),
    Column("txn_at_s", BigInteger, nullable=True),
    Column("merchant_id", String(15), nullable=True),
    Column("terminal_id", String(8), nullable=True),
    Column("order_ref", String(32), nullable=True),
    Column("rrn", String(12), nullable=True),
    Column("trace", String(6), nullable=True),
    Column("batch_no", String(6), nullable=True),
    Column("pan_last4", String(4), nullable=True),
    Column("amount_minor", BigInteger, nullable=False),
    Column("fee_minor", BigInteger, nullable=True),
    Column("currency", String(3), nullable=False),
    Column("result", String(10), nullable=True),
    Column("reason", String(100), nullable=True),
    Index("ix_recon_lines_day", "channel", "file_date"),
    Index("ix_recon_lines_file", "file_id"),
)

recon_quarantine = Table(
    # Bad lines of an imported file: the line number and why, never the line itself (an
    # account field may hold a full card number).
    "recon_quarantine", metadata,
    Column("file_id", BigInteger, primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("reason", String(200), nullable=False),
)

recon_matches = Table(
    "recon_matches", metadata,
    Column("match_id", BigIntId, primary_key=True, autoincrement=True),
    Column("channel", String(20), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("merchant_id", String(15), nullable=True),
    Column("txn_id", String(32), nullable=False),
    Column("line_id", BigInteger, nullable=False),
    Column("rule", String(10), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
)

recon_discrepancies = Table(
    "recon_discrepancies", metadata,
    Column("discrepancy_id", BigIntId, primary_key=True, autoincrement=True),
    Column("channel", String(20), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("klass", String(20), nullable=False),
    Column("merchant_id", String(15), nullable=True),
    Column("txn_id", String(32), nullable=True),
    Column("line_id", BigInteger, nullable=True),
    Column("our_amount_minor", BigInteger, nullable=True),
    Column("their_amount_minor", BigInteger, nullable=True),
    Column("our_fee_minor", BigInteger, nullable=True),
    Column("their_fee_minor", BigInteger, nullable=True),
    Column("currency", String(3), nullable=False),
    Column("state", String(10), nullable=False),
    Column("owner", String(100), nullable=True),
    Column("resolution", String(20), nullable=True),
    Column("note", String(500), nullable=True),
    Column("entry_key", String(200), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime, nullable=True),
    CheckConstraint("state IN ('open', 'resolved')", name="state_known"),
    Index("ix_recon_discrepancies_day", "channel", "business_date", "state"),
    Index("ix_recon_discrepancies_txn", "txn_id"),
    Index("ix_recon_discrepancies_owner", "owner", "discrepancy_id"),  # queue by owner (0014)
)

recon_days = Table(
    "recon_days", metadata,
    Column("channel", String(20), primary_key=True),
    Column("business_date", Date, primary_key=True),
    Column("state", String(12), nullable=False),
    Column("matched_count", Integer, nullable=False),
    Column("cleared_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("runs", Integer, nullable=False),
    Column("run_at", UTCDateTime, nullable=True),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("closed_by", String(100), nullable=True),
    # the id range of the day's rows in recon_matches (written together by a run): how
    # they are found again (recon_matches has no index by day: migration 0016)
    Column("first_match_id", BigInteger, nullable=True),
    Column("last_match_id", BigInteger, nullable=True),
    CheckConstraint("state IN ('open', 'reconciled', 'closed')", name="state_known"),
)
