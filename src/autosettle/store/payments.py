"""Repositories for transactions, terminal batches, the reversal queue and payment rules.

The statements of a sale are built once at import (building a statement and its cache key
costs more CPU than running it) and folded where one statement can do the work of several:
:meth:`PaymentRulesRepository.context` reads the terminal, its merchant, the merchant's rules
and the version stamps of its fee schedules and of the calendar overrides in one SELECT;
:meth:`BatchRepository.take_open_stan` finds the open batch and takes its next trace number
in one UPDATE .. RETURNING (and :meth:`BatchRepository.advance_stan` moves the counter past
a trace the terminal chose itself, also in one); :meth:`TransactionRepository.update_if` is
conditional on the status the caller expects, so the answer to a pending sale needs no
``SELECT .. FOR UPDATE`` first (and no row read back: the caller knows what it wrote).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Row,
    String,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Select

from autosettle.domain.calendar import SHANGHAI
from autosettle.domain.errors import AlreadyExists
from autosettle.domain.merchants import TerminalStatus
from autosettle.domain.payment_records import (
    FEE_STAMP_SEPARATOR,
    PaymentContext,
    PaymentRules,
    TransactionQuery,
    TransactionRecord,
)
from autosettle.domain.transactions import TxnStatus, TxnType
from autosettle.store.merchants import merchant_from_row
from autosettle.store.risk import rule_stamp_column
from autosettle.store.tables import (
    calendar_overrides,
    fee_schedules,
    merchant_payment_rules,
    merchants,
    pending_reversals,
    terminal_batches,
    terminals,
    transactions,
)

SEARCH_PAGE_MAX = 500


_FIELDS = tuple(f.name for f in fields(TransactionRecord))


def _record(row: Row[Any]) -> TransactionRecord:
    m = row._mapping
    values = {name: m[name] for name in _FIELDS}
    values["txn_type"] = TxnType(values["txn_type"])
    values["status"] = TxnStatus(values["status"])
    return TransactionRecord(**values)


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
_UPDATE_TXN_IF = update(transactions).where(
    transactions.c.merchant_id == bindparam("where_m"),
    transactions.c.txn_id == bindparam("where_t"),
    transactions.c.status == bindparam("where_status"))
_TXN_BY_TRACE = select(transactions).where(transactions.c.merchant_id == bindparam("m"),
                                           transactions.c.terminal_id == bindparam("term"),
                                           transactions.c.batch_no == bindparam("batch"),
                                           transactions.c.stan == bindparam("stan"))
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
_TAKE_OPEN_STAN = update(terminal_batches).where(
    terminal_batches.c.merchant_id == bindparam("m"),
    terminal_batches.c.terminal_id == bindparam("term"),
    terminal_batches.c.status == "open",
    terminal_batches.c.batch_no == select(func.max(terminal_batches.c.batch_no)).where(
        terminal_batches.c.merchant_id == bindparam("m2"),
        terminal_batches.c.terminal_id == bindparam("term2"),
        terminal_batches.c.status == "open").scalar_subquery(),
).values(next_stan=terminal_batches.c.next_stan + 1).returning(
    terminal_batches.c.batch_no, terminal_batches.c.next_stan)
STAN_MODULUS = 999_999
"""Trace numbers run 000001..999999, then round again; ``next_stan`` only grows."""


def _shanghai_midnight(day: date, days_after: int) -> datetime:
    """The start of the Shanghai calendar day ``days_after`` days after ``day``."""
    return datetime.combine(day + timedelta(days=days_after), time(0), SHANGHAI)


def _past(stan: Any) -> Any:
    """``next_stan`` moved just past the trace ``stan`` when that trace is at or ahead of
    it in the counter's current round (``max(counter, stan + 1)``, round-aware), else
    unchanged: a trace the terminal chose itself is never handed out again."""
    counter = terminal_batches.c.next_stan
    position = (counter - 1) % STAN_MODULUS + 1  # the trace the counter hands out next
    return case((position <= stan, counter + (stan - position) + 1), else_=counter)


_OPEN_BATCH_OF_TERMINAL = (
    terminal_batches.c.merchant_id == bindparam("m"),
    terminal_batches.c.terminal_id == bindparam("term"),
    terminal_batches.c.status == "open")
_ADVANCE_STAN = update(terminal_batches).where(
    *_OPEN_BATCH_OF_TERMINAL, terminal_batches.c.batch_no == bindparam("batch"),
).values(next_stan=_past(bindparam("stan", type_=Integer))).returning(
    terminal_batches.c.batch_no)
_ADVANCE_OPEN_STAN = update(terminal_batches).where(
    *_OPEN_BATCH_OF_TERMINAL,
    terminal_batches.c.batch_no == select(func.max(terminal_batches.c.batch_no)).where(
        terminal_batches.c.merchant_id == bindparam("m2"),
        terminal_batches.c.terminal_id == bindparam("term2"),
        terminal_batches.c.status == "open").scalar_subquery(),
).values(next_stan=_past(bindparam("stan", type_=Integer))).returning(
    terminal_batches.c.batch_no)
_HIGHEST_USED_STAN = select(func.coalesce(func.max(transactions.c.stan.cast(Integer)), 0)).where(
    transactions.c.merchant_id == terminal_batches.c.merchant_id,
    transactions.c.terminal_id == terminal_batches.c.terminal_id,
    transactions.c.batch_no == terminal_batches.c.batch_no).scalar_subquery()
_RESYNC_STANS = update(terminal_batches).where(*_OPEN_BATCH_OF_TERMINAL).values(
    next_stan=_past(_HIGHEST_USED_STAN))
_RULES = select(merchant_payment_rules).where(
    merchant_payment_rules.c.merchant_id == bindparam("m"))


def _context_query(dialect: str) -> Select[Any]:
    """One SELECT for everything a payment at a terminal needs to know before deciding."""
    r, f, c = merchant_payment_rules.c, fee_schedules.c, calendar_overrides.c
    aggregate = func.string_agg if dialect == "postgresql" else func.group_concat
    day_flag = c.day.cast(String) + literal(":") + c.is_workday.cast(String)
    return (
        select(
            terminals.c.status.label("terminal_status"), *merchants.c,
            r.allowed_txn_types, r.allowed_card_kinds, r.completion_ratio_max,
            select(aggregate(f.spec, literal(FEE_STAMP_SEPARATOR)))
            .where(f.merchant_id == merchants.c.merchant_id)
            .scalar_subquery().label("fee_stamp"),
            select(aggregate(day_flag, literal(","))).select_from(calendar_overrides)
            .scalar_subquery().label("calendar_stamp"),
            rule_stamp_column(),
        )
        .select_from(terminals.join(merchants, merchants.c.merchant_id
                                    == terminals.c.merchant_id)
                     .outerjoin(merchant_payment_rules, r.merchant_id
                                == terminals.c.merchant_id))
        .where(terminals.c.merchant_id == bindparam("m"),
               terminals.c.terminal_id == bindparam("term"))
    )


_CONTEXT = {dialect: _context_query(dialect) for dialect in ("postgresql", "sqlite")}


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
        """Insert; :class:`AlreadyExists` when its trace or idempotency key is taken."""
        try:
            self._conn.execute(_INSERT_TXN, {name: getattr(record, name) for name in _FIELDS})
        except IntegrityError as exc:
            raise AlreadyExists(f"transaction {record.txn_id} clashes with a stored one "
                                f"(trace {record.batch_no}/{record.stan})") from exc

    def get(self, merchant_id: str, txn_id: str,
            for_update: bool = False) -> TransactionRecord | None:
        query = _TXN_BY_ID_FOR_UPDATE if for_update else _TXN_BY_ID
        row = self._conn.execute(query, {"m": merchant_id, "t": txn_id}).first()
        return _record(row) if row else None

    def find_by_trace(self, merchant_id: str, terminal_id: str, batch_no: str,
                      stan: str) -> TransactionRecord | None:
        row = self._conn.execute(_TXN_BY_TRACE, {"m": merchant_id, "term": terminal_id,
                                                 "batch": batch_no, "stan": stan}).first()
        return _record(row) if row else None

    def find_by_key(self, merchant_id: str, terminal_id: str,
                    key: str) -> TransactionRecord | None:
        row = self._conn.execute(_TXN_BY_KEY, {"m": merchant_id, "term": terminal_id,
                                               "key": key}).first()
        return _record(row) if row else None

    def get_any_merchant(self, txn_id: str) -> TransactionRecord | None:
        """Operators look a transaction up by id alone (ids are globally unique UUIDs)."""
        row = self._conn.execute(select(transactions).where(
            transactions.c.txn_id == txn_id)).first()
        return _record(row) if row else None

    def find_by_rrn(self, merchant_id: str, rrn: str) -> TransactionRecord | None:
        row = self._conn.execute(select(transactions).where(
            transactions.c.merchant_id == merchant_id, transactions.c.rrn == rrn)
            .order_by(transactions.c.created_at.desc())).first()
        return _record(row) if row else None

    def children(self, merchant_id: str, original_txn_id: str) -> list[TransactionRecord]:
        # Sorted here, not in SQL: with an ORDER BY created_at, SQLite prefers walking the
        # merchant's (merchant_id, created_at) index over the original-id index.
        rows = self._conn.execute(select(transactions).where(
            transactions.c.merchant_id == merchant_id,
            transactions.c.original_txn_id == original_txn_id))
        return sorted((_record(r) for r in rows), key=lambda r: (r.created_at, r.txn_id))

    def update(self, merchant_id: str, txn_id: str, **values: Any) -> None:
        """Set ``values`` (plain values, one per column) on one transaction."""
        self._conn.execute(_UPDATE_TXN, {**values, "where_m": merchant_id, "where_t": txn_id})

    def update_returning(self, merchant_id: str, txn_id: str,
                         **values: Any) -> TransactionRecord | None:
        """:meth:`update`, returning the row as it is afterwards (no second read)."""
        row = self._conn.execute(_UPDATE_TXN_RETURNING, {
            **values, "where_m": merchant_id, "where_t": txn_id}).first()
        return _record(row) if row else None

    def update_if(self, merchant_id: str, txn_id: str, expected_status: str,
                  **values: Any) -> bool:
        """:meth:`update` only if the row's status is still ``expected_status`` (the check
        and the row lock are one statement). True when it was, and the row is updated."""
        result = self._conn.execute(_UPDATE_TXN_IF, {
            **values, "where_m": merchant_id, "where_t": txn_id,
            "where_status": expected_status})
        return bool(result.rowcount == 1)

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
        # A record's business date is the Shanghai date of its creation or the day after (at
        # or after the cut-off), so a business-date range also bounds created_at: with that
        # bound the newest-first indexes on created_at serve a date search (else the planner
        # sorts every row of the period: a month of a year's data took over a second).
        if query.date_from is not None:
            conditions.append(t.business_date >= query.date_from)
            if query.date_from.year > 1:  # 0001-01-01 00:00 in Shanghai is before UTC's year 1
                conditions.append(t.created_at >= _shanghai_midnight(query.date_from, -1))
        if query.date_to is not None:
            conditions.append(t.business_date <= query.date_to)
            if query.date_to.year < 9999:
                conditions.append(t.created_at < _shanghai_midnight(query.date_to, 1))
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

    def add(self, merchant_id: str, terminal_id: str, batch_no: str, at: datetime,
            next_stan: int = 1) -> None:
        """Open a batch; :class:`AlreadyExists` when a concurrent twin opened it first."""
        try:
            self._insert_batch(merchant_id, terminal_id, batch_no, at, next_stan)
        except IntegrityError as exc:
            raise AlreadyExists(f"batch {batch_no} exists") from exc

    def _insert_batch(self, merchant_id: str, terminal_id: str, batch_no: str, at: datetime,
                      next_stan: int) -> None:
        self._conn.execute(insert(terminal_batches).values(
            merchant_id=merchant_id, terminal_id=terminal_id, batch_no=batch_no,
            status="open", next_stan=next_stan, opened_at=at))

    def take_open_stan(self, merchant_id: str, terminal_id: str) -> tuple[str, int] | None:
        """Take the next trace number of the terminal's open batch (the latest, should there
        be several) in one statement: ``(batch_no, trace)``, or None without an open batch."""
        row = self._conn.execute(_TAKE_OPEN_STAN, {"m": merchant_id, "term": terminal_id,
                                                   "m2": merchant_id,
                                                   "term2": terminal_id}).first()
        return (row.batch_no, int(row.next_stan) - 1) if row else None

    def take_stan(self, merchant_id: str, terminal_id: str, batch_no: str) -> int:
        """Reserve the next trace number of the batch (atomic increment)."""
        value = self._conn.execute(_TAKE_STAN, {"m": merchant_id, "term": terminal_id,
                                                "batch": batch_no}).scalar()
        return int(value or 1) - 1

    def advance_stan(self, merchant_id: str, terminal_id: str, batch_no: str,
                     stan: int) -> bool:
        """Move the counter of the *open* batch ``batch_no`` past ``stan``, a trace the
        terminal chose itself. False: no such open batch (nothing changed)."""
        row = self._conn.execute(_ADVANCE_STAN, {"m": merchant_id, "term": terminal_id,
                                                 "batch": batch_no, "stan": stan}).first()
        return row is not None

    def advance_open_stan(self, merchant_id: str, terminal_id: str, stan: int) -> str | None:
        """:meth:`advance_stan` on the terminal's open batch (the latest, should there be
        several), in one statement: its number, or None without an open batch."""
        row = self._conn.execute(_ADVANCE_OPEN_STAN, {"m": merchant_id, "term": terminal_id,
                                                      "m2": merchant_id, "term2": terminal_id,
                                                      "stan": stan}).first()
        return str(row.batch_no) if row else None

    def resync_stans(self, merchant_id: str, terminal_id: str) -> None:
        """Move the counters of the terminal's open batches past every trace used in them
        (repairs a counter that lags behind, e.g. in data written before it was kept)."""
        self._conn.execute(_RESYNC_STANS, {"m": merchant_id, "term": terminal_id})

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


DEFAULT_RULES = PaymentRules(None, None, "1.15")


def _rules(row: Any) -> PaymentRules:
    if row.allowed_txn_types is None:  # no row of its own (outer join)
        return DEFAULT_RULES

    def parse(text: str) -> frozenset[str] | None:
        return None if text == "*" else frozenset(filter(None, text.split(",")))

    return PaymentRules(parse(row.allowed_txn_types), parse(row.allowed_card_kinds),
                        row.completion_ratio_max)


class PaymentRulesRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, merchant_id: str) -> PaymentRules:
        row = self._conn.execute(_RULES, {"m": merchant_id}).first()
        return DEFAULT_RULES if row is None else _rules(row)

    def context(self, merchant_id: str, terminal_id: str) -> PaymentContext | None:
        """The terminal, its merchant, the rules and the stamps; None: no such terminal."""
        query = _CONTEXT[self._conn.dialect.name]
        row = self._conn.execute(query, {"m": merchant_id, "term": terminal_id}).first()
        if row is None:
            return None
        return PaymentContext(
            terminal_status=TerminalStatus(row.terminal_status),
            merchant=merchant_from_row(row), rules=_rules(row),
            fee_stamp=row.fee_stamp or "",
            calendar_stamp=row.calendar_stamp or "", risk_stamp=row.risk_stamp)

    def put(self, merchant_id: str, rules: PaymentRules, at: datetime) -> None:
        def render(values: frozenset[str] | None) -> str:
            return "*" if values is None else ",".join(sorted(values))

        self._conn.execute(merchant_payment_rules.delete().where(
            merchant_payment_rules.c.merchant_id == merchant_id))
        self._conn.execute(insert(merchant_payment_rules).values(
            merchant_id=merchant_id, allowed_txn_types=render(rules.allowed_txn_types),
            allowed_card_kinds=render(rules.allowed_card_kinds),
            completion_ratio_max=rules.completion_ratio_max, updated_at=at))
