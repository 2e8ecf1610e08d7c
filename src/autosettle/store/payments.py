"""Repositories for transactions, terminal batches and the reversal queue."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, func, insert, or_, select, update

from autosettle.store.tables import (
    merchant_payment_rules,
    pending_reversals,
    terminal_batches,
    transactions,
)

SEARCH_PAGE_MAX = 500


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    """One stored transaction: everything a receipt shows, and no card data beyond 6+4."""

    merchant_id: str
    txn_id: str
    terminal_id: str
    txn_type: str
    status: str
    amount_minor: int
    currency: str
    refunded_minor: int
    original_txn_id: str | None
    card_token: str | None
    pan_masked: str | None
    pan_last4: str | None
    card_brand: str | None
    card_kind: str | None
    entry_mode: str | None
    batch_no: str
    stan: str
    rrn: str
    auth_code: str | None
    response_code: str | None
    refusal_reason: str | None
    channel: str
    channel_ref: str | None
    idempotency_key: str | None
    request_fingerprint: str
    business_date: date
    expires_on: date | None
    created_at: datetime
    updated_at: datetime
    answered_at: datetime | None


_FIELDS = tuple(f.name for f in fields(TransactionRecord))


def _record(row: Row[Any]) -> TransactionRecord:
    m = row._mapping
    return TransactionRecord(**{name: m[name] for name in _FIELDS})


# The statements of every payment, built once: building a statement (and its cache key)
# costs more CPU than running it. Parameters are bound at execution.
_INSERT_TXN = insert(transactions)
_TXN_BY_ID = select(transactions).where(transactions.c.merchant_id == bindparam("m"),
                                        transactions.c.txn_id == bindparam("t"))
_TXN_BY_ID_FOR_UPDATE = _TXN_BY_ID.with_for_update()
_TXN_BY_KEY = select(transactions).where(transactions.c.merchant_id == bindparam("m"),
                                         transactions.c.terminal_id == bindparam("term"),
                                         transactions.c.idempotency_key == bindparam("key"))
_UPDATE_TXN = update(transactions).where(transactions.c.merchant_id == bindparam("where_m"),
                                         transactions.c.txn_id == bindparam("where_t"))
_UPDATE_TXN_RETURNING = _UPDATE_TXN.returning(*transactions.c)
_OPEN_BATCH = select(terminal_batches).where(
    terminal_batches.c.merchant_id == bindparam("m"),
    terminal_batches.c.terminal_id == bindparam("term"),
    terminal_batches.c.status == "open").order_by(terminal_batches.c.batch_no.desc())
_OPEN_BATCH_FOR_UPDATE = _OPEN_BATCH.with_for_update()
_TAKE_STAN = update(terminal_batches).where(
    terminal_batches.c.merchant_id == bindparam("m"),
    terminal_batches.c.terminal_id == bindparam("term"),
    terminal_batches.c.batch_no == bindparam("batch"),
).values(next_stan=terminal_batches.c.next_stan + 1).returning(terminal_batches.c.next_stan)
_RULES = select(merchant_payment_rules).where(
    merchant_payment_rules.c.merchant_id == bindparam("m"))


@dataclass(frozen=True, slots=True)
class TransactionQuery:
    """Search criteria; every field is optional. ``merchant_id`` scopes tenants."""

    merchant_id: str | None = None
    terminal_id: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    txn_type: str | None = None
    status: str | None = None
    amount_minor: int | None = None
    last4: str | None = None
    rrn: str | None = None
    auth_code: str | None = None
    stan: str | None = None
    batch_no: str | None = None


@dataclass(frozen=True, slots=True)
class BatchRecord:
    merchant_id: str
    terminal_id: str
    batch_no: str
    status: str
    next_stan: int
    opened_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True, slots=True)
class ReversalRecord:
    merchant_id: str
    txn_id: str
    channel: str
    reason: str
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None


class TransactionRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, record: TransactionRecord) -> None:
        self._conn.execute(_INSERT_TXN, {name: getattr(record, name) for name in _FIELDS})

    def get(self, merchant_id: str, txn_id: str,
            for_update: bool = False) -> TransactionRecord | None:
        query = _TXN_BY_ID_FOR_UPDATE if for_update else _TXN_BY_ID
        row = self._conn.execute(query, {"m": merchant_id, "t": txn_id}).first()
        return _record(row) if row else None

    def find_by_trace(self, merchant_id: str, terminal_id: str, batch_no: str,
                      stan: str) -> TransactionRecord | None:
        row = self._conn.execute(select(transactions).where(
            transactions.c.merchant_id == merchant_id,
            transactions.c.terminal_id == terminal_id,
            transactions.c.batch_no == batch_no, transactions.c.stan == stan)).first()
        return _record(row) if row else None

    def find_by_key(self, merchant_id: str, terminal_id: str,
                    key: str) -> TransactionRecord | None:
        row = self._conn.execute(_TXN_BY_KEY, {"m": merchant_id, "term": terminal_id,
                                               "key": key}).first()
        return _record(row) if row else None

    def find_by_rrn(self, merchant_id: str, rrn: str) -> TransactionRecord | None:
        row = self._conn.execute(select(transactions).where(
            transactions.c.merchant_id == merchant_id, transactions.c.rrn == rrn)
            .order_by(transactions.c.created_at.desc())).first()
        return _record(row) if row else None

    def children(self, merchant_id: str, original_txn_id: str) -> list[TransactionRecord]:
        rows = self._conn.execute(select(transactions).where(
            transactions.c.merchant_id == merchant_id,
            transactions.c.original_txn_id == original_txn_id)
            .order_by(transactions.c.created_at))
        return [_record(r) for r in rows]

    def update(self, merchant_id: str, txn_id: str, **values: Any) -> None:
        """Set ``values`` (plain values, one per column) on one transaction."""
        self._conn.execute(_UPDATE_TXN, {**values, "where_m": merchant_id, "where_t": txn_id})

    def update_returning(self, merchant_id: str, txn_id: str,
                         **values: Any) -> TransactionRecord | None:
        """:meth:`update`, returning the row as it is afterwards (no second read)."""
        row = self._conn.execute(_UPDATE_TXN_RETURNING, {
            **values, "where_m": merchant_id, "where_t": txn_id}).first()
        return _record(row) if row else None

    def stuck_pending(self, older_than: datetime, limit: int) -> list[TransactionRecord]:
        rows = self._conn.execute(select(transactions).where(
            transactions.c.status == "pending", transactions.c.created_at < older_than)
            .order_by(transactions.c.created_at).limit(limit))
        return [_record(r) for r in rows]

    def search(self, query: TransactionQuery, after: tuple[datetime, str] | None,
               limit: int) -> list[TransactionRecord]:
        """Newest first, keyset-paged on (created_at, txn_id)."""
        t = transactions.c
        conditions = []
        exact = {
            t.merchant_id: query.merchant_id, t.terminal_id: query.terminal_id,
            t.txn_type: query.txn_type, t.status: query.status,
            t.amount_minor: query.amount_minor, t.pan_last4: query.last4, t.rrn: query.rrn,
            t.auth_code: query.auth_code, t.stan: query.stan, t.batch_no: query.batch_no,
        }
        conditions += [column == value for column, value in exact.items() if value is not None]
        if query.date_from is not None:
            conditions.append(t.business_date >= query.date_from)
        if query.date_to is not None:
            conditions.append(t.business_date <= query.date_to)
        if after is not None:
            at, txn_id = after
            conditions.append(or_(t.created_at < at, and_(t.created_at == at, t.txn_id < txn_id)))
        rows = self._conn.execute(select(transactions).where(*conditions)
                                  .order_by(t.created_at.desc(), t.txn_id.desc())
                                  .limit(min(limit, SEARCH_PAGE_MAX)))
        return [_record(r) for r in rows]

    def count(self) -> int:
        return int(self._conn.execute(select(func.count()).select_from(transactions)).scalar()
                   or 0)


class BatchRepository:
    """Terminal batches: one open batch per terminal; trace numbers come from it."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def open_batch(self, merchant_id: str, terminal_id: str,
                   for_update: bool = False) -> BatchRecord | None:
        query = _OPEN_BATCH_FOR_UPDATE if for_update else _OPEN_BATCH
        row = self._conn.execute(query, {"m": merchant_id, "term": terminal_id}).first()
        return BatchRecord(**dict(row._mapping)) if row else None

    def get(self, merchant_id: str, terminal_id: str, batch_no: str) -> BatchRecord | None:
        row = self._conn.execute(select(terminal_batches).where(
            terminal_batches.c.merchant_id == merchant_id,
            terminal_batches.c.terminal_id == terminal_id,
            terminal_batches.c.batch_no == batch_no)).first()
        return BatchRecord(**dict(row._mapping)) if row else None

    def latest(self, merchant_id: str, terminal_id: str) -> BatchRecord | None:
        row = self._conn.execute(select(terminal_batches).where(
            terminal_batches.c.merchant_id == merchant_id,
            terminal_batches.c.terminal_id == terminal_id)
            .order_by(terminal_batches.c.batch_no.desc())).first()
        return BatchRecord(**dict(row._mapping)) if row else None

    def add(self, merchant_id: str, terminal_id: str, batch_no: str, at: datetime) -> None:
        self._conn.execute(insert(terminal_batches).values(
            merchant_id=merchant_id, terminal_id=terminal_id, batch_no=batch_no,
            status="open", next_stan=1, opened_at=at))

    def take_stan(self, merchant_id: str, terminal_id: str, batch_no: str) -> int:
        """Reserve the next trace number of the batch (atomic increment)."""
        value = self._conn.execute(_TAKE_STAN, {"m": merchant_id, "term": terminal_id,
                                                "batch": batch_no}).scalar()
        return int(value or 1) - 1

    def close(self, merchant_id: str, terminal_id: str, batch_no: str, at: datetime) -> None:
        self._conn.execute(update(terminal_batches).where(
            terminal_batches.c.merchant_id == merchant_id,
            terminal_batches.c.terminal_id == terminal_id,
            terminal_batches.c.batch_no == batch_no,
        ).values(status="closed", closed_at=at))


