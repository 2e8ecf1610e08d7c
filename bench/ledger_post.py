"""Posting balanced journal entries through the service layer, against plain INSERTs.

Workload: sale-like transfers ``Dr channel_receivable / Cr merchant_unsettled:<m>`` spread
over :data:`MERCHANTS` merchants, with pseudo-random amounts (fixed seed).

Cases, on SQLite (a new temporary file per measurement) and on PostgreSQL (database
``autosettle_bench``, created for the run and dropped after it, emptied before each
measurement):

- ``post_many``, :data:`BATCH_ENTRIES` entries per unit of work: bulk posting, as
  settlement will do it.
- ``post``, one entry per unit of work: what a terminal sale does (one commit per sale).

Reference, from the same run, for each case: SQLAlchemy Core ``executemany`` INSERTs of the
very same ``journal_entries`` and ``journal_lines`` rows (ids assigned up front, fingerprints
computed up front), in the same number of rows per transaction, into a freshly migrated
database with the same schema, constraints and triggers. The gap between the two is the
price of the service layer: the idempotent ``INSERT .. ON CONFLICT .. RETURNING`` per entry,
the fingerprint, and one round trip per entry instead of one per batch.

Building the entries (domain objects) is timed separately and is not in either rate.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Engine, insert

from autosettle.config import Settings
from autosettle.domain.ledger import Account, AccountType, JournalEntry, transfer
from autosettle.domain.money import CNY, Money
from autosettle.services import ledger as ledger_service
from autosettle.services.context import ServiceContext
from autosettle.store import migrate
from autosettle.store.engine import make_engine
from autosettle.store.tables import journal_entries, journal_lines
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

NAME = "ledger_post"
ENTRIES_FULL = 100_000
SINGLE_ENTRIES_FULL = 10_000
# --quick is a smoke run that must finish in seconds: PostgreSQL pays two round trips per
# entry, so it gets fewer entries than SQLite.
ENTRIES_QUICK = {"sqlite": 10_000, "postgresql": 1_000}
SINGLE_ENTRIES_QUICK = {"sqlite": 500, "postgresql": 200}
BATCH_ENTRIES = 500
MERCHANTS = 1_000
SALE_AMOUNT_MINOR_MAX = 500_000  # 5,000.00 CNY
SEED = 20_260_918
BENCH_PAN_TOKEN_KEY = "11" * 32  # fixed, bench-only keys: nothing secret is handled here
BENCH_DATA_KEY = "22" * 32
MIB_BYTES = 2**20
MERCHANT_ID_PREFIX = "8983100"  # + 8 digits = the 15 characters of field 42

UrlFactory = Callable[[str], AbstractContextManager[str]]


@dataclass(frozen=True, slots=True)
class Case:
    """One way of posting: how many entries, and how many per unit of work."""

    name: str
    entries: int
    batch_entries: int


@dataclass(frozen=True, slots=True)
class Timing:
    seconds: float
    build_seconds: float
    peak_rss_bytes: int


def merchant_id(index: int) -> str:
    return f"{MERCHANT_ID_PREFIX}{index % MERCHANTS:08d}"


def sale_entries(count: int, batch_entries: int) -> Iterator[list[JournalEntry]]:
    """The workload, ``batch_entries`` at a time, identical on every call (fixed seed)."""
    rng = random.Random(SEED)
    receivable = Account(AccountType.CHANNEL_RECEIVABLE)
    unsettled = [Account(AccountType.MERCHANT_UNSETTLED, merchant_id(m))
                 for m in range(MERCHANTS)]
    for start in range(0, count, batch_entries):
        batch = []
        for i in range(start, min(start + batch_entries, count)):
            account = unsettled[i % MERCHANTS]
            amount = Money(rng.randint(1, SALE_AMOUNT_MINOR_MAX), CNY)
            batch.append(transfer(f"bench:sale:{i:09d}", "sale", receivable, account, amount,
                                  merchant_id=account.merchant_id, reference=f"{i:012d}"))
        yield batch


def _context(url: str, data_dir: Path) -> ServiceContext:
    settings = Settings(data_dir=data_dir, database_url=url,
                        pan_token_key=SecretStr(BENCH_PAN_TOKEN_KEY),
                        data_key=SecretStr(BENCH_DATA_KEY))
    return ServiceContext(settings=settings, db=Database(url))


def _check_ledger(ctx: ServiceContext, expected_entries: int) -> None:
    with ctx.db.unit_of_work() as uow:
        count = uow.ledger.entry_count()
        unbalanced = uow.ledger.unbalanced_entries(limit=5)
    imbalance = ledger_service.ledger_imbalance(ctx)
    if count != expected_entries or unbalanced or any(imbalance.values()):
        raise BenchCheckFailed(f"expected {expected_entries} balanced entries, found {count}; "
                               f"unbalanced {unbalanced}; imbalance {imbalance}")


def _check_replay(ctx: ServiceContext, case: Case) -> None:
    """Posting the first batch again must create nothing (idempotency keys)."""
    first = next(sale_entries(min(case.entries, BATCH_ENTRIES), BATCH_ENTRIES))
    if any(posted.created for posted in ledger_service.post_many(ctx, first)):
        raise BenchCheckFailed("a replayed entry was posted twice")


def run_service(url: str, data_dir: Path, case: Case) -> Timing:
    """Post the workload through ``services.ledger`` into the migrated database at ``url``."""
    migrate.upgrade(url)
    ctx = _context(url, data_dir)
    posted = build = 0.0
    reset_peak_rss()
    try:
        started = time.perf_counter()
        for batch in sale_entries(case.entries, BATCH_ENTRIES):
            build += time.perf_counter() - started
            started = time.perf_counter()
            if case.batch_entries == 1:
                for entry in batch:
                    ledger_service.post(ctx, entry)
            else:
                for start in range(0, len(batch), case.batch_entries):
                    ledger_service.post_many(ctx, batch[start:start + case.batch_entries])
            posted += time.perf_counter() - started
            started = time.perf_counter()
        peak = peak_rss_bytes()
        _check_ledger(ctx, case.entries)
        _check_replay(ctx, case)
    finally:
        ctx.db.dispose()
    return Timing(posted, build, peak)


def _rows(batch: list[JournalEntry], first_id: int,
          at: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    entry_rows: list[dict[str, Any]] = []
    line_rows: list[dict[str, Any]] = []
    for offset, entry in enumerate(batch):
        entry_id = first_id + offset
        entry_rows.append({
            "entry_id": entry_id, "idempotency_key": entry.idempotency_key,
            "fingerprint": entry.fingerprint(), "kind": entry.kind,
            "merchant_id": entry.merchant_id, "reference": entry.reference, "created_at": at,
        })
        line_rows.extend({
            "entry_id": entry_id, "account_code": line.account.code,
            "merchant_id": line.account.merchant_id, "currency": line.amount.currency.code,
            "amount_minor": line.amount.amount_minor,
        } for line in entry.lines)
    return entry_rows, line_rows


def _insert(engine: Engine, entry_rows: list[dict[str, Any]],
            line_rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        conn.execute(insert(journal_entries), entry_rows)
        conn.execute(insert(journal_lines), line_rows)


def run_reference(url: str, case: Case) -> Timing:
    """Plain Core executemany INSERTs of the same rows, ``case.batch_entries`` per commit."""
    migrate.upgrade(url)
    engine = make_engine(url)
    at = datetime.now(UTC)
    elapsed = build = 0.0
    next_id = 1
    reset_peak_rss()
    try:
        for batch in sale_entries(case.entries, BATCH_ENTRIES):
            started = time.perf_counter()
            chunks = [_rows(batch[i:i + case.batch_entries], next_id + i, at)
                      for i in range(0, len(batch), case.batch_entries)]
            next_id += len(batch)
            build += time.perf_counter() - started
            started = time.perf_counter()
            for entry_rows, line_rows in chunks:
                _insert(engine, entry_rows, line_rows)
            elapsed += time.perf_counter() - started
        peak = peak_rss_bytes()
        ctx_db = Database(url)
        try:
            with ctx_db.unit_of_work() as uow:
                count = uow.ledger.entry_count()
        finally:
            ctx_db.dispose()
        if count != case.entries:
            raise BenchCheckFailed(f"reference inserted {count} of {case.entries} entries")
    finally:
        engine.dispose()
    return Timing(elapsed, build, peak)


def _measure(database: str, fresh: UrlFactory, data_dir: Path, case: Case,
             progress: Callable[[str], None]) -> Measurement:
    progress(f"{NAME} {database} {case.name}: service layer, {case.entries:,} entries")
    with fresh("ours") as url:
        ours = run_service(url, data_dir, case)
    progress(f"{NAME} {database} {case.name}: reference INSERTs")
    with fresh("reference") as url:
        ref = run_reference(url, case)
    return Measurement(
        database=database, case=case.name, items=case.entries,
        batch_size=case.batch_entries, seconds=ours.seconds,
        rate_per_s=case.entries / ours.seconds,
        reference=f"Core executemany INSERT of the same rows, {case.batch_entries} "
                  f"entr{'y' if case.batch_entries == 1 else 'ies'} per commit",
        reference_seconds=ref.seconds, reference_rate_per_s=case.entries / ref.seconds,
        peak_rss_bytes=ours.peak_rss_bytes,
        notes=f"building the entries took {ours.build_seconds:.2f} s (not counted); "
              f"reference peak RSS {ref.peak_rss_bytes / MIB_BYTES:.0f} MiB",
    )


def cases(config: BenchConfig, database: str) -> list[Case]:
    """The two cases, sized for a full run or a ``--quick`` one."""
    entries = ENTRIES_QUICK[database] if config.quick else ENTRIES_FULL
    single = SINGLE_ENTRIES_QUICK[database] if config.quick else SINGLE_ENTRIES_FULL
    return [Case(f"post_many, {BATCH_ENTRIES}/UoW", entries, BATCH_ENTRIES),
            Case("post, 1/UoW", single, 1)]


def run(config: BenchConfig) -> BenchReport:
    """The ``ledger_post`` benchmark."""
    report = BenchReport(NAME, "balanced sale entries posted through services.ledger, "
                         "against plain Core INSERTs of the same rows")
    report.facts.update({"merchants": MERCHANTS, "seed": SEED,
                         "lines_per_entry": 2, "batch_entries": BATCH_ENTRIES})
    with temp_directory("autosettle-bench-") as tmp:
        data_dir = Path(tmp)

        def fresh_sqlite(label: str) -> AbstractContextManager[str]:
            return sqlite_database(data_dir, label)

        for case in cases(config, "sqlite"):
            report.measurements.append(
                _measure("sqlite", fresh_sqlite, data_dir, case, config.progress))
        if config.sqlite_only:
            report.notes.append("PostgreSQL skipped (--sqlite-only)")
            return report
        server, note = connect_postgres()
        report.notes.append(note)
        if server is None:
            return report
        report.facts["postgresql_version"] = server.version

        try:
            with server.bench_database() as database:
                def fresh_postgres(label: str) -> AbstractContextManager[str]:
                    return database.fresh()

                for case in cases(config, "postgresql"):
                    report.measurements.append(
                        _measure("postgresql", fresh_postgres, data_dir, case,
                                 config.progress))
        finally:
            server.dispose()
    return report
