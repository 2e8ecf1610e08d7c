"""Risk control storage: rule versions, counters, pre-registrations, decisions, scores.

The counters are the part that must be right under concurrency. :meth:`RiskRepository.reserve`
takes room in every counter a transaction moves with **one** statement on PostgreSQL::

    WITH new_txn AS (INSERT INTO transactions ...),           -- the payment's record
         up AS (INSERT .. (terminal's and card's counters) ON CONFLICT (key, bucket)
                DO UPDATE SET amount = amount + excluded.amount, count = count + 1
                WHERE the new totals stay within the limits carried by the row
                RETURNING ...),
         shard AS (UPDATE risk_merchant_shards .. WHERE the shard's new totals stay
                   within its allotment, made under these limits RETURNING ...)
    SELECT .. FROM up UNION ALL .. FROM shard                 -- the counters that took it

The reservation and the counters' upsert run on the driver's own cursor (:func:`_at_driver`),
not through SQLAlchemy's execution objects, which cost every sale about 65 µs; their errors
still leave as SQLAlchemy's exceptions.

On PostgreSQL the conflicting row is locked and the WHERE is evaluated on its latest committed
version, so two sales can never both take the last room; SQLite has one writer at a time (and
inserts the record, then upserts the counters, the merchant's rows among them: there the
merchant's counter is not in shards). A counter missing from the result had no room; the
caller gives back what the others took (:meth:`release`) in the same transaction, so a refusal
changes nothing. A merchant shard missing from it sends the sale down the exact path
(:meth:`lock_merchant_shards`, :meth:`put_merchant_shards`; domain/risk_shards.py).

Velocity (:meth:`velocity_counts`) counts the card's own transactions, in a new statement
after the upsert has locked the card's counter rows: every earlier sale of the card was
committed with its reservation (the same statement on PostgreSQL, the same transaction on
SQLite), so the count sees them all (docs/risk.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from datetime import date, datetime
from enum import Enum
from operator import attrgetter
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    case,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError, IntegrityError

from autosettle.domain.errors import AlreadyExists
from autosettle.domain.payment_records import TransactionRecord
from autosettle.domain.risk import CounterKey, CounterLimit, Period, Rule, Subject
from autosettle.domain.risk_records import (
    DecisionRecord,
    Preregistration,
    ScoredTxn,
    ScoreRecord,
    StoredRule,
)
from autosettle.domain.risk_shards import Limits, Shard, Take, month_of
from autosettle.store.settlement_claims import ClaimRepository
from autosettle.store.tables import (
    risk_counters,
    risk_decisions,
    risk_merchant_scores,
    risk_merchant_shards,
    risk_preregistrations,
    risk_rules,
    settlement_items,
    transactions,
)
from autosettle.store.types import UTCDateTime

_RULE_STAMP = (select(risk_rules.c.stamp).order_by(risk_rules.c.seq.desc()).limit(1)
               .scalar_subquery())
"""The newest rule version's random stamp: read with every payment's context."""


def rule_stamp_column() -> Any:
    return _RULE_STAMP.label("risk_stamp")


_ON_CONFLICT = (
    "ON CONFLICT (key, bucket) DO UPDATE SET "
    "amount_minor = risk_counters.amount_minor + excluded.amount_minor, "
    "txn_count = risk_counters.txn_count + excluded.txn_count, "
    "limit_amount_minor = excluded.limit_amount_minor, "
    "limit_count = excluded.limit_count "
    "WHERE (excluded.limit_amount_minor IS NULL OR risk_counters.amount_minor + "
    "excluded.amount_minor <= excluded.limit_amount_minor) AND "
    "(excluded.limit_count IS NULL OR risk_counters.txn_count + excluded.txn_count "
    "<= excluded.limit_count) "
    "RETURNING key, bucket, amount_minor, txn_count")


def _upsert_text(rows: int) -> str:
    """SQLite: one VALUES row per counter, its parameters in order (key, bucket, amount,
    count, amount limit, count limit)."""
    values = ", ".join("(?, ?, ?, ?, ?, ?)" for _ in range(rows))
    return ("INSERT INTO risk_counters (key, bucket, amount_minor, txn_count, "
            f"limit_amount_minor, limit_count) VALUES {values} {_ON_CONFLICT}")


_UPSERT_TEXT = {rows: _upsert_text(rows) for rows in range(1, 7)}  # up to 6 counters

_TXN_COLUMNS = tuple(c.name for c in transactions.c)

_PG_UPSERT = (
    "INSERT INTO risk_counters (key, bucket, amount_minor, txn_count, limit_amount_minor, "
    "limit_count) SELECT k, b, %(amount)s::bigint, %(count)s::bigint, la, lc FROM "
    "unnest(string_to_array(%(ks)s::text, ','), string_to_array(%(bs)s::text, ','), "
    "string_to_array(%(las)s::text, ',', '')::bigint[], "
    "string_to_array(%(lcs)s::text, ',', '')::bigint[]) "
    f"AS v(k, b, la, lc) {_ON_CONFLICT}")
"""PostgreSQL: the counters as four comma-separated lists (an empty limit is none),
whatever their number: one statement text with few parameters (the driver caches its
parsed form and prepares it), rows taken in list order. Plain text costs the driver less
to send than arrays do (0.1 ms a sale, measured); no key holds a comma
(:func:`_joined`)."""


def _joined(values: Sequence[str | int | None]) -> str:
    text_ = ",".join(["" if v is None else str(v) for v in values])
    if text_.count(",") != len(values) - 1:
        raise ValueError(f"a risk counter key holds a comma: {text_!r}")
    return text_


def _lists(limits: Sequence[CounterLimit]) -> dict[str, str]:
    """The parameters of :data:`_PG_UPSERT` (numbers hold no comma: only the keys and
    buckets are checked)."""
    return {"ks": _joined([lim.key.key for lim in limits]),
            "bs": _joined([lim.key.bucket for lim in limits]),
            "las": ",".join(["" if lim.amount_minor is None else str(lim.amount_minor)
                             for lim in limits]),
            "lcs": ",".join(["" if lim.count is None else str(lim.count) for lim in limits])}


def _shard_update(p: Callable[[str, str], str]) -> str:
    """The fast path of a merchant's counter: take room in one shard, within its allotment
    and only if it was allotted under the limits in force; the day and month roll over. A
    plain UPDATE: when its WHERE fails it locks nothing (``p(name, cast)``: a parameter)."""
    day, month, amount, count = p("day", "date"), p("month", "varchar"), p("amount", "bigint"), \
        p("count", "bigint")
    day_amount = f"(CASE WHEN day = {day} THEN day_amount_minor ELSE 0 END + {amount})"
    day_count = f"(CASE WHEN day = {day} THEN day_count ELSE 0 END + {count})"
    month_amount = f"(CASE WHEN month = {month} THEN month_amount_minor ELSE 0 END + {amount})"
    month_count = f"(CASE WHEN month = {month} THEN month_count ELSE 0 END + {count})"
    checks = " AND ".join(
        f"limit_{col} IS NOT DISTINCT FROM {p(name, 'bigint')} AND (allot_{col} IS NULL OR "
        f"{after} <= allot_{col})"
        for col, name, after in (("day_amount_minor", "lda", day_amount),
                                 ("day_count", "ldc", day_count),
                                 ("month_amount_minor", "lma", month_amount),
                                 ("month_count", "lmc", month_count)))
    return (f"UPDATE risk_merchant_shards SET day_amount_minor = {day_amount}, "
            f"day_count = {day_count}, month_amount_minor = {month_amount}, "
            f"month_count = {month_count}, day = {day}, month = {month} "
            f"WHERE merchant_id = {p('mid', 'varchar')} AND shard = {p('shard', 'integer')} "
            f"AND {checks} "
            "RETURNING day_amount_minor, day_count, month_amount_minor, month_count")


_PG_SHARD_UPDATE = _shard_update(lambda name, cast: f"%({name})s::{cast}")

_PG_RESERVE = (
    f"WITH up AS ({_PG_UPSERT}), shard AS ({_PG_SHARD_UPDATE}) "
    "SELECT key, bucket, amount_minor, txn_count FROM up "
    "UNION ALL SELECT %(mk)s::varchar, %(mbd)s::varchar, day_amount_minor, day_count "
    "FROM shard UNION ALL SELECT %(mk)s::varchar, %(mbm)s::varchar, month_amount_minor, "
    "month_count FROM shard")
"""PostgreSQL: the terminal's and card's counters (``up``, taken first: a sale never holds
its merchant shard while it waits for another sale's card or terminal row) and the
merchant's shard, in one statement."""

_SHARD_FORCE = text(
    "INSERT INTO risk_merchant_shards (merchant_id, shard, day, day_amount_minor, day_count, "
    "month, month_amount_minor, month_count) VALUES (:mid, :shard, :day, :amount, :count, "
    ":month, :amount, :count) ON CONFLICT (merchant_id, shard) DO UPDATE SET "
    "day_amount_minor = CASE WHEN risk_merchant_shards.day = excluded.day THEN "
    "risk_merchant_shards.day_amount_minor ELSE 0 END + excluded.day_amount_minor, "
    "day_count = CASE WHEN risk_merchant_shards.day = excluded.day THEN "
    "risk_merchant_shards.day_count ELSE 0 END + excluded.day_count, "
    "month_amount_minor = CASE WHEN risk_merchant_shards.month = excluded.month THEN "
    "risk_merchant_shards.month_amount_minor ELSE 0 END + excluded.month_amount_minor, "
    "month_count = CASE WHEN risk_merchant_shards.month = excluded.month THEN "
    "risk_merchant_shards.month_count ELSE 0 END + excluded.month_count, "
    "day = excluded.day, month = excluded.month")
"""Room taken whatever the limits (a reversed void: the sale stands again)."""


_PG_RESERVE_WITH_RECORD = (
    f"WITH new_txn AS (INSERT INTO transactions ({', '.join(_TXN_COLUMNS)}) VALUES "
    f"({', '.join(f'%(t_{name})s' for name in _TXN_COLUMNS)})), "
    f"{_PG_RESERVE.removeprefix('WITH ')}")
"""PostgreSQL: the payment's record inserted by a data-modifying CTE of the reservation
itself (one statement instead of two; the CTE runs whatever the upsert finds)."""


_RECORD_FIELDS = attrgetter(*_TXN_COLUMNS)
_RECORD_PARAMS = tuple(f"t_{name}" for name in _TXN_COLUMNS)


class _RecordParams:
    """The parameters of the record's CTE in :data:`_PG_RESERVE_WITH_RECORD`, as the
    transactions table's own bind conversions make them (UTC datetimes; enums to their
    values), built with one attribute fetch (this is on every sale's path)."""

    def __init__(self, dialect: Any) -> None:
        self._converted = [(i, processor) for i, c in enumerate(transactions.c)
                           if (processor := c.type._cached_bind_processor(dialect))]

    def __call__(self, record: TransactionRecord) -> dict[str, Any]:
        values = [v.value if isinstance(v, Enum) else v for v in _RECORD_FIELDS(record)]
        for i, process in self._converted:
            values[i] = process(values[i])
        return dict(zip(_RECORD_PARAMS, values, strict=True))


_RECORD_PARAMS_BY_DIALECT: dict[str, _RecordParams] = {}


def _at_driver(conn: Connection, statement: str,
               params: Mapping[str, Any] | Sequence[Any]) -> list[Any]:
    """The rows of ``statement`` run on the driver's cursor, in ``conn``'s transaction.

    The reservation is on every sale's path, and SQLAlchemy's execution and result objects
    cost about 65 µs a statement on PostgreSQL (measured; docs/risk.md), so it skips them.
    A driver error leaves as SQLAlchemy's own exception (``IntegrityError``,
    ``OperationalError``: the unit of work maps an outage as for any statement), and a
    lost connection is invalidated so the pool drops it. No engine event fires for it."""
    dbapi = conn.dialect.loaded_dbapi
    driver = conn.connection.dbapi_connection
    assert driver is not None
    cursor = driver.cursor()
    try:
        cursor.execute(statement, params)
        return list(cursor.fetchall())
    except dbapi.Error as exc:
        lost = conn.dialect.is_disconnect(exc, driver, cursor)
        if lost:
            conn.invalidate(exc)
        raise DBAPIError.instance(statement, params, exc, dbapi.Error,
                                  hide_parameters=conn.engine.hide_parameters,
                                  connection_invalidated=lost, dialect=conn.dialect) from exc
    finally:
        cursor.close()


def _velocity_sql(anywhere: tuple[bool, ...]) -> Any:
    sums = ", ".join(
        f"SUM(CASE WHEN created_at >= :s{i}{'' if flag else ' AND merchant_id = :m'} "
        "THEN 1 ELSE 0 END)" for i, flag in enumerate(anywhere))
    return text(f"SELECT {sums} FROM transactions WHERE card_token = :t AND created_at >= "
                ":since AND txn_type IN ('sale', 'preauth') AND status IN ('pending', "
                "'approved', 'completed')").bindparams(
        bindparam("since", type_=UTCDateTime),
        *[bindparam(f"s{i}", type_=UTCDateTime) for i in range(len(anywhere))])


_VELOCITY: dict[tuple[bool, ...], Any] = {}


def _merchant_of(keys: Sequence[CounterKey]) -> tuple[str, date | None, str | None] | None:
    """The merchant, day and month named by the merchant's counter keys among ``keys``."""
    merchant_id: str | None = None
    day: date | None = None
    month: str | None = None
    for key in keys:
        if key.subject is Subject.MERCHANT:
            merchant_id = key.key.removeprefix("m:")
            if key.period is Period.DAY:
                day = date.fromisoformat(key.bucket[1:])
            else:
                month = key.bucket[1:]
    return None if merchant_id is None else (merchant_id, day, month)


def _rule(row: Any) -> Rule:
    from autosettle.domain.risk import Action, RuleKind, Scope

    return Rule(row.rule_id, int(row.version), RuleKind(row.kind), Scope(row.scope),
                row.scope_value, Action(row.action), json.loads(row.params), row.card_kind,
                bool(row.active), row.note)


class RiskRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    # -- rules ------------------------------------------------------------------------------
    def stamp(self) -> str | None:
        return self._conn.execute(select(_RULE_STAMP)).scalar()

    def rules(self) -> list[Rule]:
        """Every stored version, oldest first."""
        rows = self._conn.execute(select(risk_rules).order_by(risk_rules.c.seq))
        return [_rule(r) for r in rows]

    def versions(self, rule_id: str) -> list[StoredRule]:
        rows = self._conn.execute(select(risk_rules).where(risk_rules.c.rule_id == rule_id)
                                  .order_by(risk_rules.c.version))
        return [StoredRule(_rule(r), r.created_by, r.created_at) for r in rows]

    def latest_version(self, rule_id: str) -> int:
        return int(self._conn.execute(select(func.max(risk_rules.c.version)).where(
            risk_rules.c.rule_id == rule_id)).scalar() or 0)

    def add_rule(self, rule: Rule, stamp: str, created_by: str, at: datetime) -> None:
        try:
            self._conn.execute(insert(risk_rules).values(
                rule_id=rule.rule_id, version=rule.version, kind=rule.kind.value,
                scope=rule.scope.value, scope_value=rule.scope_value, card_kind=rule.card_kind,
                action=rule.action.value, params=rule.params_json(), active=rule.active,
                note=rule.note, stamp=stamp, created_by=created_by[:100], created_at=at))
        except IntegrityError as exc:
            raise AlreadyExists(f"rule {rule.rule_id} version {rule.version} exists "
                                "(edited meanwhile): reload and retry") from exc

    # -- counters ---------------------------------------------------------------------------
    @property
    def merchant_sharded(self) -> bool:
        """Whether the merchant's counter is in shards (PostgreSQL). With one writer
        (SQLite) shards buy nothing and cost a statement inside the write lock: there it is
        one row per period in ``risk_counters``, reserved with the other counters."""
        return self._conn.dialect.name == "postgresql"

    def reserve(self, limits: Sequence[CounterLimit], take: Take | None, amount_minor: int,
                count: int = 1, record: TransactionRecord | None = None
                ) -> dict[tuple[str, str], tuple[int, int]]:
        """Take ``amount_minor`` and ``count`` in every terminal or card counter whose
        limits allow it and in the merchant's shard (``take``) if its allotment allows it
        (one statement on PostgreSQL); the totals after, of those that took it (for the
        merchant: the shard's, under ``take.day_key``/``take.month_key``). The others are
        unchanged. ``record``: the payment's record, inserted first (on PostgreSQL in the
        same statement); :class:`AlreadyExists` when its trace or idempotency key is
        taken."""
        if take is None:  # SQLite: the merchant's rows are among ``limits``
            if record is not None:
                from autosettle.store.payments import TransactionRepository  # imports us

                TransactionRepository(self._conn).add(record)
            rows = self._upsert_counters(limits, amount_minor, count) if limits else []
            return {(r[0], r[1]): (int(r[2]), int(r[3])) for r in rows}
        if not self.merchant_sharded:
            raise ValueError("the merchant's counter is in shards on PostgreSQL only")
        params: dict[str, Any] = {
            "amount": amount_minor, "count": count, "mid": take.merchant_id,
            "shard": take.shard, "day": take.day, "month": month_of(take.day),
            "lda": take.limits.day_amount, "ldc": take.limits.day_count,
            "lma": take.limits.month_amount, "lmc": take.limits.month_count}
        rows = self._reserve_postgresql(limits, take, params, record)
        return {(r[0], r[1]): (int(r[2]), int(r[3])) for r in rows}

    def _upsert_counters(self, limits: Sequence[CounterLimit], amount_minor: int,
                         count: int) -> list[Any]:
        """The conditional upsert alone, on the driver's cursor (PostgreSQL: as lists)."""
        if self.merchant_sharded:
            return _at_driver(self._conn, _PG_UPSERT, {"amount": amount_minor, "count": count,
                                                       **_lists(limits)})
        values: list[Any] = []
        for limit in limits:
            key = limit.key
            values += (key.key, key.bucket, amount_minor, count, limit.amount_minor,
                       limit.count)
        return _at_driver(self._conn, _UPSERT_TEXT[len(limits)], values)

    def _reserve_postgresql(self, limits: Sequence[CounterLimit], take: Take,
                            params: dict[str, Any], record: TransactionRecord | None
                            ) -> list[Any]:
        """One statement on the driver's cursor (:func:`_at_driver`; no statement compiled
        per call): the counters as lists, the merchant's shard, the record (if any) in a
        CTE."""
        params.update(_lists(limits))
        params.update({"mk": take.day_key[0], "mbd": take.day_key[1],
                       "mbm": take.month_key[1]})
        statement = _PG_RESERVE
        if record is not None:
            statement = _PG_RESERVE_WITH_RECORD
            dialect = self._conn.dialect
            build = _RECORD_PARAMS_BY_DIALECT.get(dialect.name)
            if build is None:
                build = _RECORD_PARAMS_BY_DIALECT.setdefault(dialect.name,
                                                             _RecordParams(dialect))
            params.update(build(record))
        try:
            return _at_driver(self._conn, statement, params)
        except IntegrityError as exc:
            if record is None:
                raise
            raise AlreadyExists(f"transaction {record.txn_id} clashes with a stored one "
                                f"(trace {record.batch_no}/{record.stan})") from exc

    def _counter_keys(self, keys: Sequence[CounterKey]) -> list[CounterKey]:
        """The keys kept in ``risk_counters`` (the merchant's too, when not sharded)."""
        sharded = self.merchant_sharded
        return [k for k in keys if k.subject is not Subject.MERCHANT or not sharded]

    def take(self, keys: Sequence[CounterKey], shard: int, amount_minor: int,
             count: int) -> None:
        """Take room whatever the limits (a reversed void, refund or cancel: the sale
        stands again); the merchant's in shard ``shard``."""
        counters = self._counter_keys(keys)
        if counters:
            self._upsert_counters([CounterLimit(k, None, None) for k in counters],
                                  amount_minor, count)
        mine = _merchant_of(keys) if self.merchant_sharded else None
        if mine is not None:
            merchant_id, day, month = mine
            self._conn.execute(_SHARD_FORCE, {
                "mid": merchant_id, "shard": shard, "day": day, "month": month,
                "amount": amount_minor, "count": count})

    def release(self, keys: Sequence[CounterKey], shard: int, amount_minor: int,
                count: int) -> None:
        """Give room back (voids, reversals, refunds, declines); never below zero. The
        merchant's in shard ``shard`` (its day's and month's totals only while the shard is
        still on that day or month)."""
        counters = self._counter_keys(keys)
        least = func.max if self._conn.dialect.name == "sqlite" else func.greatest
        if counters:
            c = risk_counters.c
            self._conn.execute(update(risk_counters).where(or_(*[
                and_(c.key == k.key, c.bucket == k.bucket) for k in counters])).values(
                amount_minor=least(c.amount_minor - amount_minor, 0),
                txn_count=least(c.txn_count - count, 0)))
        mine = _merchant_of(keys) if self.merchant_sharded else None
        if mine is None:
            return
        merchant_id, day, month = mine
        s = risk_merchant_shards.c
        values: dict[str, Any] = {}
        for period, on in (("day", day), ("month", month)):
            if on is None:
                continue
            for column, by in ((f"{period}_amount_minor", amount_minor),
                               (f"{period}_count", count)):
                values[column] = case((s[period] == on, least(s[column] - by, 0)),
                                      else_=s[column])
        self._conn.execute(update(risk_merchant_shards).where(
            s.merchant_id == merchant_id, s.shard == shard).values(**values))

    # -- the merchant's counter: the exact path ---------------------------------------------
    def lock_merchant_shards(self, merchant_id: str, shards: int) -> list[Shard]:
        """Every shard of the merchant, locked in shard order (the exact path; PostgreSQL,
        :attr:`merchant_sharded`); shards 0..``shards``-1 created first when missing."""
        found = self._merchant_shards(merchant_id)
        have = {s.shard for s in found}
        missing = [n for n in range(shards) if n not in have]
        if not missing:
            return found
        self._conn.execute(
            pg_insert(risk_merchant_shards).on_conflict_do_nothing(),
            [{"merchant_id": merchant_id, "shard": n, "day_amount_minor": 0, "day_count": 0,
              "month_amount_minor": 0, "month_count": 0} for n in missing])
        return self._merchant_shards(merchant_id)

    def _merchant_shards(self, merchant_id: str) -> list[Shard]:
        s = risk_merchant_shards.c
        query = select(risk_merchant_shards).where(s.merchant_id == merchant_id).order_by(
            s.shard).with_for_update()
        return [Shard(int(r.shard), r.day, int(r.day_amount_minor), int(r.day_count), r.month,
                      int(r.month_amount_minor), int(r.month_count),
                      Limits(r.limit_day_amount_minor, r.limit_day_count,
                             r.limit_month_amount_minor, r.limit_month_count),
                      Limits(r.allot_day_amount_minor, r.allot_day_count,
                             r.allot_month_amount_minor, r.allot_month_count))
                for r in self._conn.execute(query)]

    def put_merchant_shards(self, merchant_id: str, shards: Sequence[Shard]) -> None:
        """Write shards back (locked by :meth:`lock_merchant_shards`)."""
        s = risk_merchant_shards.c
        self._conn.execute(update(risk_merchant_shards).where(
            s.merchant_id == bindparam("m"), s.shard == bindparam("n")).values(
            day=bindparam("d"), day_amount_minor=bindparam("da"), day_count=bindparam("dc"),
            month=bindparam("mo"), month_amount_minor=bindparam("ma"),
            month_count=bindparam("mc"), limit_day_amount_minor=bindparam("lda"),
            limit_day_count=bindparam("ldc"), limit_month_amount_minor=bindparam("lma"),
            limit_month_count=bindparam("lmc"), allot_day_amount_minor=bindparam("ada"),
            allot_day_count=bindparam("adc"), allot_month_amount_minor=bindparam("ama"),
            allot_month_count=bindparam("amc")),
            [{"m": merchant_id, "n": x.shard, "d": x.day, "da": x.day_amount,
              "dc": x.day_count, "mo": x.month, "ma": x.month_amount, "mc": x.month_count,
              "lda": x.limits.day_amount, "ldc": x.limits.day_count,
              "lma": x.limits.month_amount, "lmc": x.limits.month_count,
              "ada": x.allotment.day_amount, "adc": x.allotment.day_count,
              "ama": x.allotment.month_amount, "amc": x.allotment.month_count}
             for x in shards])

    def usage(self, keys: Sequence[CounterKey]) -> dict[tuple[str, str], tuple[int, int]]:
        """The totals of these counters (the merchant's: over its shards)."""
        out: dict[tuple[str, str], tuple[int, int]] = {}
        counters = self._counter_keys(keys)
        if counters:
            c = risk_counters.c
            rows = self._conn.execute(select(c.key, c.bucket, c.amount_minor, c.txn_count)
                                      .where(or_(*[and_(c.key == k.key, c.bucket == k.bucket)
                                                   for k in counters])))
            out.update({(r[0], r[1]): (int(r[2]), int(r[3])) for r in rows})
        mine = _merchant_of(keys) if self.merchant_sharded else None
        if mine is None:
            return out
        merchant_id, day, month = mine
        s = risk_merchant_shards.c
        row = self._conn.execute(select(*[
            func.coalesce(func.sum(case((match, column), else_=0)), 0)
            for match, column in ((s.day == day, s.day_amount_minor), (s.day == day, s.day_count),
                                  (s.month == month, s.month_amount_minor),
                                  (s.month == month, s.month_count))]).where(
            s.merchant_id == merchant_id)).one()
        for key in keys:
            if key.subject is Subject.MERCHANT:
                amount, number = (row[0], row[1]) if key.period is Period.DAY else (row[2], row[3])
                if amount or number:
                    out[key.pair] = (int(amount), int(number))
        return out

    def velocity_counts(self, card_token: str, merchant_id: str,
                        windows: Sequence[tuple[datetime, bool]]) -> list[int]:
        """Velocity, in one statement on the card's transactions (index
        ``ix_transactions_card_recent``): for each ``(since, anywhere)`` window, the card's
        counted transactions (sales, pre-authorisations; in flight, approved or completed)
        since then, at this merchant or anywhere, this one included. Read after the
        reservation has locked the card's counter rows, it sees every predecessor of the
        card: their records were committed with their reservations (docs/risk.md)."""
        params: dict[str, Any] = {"t": card_token, "m": merchant_id,
                                  "since": min(since for since, _ in windows)}
        for i, (since, _) in enumerate(windows):
            params[f"s{i}"] = since
        key = tuple(anywhere for _, anywhere in windows)
        statement = _VELOCITY.get(key)
        if statement is None:
            statement = _VELOCITY.setdefault(key, _velocity_sql(key))
        row = self._conn.execute(statement, params).one()
        return [int(v or 0) for v in row]

    # -- pre-registrations ----------------------------------------------------------------
    def add_preregistration(self, merchant_id: str, amount_minor: int, currency: str,
                            valid_from: datetime, valid_to: datetime, terminal_id: str | None,
                            card_last4: str | None, note: str, created_by: str,
                            at: datetime) -> Preregistration:
        row = self._conn.execute(insert(risk_preregistrations).values(
            merchant_id=merchant_id, amount_minor=amount_minor, currency=currency,
            valid_from=valid_from, valid_to=valid_to, terminal_id=terminal_id,
            card_last4=card_last4, note=note, status="open", created_by=created_by[:100],
            created_at=at).returning(*risk_preregistrations.c)).one()
        return Preregistration(**dict(row._mapping))

    def preregistrations(self, merchant_id: str | None,
                         limit: int = 200) -> list[Preregistration]:
        p = risk_preregistrations.c
        query = select(risk_preregistrations).order_by(p.prereg_id.desc()).limit(limit)
        if merchant_id is not None:
            query = query.where(p.merchant_id == merchant_id)
        return [Preregistration(**dict(r._mapping)) for r in self._conn.execute(query)]

    def preregistration(self, merchant_id: str | None,
                        prereg_id: int) -> Preregistration | None:
        p = risk_preregistrations.c
        query = select(risk_preregistrations).where(p.prereg_id == prereg_id)
        if merchant_id is not None:
            query = query.where(p.merchant_id == merchant_id)
        row = self._conn.execute(query).first()
        return Preregistration(**dict(row._mapping)) if row else None

    def cancel_preregistration(self, merchant_id: str, prereg_id: int) -> bool:
        p = risk_preregistrations.c
        result = self._conn.execute(update(risk_preregistrations).where(
            p.merchant_id == merchant_id, p.prereg_id == prereg_id, p.status == "open")
            .values(status="cancelled"))
        return bool(result.rowcount == 1)

    def use_preregistration(self, merchant_id: str, terminal_id: str, last4: str | None,
                            amount_minor: int, now: datetime,
                            txn_id: str) -> tuple[int, int] | None:
        """Take the smallest open registration covering this transaction, once (one
        conditional UPDATE: two transactions cannot both use it): (id, amount) or None."""
        p = risk_preregistrations.c
        candidate = select(p.prereg_id).where(
            p.merchant_id == merchant_id, p.status == "open", p.valid_from <= now,
            p.valid_to > now, p.amount_minor >= amount_minor,
            or_(p.terminal_id.is_(None), p.terminal_id == terminal_id),
            or_(p.card_last4.is_(None), p.card_last4 == last4),
        ).order_by(p.amount_minor, p.prereg_id).limit(1).scalar_subquery()
        row = self._conn.execute(update(risk_preregistrations).where(
            p.prereg_id == candidate, p.status == "open").values(
            status="used", used_txn_id=txn_id, used_at=now).returning(
            p.prereg_id, p.amount_minor)).first()
        return (int(row[0]), int(row[1])) if row else None

    def cancel_preregistration_use(self, prereg_id: int) -> None:
        """Undo :meth:`use_preregistration` when the transaction was refused anyway."""
        p = risk_preregistrations.c
        self._conn.execute(update(risk_preregistrations).where(
            p.prereg_id == prereg_id, p.status == "used").values(
            status="open", used_txn_id=None, used_at=None))

    # -- decisions ----------------------------------------------------------------------------
    def add_decision(self, record: DecisionRecord) -> None:
        values = {f.name: getattr(record, f.name) for f in fields(DecisionRecord)}
        values["fired"] = json.dumps(record.fired)
        self._conn.execute(insert(risk_decisions).values(**values))

    def decisions(self, merchant_id: str | None, decisions: Sequence[str] | None,
                  limit: int = 100) -> list[DecisionRecord]:
        d = risk_decisions.c
        query = select(risk_decisions).order_by(d.created_at.desc(), d.txn_id).limit(limit)
        if merchant_id is not None:
            query = query.where(d.merchant_id == merchant_id)
        if decisions:
            query = query.where(d.decision.in_(list(decisions)))
        return [self._decision(r) for r in self._conn.execute(query)]

    def decision(self, merchant_id: str, txn_id: str) -> DecisionRecord | None:
        d = risk_decisions.c
        row = self._conn.execute(select(risk_decisions).where(
            d.merchant_id == merchant_id, d.txn_id == txn_id)).first()
        return self._decision(row) if row else None

    @staticmethod
    def _decision(row: Any) -> DecisionRecord:
        values = dict(row._mapping)
        values["fired"] = json.loads(values["fired"])
        return DecisionRecord(**values)

    def held_txn_ids(self, merchant_id: str, txn_ids: Sequence[str]) -> set[str]:
        """Which of these transactions have a held settlement item."""
        if not txn_ids:
            return set()
        i = settlement_items.c
        rows = self._conn.execute(select(i.source_txn_id).where(
            i.merchant_id == merchant_id, i.source_txn_id.in_(list(txn_ids)),
            i.held.is_(True)).distinct())
        return {r[0] for r in rows}

    # -- merchant-day scores ----------------------------------------------------------------
    def day_transactions(self, first: date, last: date) -> list[ScoredTxn]:
        t = transactions.c
        rows = self._conn.execute(select(
            t.merchant_id, t.txn_type, t.status, t.amount_minor, t.card_token, t.card_kind,
            t.created_at, t.business_date).where(
            t.business_date >= first, t.business_date <= last,
            t.txn_type.in_(("sale", "preauth", "completion"))))
        return [ScoredTxn(*r) for r in rows]

    def put_score(self, record: ScoreRecord) -> None:
        s = risk_merchant_scores.c
        self._conn.execute(risk_merchant_scores.delete().where(
            s.merchant_id == record.merchant_id, s.business_date == record.business_date))
        self._conn.execute(insert(risk_merchant_scores).values(
            merchant_id=record.merchant_id, business_date=record.business_date,
            score=record.score, reasons=json.dumps(record.reasons, ensure_ascii=False),
            on_review=record.on_review, released_at=record.released_at,
            released_by=record.released_by, created_at=record.created_at))

    def scores(self, business_date: date | None = None, on_review: bool | None = None,
               merchant_id: str | None = None, limit: int = 200) -> list[ScoreRecord]:
        s = risk_merchant_scores.c
        query = select(risk_merchant_scores).order_by(s.business_date.desc(),
                                                      s.score.desc()).limit(limit)
        if business_date is not None:
            query = query.where(s.business_date == business_date)
        if on_review is not None:
            query = query.where(s.on_review.is_(on_review))
        if merchant_id is not None:
            query = query.where(s.merchant_id == merchant_id)
        out = []
        for r in self._conn.execute(query):
            values = dict(r._mapping)
            values["reasons"] = json.loads(values["reasons"])
            out.append(ScoreRecord(**values))
        return out

    def release_score(self, merchant_id: str, business_date: date, by: str,
                      at: datetime) -> bool:
        s = risk_merchant_scores.c
        result = self._conn.execute(update(risk_merchant_scores).where(
            s.merchant_id == merchant_id, s.business_date == business_date,
            s.on_review.is_(True)).values(on_review=False, released_at=at, released_by=by))
        return bool(result.rowcount == 1)

    def hold_merchant_day(self, merchant_id: str, business_date: date, held: bool) -> int:
        """Hold (or release) every unsettled settlement item of a merchant's business day
        (the issue-4 hold flag: a held item stays out of settlement until released)."""
        claims = ClaimRepository(self._conn)
        claims.lock_merchant_items(merchant_id)
        i = settlement_items.c
        ids = [int(r[0]) for r in self._conn.execute(
            select(i.item_id).select_from(claims.with_cursors()).where(
                i.merchant_id == merchant_id, i.business_date == business_date,
                claims.unsettled_condition()))]
        if not ids:
            return 0
        result = self._conn.execute(update(settlement_items).where(
            i.item_id.in_(ids)).values(held=held))
        return int(result.rowcount or 0)


def counter_totals(rows: Mapping[tuple[str, str], tuple[int, int]],
                   keys: Sequence[CounterKey]) -> dict[tuple[str, str], tuple[int, int]]:
    return {k.pair: rows.get(k.pair, (0, 0)) for k in keys}