class ReversalQueue:
    """Store and forward: reversals waiting for the channel's acknowledgement."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def enqueue(self, merchant_id: str, txn_id: str, channel: str, reason: str,
                at: datetime) -> None:
        exists = self._conn.execute(select(pending_reversals.c.txn_id).where(
            pending_reversals.c.merchant_id == merchant_id,
            pending_reversals.c.txn_id == txn_id)).first()
        if exists is None:
            self._conn.execute(insert(pending_reversals).values(
                merchant_id=merchant_id, txn_id=txn_id, channel=channel, reason=reason,
                state="pending", attempts=0, next_attempt_at=at, created_at=at))

    def due(self, at: datetime, limit: int) -> list[ReversalRecord]:
        rows = self._conn.execute(select(pending_reversals).where(
            pending_reversals.c.state == "pending", pending_reversals.c.next_attempt_at <= at)
            .order_by(pending_reversals.c.next_attempt_at).limit(limit))
        return [ReversalRecord(r.merchant_id, r.txn_id, r.channel, r.reason, r.state,
                               r.attempts, r.next_attempt_at, r.last_error) for r in rows]

    def get(self, merchant_id: str, txn_id: str) -> ReversalRecord | None:
        r = self._conn.execute(select(pending_reversals).where(
            pending_reversals.c.merchant_id == merchant_id,
            pending_reversals.c.txn_id == txn_id)).first()
        if r is None:
            return None
        return ReversalRecord(r.merchant_id, r.txn_id, r.channel, r.reason, r.state,
                              r.attempts, r.next_attempt_at, r.last_error)

    def acknowledge(self, merchant_id: str, txn_id: str, at: datetime) -> None:
        self._conn.execute(update(pending_reversals).where(
            pending_reversals.c.merchant_id == merchant_id,
            pending_reversals.c.txn_id == txn_id,
        ).values(state="acknowledged", acknowledged_at=at,
                 attempts=pending_reversals.c.attempts + 1))

    def retry_later(self, merchant_id: str, txn_id: str, next_at: datetime,
                    error: str) -> None:
        self._conn.execute(update(pending_reversals).where(
            pending_reversals.c.merchant_id == merchant_id,
            pending_reversals.c.txn_id == txn_id,
        ).values(attempts=pending_reversals.c.attempts + 1, next_attempt_at=next_at,
                 last_error=error[:200]))

    def pending_count(self) -> int:
        return int(self._conn.execute(select(func.count()).select_from(pending_reversals)
                                      .where(pending_reversals.c.state == "pending")).scalar()
                   or 0)


@dataclass(frozen=True, slots=True)
class PaymentRules:
    """What a merchant may accept: transaction types, card kinds, completion ratio."""

    allowed_txn_types: frozenset[str] | None
    allowed_card_kinds: frozenset[str] | None
    completion_ratio_max: str


DEFAULT_RULES = PaymentRules(None, None, "1.15")


class PaymentRulesRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, merchant_id: str) -> PaymentRules:
        row = self._conn.execute(_RULES, {"m": merchant_id}).first()
        if row is None:
            return DEFAULT_RULES

        def parse(text: str) -> frozenset[str] | None:
            return None if text == "*" else frozenset(filter(None, text.split(",")))

        return PaymentRules(parse(row.allowed_txn_types), parse(row.allowed_card_kinds),
                            row.completion_ratio_max)

    def put(self, merchant_id: str, rules: PaymentRules, at: datetime) -> None:
        def render(values: frozenset[str] | None) -> str:
            return "*" if values is None else ",".join(sorted(values))

        self._conn.execute(merchant_payment_rules.delete().where(
            merchant_payment_rules.c.merchant_id == merchant_id))
        self._conn.execute(insert(merchant_payment_rules).values(
            merchant_id=merchant_id, allowed_txn_types=render(rules.allowed_txn_types),
            allowed_card_kinds=render(rules.allowed_card_kinds),
            completion_ratio_max=rules.completion_ratio_max, updated_at=at))


def find_any_merchant(conn: Connection, txn_id: str) -> TransactionRecord | None:
    """Operators look a transaction up by id alone (ids are globally unique UUIDs)."""
    row = conn.execute(select(transactions).where(transactions.c.txn_id == txn_id)).first()
    return _record(row) if row else None
