"""Settling a day of captured transactions through services.settlement, against one GROUP BY.

Workload: :data:`ROWS_FULL` settlement items (captures and some refunds, debit and credit,
pseudo-random amounts from a fixed formula) for :data:`MERCHANTS_FULL` merchants, every one
due on :data:`RUN_DATE` on cycle T1 or D1 (business date the day before). Every merchant has
a verified settlement account in its own name, so each positive batch gets a payout
instruction; one merchant in :data:`DEBT_EVERY` has refunds only, so its batch becomes debt.
The rows are generated inside the database with one ``INSERT .. SELECT`` (a recursive CTE on
SQLite, ``generate_series`` on PostgreSQL), then, on PostgreSQL, ``VACUUM ANALYZE`` (what
autovacuum does after such a load; the app never runs ``ANALYZE`` on SQLite, so neither does
the benchmark); none of that is timed.

Ours: one call of ``services.settlement.settle(ctx, RUN_DATE)`` (T1 + D1): it claims every
item, writes one batch, one balanced ledger entry and one payout per merchant, after the
checks before money leaves. Peak RSS is the process's high-water mark during that call.

Reference, same run, same rows: ``SELECT merchant_id, SUM(amount_minor), SUM(fee_minor) FROM
settlement_items GROUP BY merchant_id`` fetched in full (best of :data:`REFERENCE_RUNS`):
the least any settlement must do, read every row once. The issue's target: ours ≤ 3× the
reference time and ≤ 1 GiB peak RSS. The table's "ours/ref" column is a rate ratio (1.0 =
as fast); the notes give the time ratio the target is stated in.

Afterwards the run is checked (every item settled once, totals, payouts, ledger balanced);
the benchmark fails rather than report numbers for wrong work. Then, for the notes, the
*write floor*: the rows the run wrote (batches, cursors, journal entries and lines,
payouts) written once more by plain ``INSERT .. SELECT`` statements in one transaction that
is rolled back — what any settlement must write with this schema, with no Python at all.
Batch membership is kept by per-merchant cursors (no item row is written by a run), so the
floor grows with the merchants, not the items.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Connection, func, insert, select, text

from autosettle.config import Settings
from autosettle.services import settlement
from autosettle.services.context import ServiceContext
from autosettle.store import migrate
from autosettle.store.tables import payouts, settlement_accounts, settlement_batches
from autosettle.store.uow import Database
from bench.core import (
    BenchCheckFailed,
    BenchConfig,
    BenchReport,
    Measurement,
    connect_postgres,
    peak_rss_bytes,
    reset_peak_rss,
    sqlite_database,
    temp_directory,
)

NAME = "settlement"
ROWS_FULL = 1_000_000
MERCHANTS_FULL = 10_000
ROWS_QUICK = 20_000
MERCHANTS_QUICK = 200
BUSINESS_DATE = date(2026, 9, 17)  # Thursday
RUN_DATE = date(2026, 9, 18)       # Friday: T+1 and D+1 of the business date
CREATED_AT = datetime(2026, 9, 17, 2, 0, tzinfo=UTC)
SETTLED_AT = datetime(2026, 9, 18, 1, 0, tzinfo=UTC)
D1_EVERY = 10        # merchant m is on D1 when m % D1_EVERY == D1_EVERY - 1, else T1
REFUND_EVERY = 20    # item i is a refund of a quarter of its amount when i % 20 == 19
DEBT_EVERY = 500     # merchant m has refunds only when m % 500 == 499: its batch is debt
AMOUNT_MINOR_MAX = 500_000
HASH_MULTIPLIER = 2_654_435_761  # Knuth's multiplicative hash: amounts look random
HASH_MODULUS = 2**32
FEE_PER_MILLE = 6    # 0.60%, rounded half up to the fen
REFERENCE_RUNS = 3
BENCH_PAN_TOKEN_KEY = "11" * 32  # fixed, bench-only keys: nothing secret is handled here
BENCH_DATA_KEY = "22" * 32
MIB_BYTES = 2**20
GIB_BYTES = 2**30
TARGET_TIME_RATIO_MAX = 3.0
MERCHANT_ID_PREFIX = "8983100"  # + 8 digits = the 15 characters of field 42
ACCOUNT_INSERT_BATCH = 2_000
PG_DATABASE = "autosettle_bench_settlement"  # its own: other benchmarks may run meanwhile

REFERENCE_SQL = ("SELECT merchant_id, SUM(amount_minor), SUM(fee_minor) "
                 "FROM settlement_items GROUP BY merchant_id")
FLOOR_SQL = (
    # Every row a run writes, once more (keys suffixed with "+"), with no Python at all.
    "INSERT INTO settlement_batches SELECT batch_id || '+', merchant_id, cycle, "
    "settlement_date, run_key || '+', item_count, gross_minor, fee_minor, surcharge_minor, "
    "debt_recovered_minor, debt_added_minor, payout_minor, currency, status, "
    "expected_arrival, entry_id, created_at, from_date, from_item_id, through_date, "
    "through_item_id FROM settlement_batches",
    "INSERT INTO settlement_cursors SELECT merchant_id, cycle || '+', through_date, "
    "through_item_id, updated_at FROM settlement_cursors",
    "INSERT INTO journal_entries (idempotency_key, fingerprint, kind, merchant_id, reference, "
    "created_at) SELECT idempotency_key || '+', fingerprint, kind, merchant_id, reference, "
    "created_at FROM journal_entries WHERE kind = 'settlement'",
    "INSERT INTO journal_lines (entry_id, account_code, merchant_id, currency, amount_minor) "
    "SELECT copy.entry_id, l.account_code, l.merchant_id, l.currency, l.amount_minor "
    "FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id "
    "JOIN journal_entries copy ON copy.idempotency_key = e.idempotency_key || '+' "
    "WHERE e.kind = 'settlement'",
    "INSERT INTO payouts SELECT substr(payout_id, 1, 31) || '+', merchant_id, "
    "batch_id || '+', account_id, amount_minor, currency, status, attempts, "
    "expected_arrival, file_name, failure_reason, created_at, updated_at FROM payouts",
)
"""The write floor (measured after the run, for the notes), rolled back."""


@dataclass(frozen=True, slots=True)
class Size:
    rows: int
    merchants: int


@dataclass(frozen=True, slots=True)
class Result:
    seconds: float
    reference_seconds: float
    floor_seconds: float
    peak_rss_bytes: int
    load_seconds: float
    batches: int
    payouts: int
    debt_batches: int


def merchant_id(index: int) -> str:
    return f"{MERCHANT_ID_PREFIX}{index:08d}"


# -- the rows, generated in the database ------------------------------------------------------

_ITEM_COLUMNS = ("merchant_id, txn_id, source_txn_id, kind, txn_type, card_kind, "
                 "business_date, cycle, due_date, amount_minor, fee_minor, currency, "
                 "fee_schedule, held, batch_id, created_at")


def _item_select(dialect: str) -> str:
    """The SELECT producing item ``i`` (column ``i`` of the generator) for merchant i % m."""
    if dialect == "sqlite":
        mid = f"'{MERCHANT_ID_PREFIX}' || printf('%08d', i % :merchants)"
        txn = "printf('%032d', i)"
        held, created = "0", f"'{CREATED_AT:%Y-%m-%d %H:%M:%S}.000000'"
        day = "'{}'"
    else:
        mid = f"'{MERCHANT_ID_PREFIX}' || lpad((i % :merchants)::text, 8, '0')"
        txn = "lpad(i::text, 32, '0')"
        held, created = "false", f"'{CREATED_AT.isoformat()}'::timestamptz"
        day = "'{}'::date"
    m = "(i % :merchants)"
    refund = f"(i % {REFUND_EVERY} = {REFUND_EVERY - 1} OR {m} % {DEBT_EVERY} = {DEBT_EVERY - 1})"
    base = f"(100 + ((i * {HASH_MULTIPLIER}) % {HASH_MODULUS}) % {AMOUNT_MINOR_MAX})"
    amount = f"(CASE WHEN {refund} THEN {base} / 4 ELSE {base} END)"
    fee = f"(({amount} * {FEE_PER_MILLE} + 500) / 1000)"
    sign = f"(CASE WHEN {refund} THEN -1 ELSE 1 END)"
    cycle = f"(CASE WHEN {m} % {D1_EVERY} = {D1_EVERY - 1} THEN 'D1' ELSE 'T1' END)"
    return (
        f"SELECT {mid}, {txn}, {txn}, "
        f"CASE WHEN {refund} THEN 'refund' ELSE 'capture' END, "
        f"CASE WHEN {refund} THEN 'refund' ELSE 'sale' END, "
        f"CASE WHEN (i / 7) % 3 = 0 THEN 'credit' ELSE 'debit' END, "
        f"{day.format(BUSINESS_DATE.isoformat())}, {cycle}, {day.format(RUN_DATE.isoformat())}, "
        f"{sign} * {amount}, {sign} * {fee}, 'CNY', 'bench@v1', {held}, NULL, {created}")


def _merchant_select(dialect: str) -> str:
    if dialect == "sqlite":
        number, created = "printf('%08d', i)", f"'{CREATED_AT:%Y-%m-%d %H:%M:%S}.000000'"
    else:
        number, created = "lpad(i::text, 8, '0')", f"'{CREATED_AT.isoformat()}'::timestamptz"
    cycle = f"(CASE WHEN i % {D1_EVERY} = {D1_EVERY - 1} THEN 'D1' ELSE 'T1' END)"
    return (f"SELECT '{MERCHANT_ID_PREFIX}' || {number}, 'Bench Merchant ' || {number}, "
            f"'Bench ' || {number}, 'enterprise', '5812', 'active', {cycle}, NULL, 'CNY', "
            f"{created}, {created}")


def _generate(conn: Connection, select_sql: str, table: str, columns: str, count: int,
              params: dict[str, int]) -> None:
    if conn.dialect.name == "sqlite":
        sql = (f"WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n "
               f"WHERE i < :count - 1) INSERT INTO {table} ({columns}) "
               f"{select_sql} FROM n")
    else:
        sql = (f"INSERT INTO {table} ({columns}) {select_sql} "
               f"FROM generate_series(0, CAST(:count AS bigint) - 1) AS g(i)")
    conn.execute(text(sql), {"count": count, **params})


def load(ctx: ServiceContext, size: Size) -> None:
    """Merchants, their verified accounts and the items, straight into the tables."""
    with ctx.db.unit_of_work() as uow:
        conn = uow.connection
        dialect = conn.dialect.name
        _generate(conn, _merchant_select(dialect), "merchants",
                  "merchant_id, legal_name, short_name, merchant_type, mcc, status, "
                  "settlement_cycle, single_limit_minor, currency, created_at, updated_at",
                  size.merchants, {})
        rows: list[dict[str, Any]] = []
        for m in range(size.merchants):
            mid = merchant_id(m)
            number = f"62122602{m:011d}"
            rows.append({
                "merchant_id": mid, "account_id": f"acct{m:028d}", "bank_name": "ICBC",
                "bank_code": None,
                "account_number_sealed": ctx.sealer.seal(number.encode(), mid.encode()),
                "account_number_masked": f"{number[:4]}****{number[-4:]}",
                "account_number_digest": ctx.sealer.digest(number),
                "holder_name": f"Bench Merchant {m:08d}", "account_type": "corporate",
                "verified": True, "status": "active", "created_at": CREATED_AT})
            if len(rows) >= ACCOUNT_INSERT_BATCH:
                conn.execute(insert(settlement_accounts), rows)
                rows = []
        if rows:
            conn.execute(insert(settlement_accounts), rows)
        _generate(conn, _item_select(dialect), "settlement_items", _ITEM_COLUMNS, size.rows,
                  {"merchants": size.merchants})
    if ctx.db.is_postgres:  # as autovacuum would after such a load; SQLite: as the app runs
        with ctx.db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("VACUUM ANALYZE")


# -- timing ---------------------------------------------------------------------------------

def run_reference(ctx: ServiceContext) -> tuple[float, dict[str, tuple[int, int]]]:
    """The plain GROUP BY, fetched in full; best of :data:`REFERENCE_RUNS` (seconds)."""
    best = float("inf")
    sums: dict[str, tuple[int, int]] = {}
    for _ in range(REFERENCE_RUNS):
        with ctx.db.engine.connect() as conn:
            started = time.perf_counter()
            rows = conn.exec_driver_sql(REFERENCE_SQL).fetchall()
            best = min(best, time.perf_counter() - started)
            conn.rollback()
        sums = {r[0]: (int(r[1]), int(r[2])) for r in rows}
    return best, sums


def run_floor(ctx: ServiceContext) -> float:
    """:data:`FLOOR_SQL` in one transaction that is rolled back (seconds)."""
    with ctx.db.engine.connect() as conn:
        started = time.perf_counter()
        for statement in FLOOR_SQL:
            conn.exec_driver_sql(statement)
        seconds = time.perf_counter() - started
        conn.rollback()
    return seconds


def _check(ctx: ServiceContext, summary: settlement.RunSummary, size: Size,
           expected: dict[str, tuple[int, int]]) -> tuple[int, int]:
    gross = sum(a for a, _ in expected.values())
    fees = sum(f for _, f in expected.values())
    problems = []
    if summary.errors:
        problems.append(f"errors: {summary.errors[:3]}")
    if summary.batches != size.merchants or summary.items != size.rows:
        problems.append(f"{summary.batches} batches / {summary.items} items, expected "
                        f"{size.merchants} / {size.rows}")
    if summary.gross_minor != gross:
        problems.append(f"gross {summary.gross_minor} != {gross}")
    if summary.blocked_payouts:
        problems.append(f"{summary.blocked_payouts} payouts blocked")
    with ctx.db.unit_of_work() as uow:
        conn = uow.connection
        left = uow.claims.unsettled_groups(RUN_DATE, settlement.NEXT_DAY)
        b = settlement_batches.c
        batch_rows = conn.execute(select(b.merchant_id, b.gross_minor, b.fee_minor,
                                         b.payout_minor, b.debt_added_minor)).all()
        payout_count = int(conn.execute(select(func.count()).select_from(payouts)).scalar()
                           or 0)
        imbalance = uow.ledger.imbalance_by_currency()
        unbalanced = uow.ledger.unbalanced_entries(limit=5)
    if left:
        problems.append(f"{len(left)} merchants still have due items")
    by_merchant = {r.merchant_id: (int(r.gross_minor), int(r.fee_minor)) for r in batch_rows}
    if by_merchant != expected:
        problems.append("batch totals differ from the GROUP BY of the items")
    if sum(int(r.fee_minor) for r in batch_rows) != fees:
        problems.append("batch fees differ from the item fees")
    positive = sum(1 for r in batch_rows if int(r.payout_minor) > 0)
    debts = sum(1 for r in batch_rows if int(r.debt_added_minor) > 0)
    if payout_count != positive or debts == 0:
        problems.append(f"{payout_count} payouts for {positive} positive batches, "
                        f"{debts} debt batches")
    if any(imbalance.values()) or unbalanced:
        problems.append(f"ledger imbalance {imbalance}, unbalanced entries {unbalanced}")
    if problems:
        raise BenchCheckFailed("; ".join(problems))
    return payout_count, debts


def _context(url: str, data_dir: Path) -> ServiceContext:
    settings = Settings(data_dir=data_dir, database_url=url,
                        pan_token_key=SecretStr(BENCH_PAN_TOKEN_KEY),
                        data_key=SecretStr(BENCH_DATA_KEY))
    return ServiceContext(settings=settings, db=Database(url), clock=lambda: SETTLED_AT)


def run_one(url: str, data_dir: Path, size: Size, progress: Callable[[str], None],
            label: str) -> Result:
    migrate.upgrade(url)
    ctx = _context(url, data_dir)
    try:
        progress(f"{NAME} {label}: loading {size.rows:,} items for {size.merchants:,} "
                 "merchants")
        started = time.perf_counter()
        load(ctx, size)
        load_seconds = time.perf_counter() - started
        progress(f"{NAME} {label}: reference GROUP BY")
        reference_seconds, expected = run_reference(ctx)
        progress(f"{NAME} {label}: settle")
        reset_peak_rss()
        started = time.perf_counter()
        summary = settlement.settle(ctx, RUN_DATE)
        seconds = time.perf_counter() - started
        peak = peak_rss_bytes()
        payout_count, debts = _check(ctx, summary, size, expected)
        progress(f"{NAME} {label}: write floor (the run's rows again, rolled back)")
        floor_seconds = run_floor(ctx)
    finally:
        ctx.db.dispose()
    return Result(seconds, reference_seconds, floor_seconds, peak, load_seconds,
                  summary.batches, payout_count, debts)


def _measurement(database: str, size: Size, result: Result) -> Measurement:
    time_ratio = result.seconds / result.reference_seconds
    verdict = ("meets" if time_ratio <= TARGET_TIME_RATIO_MAX
               and result.peak_rss_bytes <= GIB_BYTES else "misses")
    return Measurement(
        database=database, case=f"settle {size.merchants:,} merchants", items=size.rows,
        batch_size=size.merchants, seconds=result.seconds,
        rate_per_s=size.rows / result.seconds,
        reference=f"{REFERENCE_SQL} (best of {REFERENCE_RUNS})",
        reference_seconds=result.reference_seconds,
        reference_rate_per_s=size.rows / result.reference_seconds,
        peak_rss_bytes=result.peak_rss_bytes, unit="items",
        notes=f"time ours/reference = {time_ratio:.1f}x ({result.seconds:.2f} s vs "
              f"{result.reference_seconds:.3f} s), {verdict} the target (<= "
              f"{TARGET_TIME_RATIO_MAX:.0f}x, <= 1 GiB); write floor (the rows the run wrote, "
              f"written again by INSERT .. SELECT) {result.floor_seconds:.2f} s, reference + "
              f"floor = {(result.reference_seconds + result.floor_seconds):.2f} s = "
              f"{(result.reference_seconds + result.floor_seconds) / result.reference_seconds:.1f}"
              f"x the reference; "
              f"ours = {result.seconds / (result.reference_seconds + result.floor_seconds):.1f}"
              f"x reference + floor; "
              f"{result.batches:,} batches, {result.payouts:,} payouts, "
              f"{result.debt_batches} debt batches; loading "
              f"took {result.load_seconds:.1f} s (not counted)")


def run(config: BenchConfig) -> BenchReport:
    """The ``settlement`` benchmark."""
    size = Size(ROWS_QUICK, MERCHANTS_QUICK) if config.quick else Size(ROWS_FULL,
                                                                       MERCHANTS_FULL)
    report = BenchReport(NAME, "one day of captured items settled by services.settlement, "
                         "against one GROUP BY merchant over the same rows")
    report.facts.update({"rows": size.rows, "merchants": size.merchants,
                         "run_date": RUN_DATE.isoformat(), "cycles": "T1+D1",
                         "refund_every": REFUND_EVERY, "debt_every": DEBT_EVERY,
                         "target": "ours <= 3x reference time, peak RSS <= 1 GiB"})
    with temp_directory("autosettle-bench-") as tmp:
        data_dir = Path(tmp)
        with sqlite_database(data_dir, "settlement") as url:
            result = run_one(url, data_dir, size, config.progress, "sqlite")
        report.measurements.append(_measurement("sqlite", size, result))
        if config.sqlite_only:
            report.notes.append("PostgreSQL skipped (--sqlite-only)")
            return report
        server, note = connect_postgres()
        report.notes.append(note)
        if server is None:
            return report
        report.facts["postgresql_version"] = server.version
        try:
            with server.bench_database(PG_DATABASE) as database:
                result = run_one(database.url, data_dir, size, config.progress, "postgresql")
            report.measurements.append(_measurement("postgresql", size, result))
        finally:
            server.dispose()
    return report
