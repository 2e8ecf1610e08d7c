"""A merchant statement over hundreds of thousands of journal lines, in every format.

Workload: one merchant with :data:`ENTRIES_FULL` sale entries (``Dr channel_receivable /
Cr merchant_unsettled:<m>``, one merchant line each) spread over :data:`DAYS` days, written
with Core ``executemany`` (the data set is not what is measured). The statement covers the
whole period: every entry is a row, with its running balance.

Cases, on SQLite (a temporary file) and on PostgreSQL (database ``autosettle_bench``): the
statement built by :mod:`autosettle.reports.catalog` (totals in SQL, rows read page by page
in units of work of their own) and written as CSV, XLSX, PDF and JSON to a temporary file.
Peak RSS is reported per case: it stays flat because nothing holds all rows.

Reference, from the same run: a bare ``SELECT`` of the same rows (entry id, time, kind,
reference, the merchant's amount) in one statement, written with :mod:`csv` to a temporary
file. The gap is the price of paging, the running balance, the typed cells and the format.
"""

from __future__ import annotations

import csv
import random
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from autosettle.domain.merchants import CycleCode, MerchantType
from autosettle.reports.catalog import ReportName, ReportRequest, build
from autosettle.reports.formats import ReportFormat, render
from autosettle.services import merchants
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.store import migrate
from autosettle.store.engine import make_engine
from autosettle.store.tables import journal_entries, journal_lines
from autosettle.store.uow import Database
from bench.core import (
    PG_BENCH_DATABASE,
    BenchCheckFailed,
    BenchConfig,
    BenchReport,
    Measurement,
    bench_settings,
    connect_postgres,
    peak_rss_bytes,
    reset_peak_rss,
    sqlite_database,
    temp_directory,
)

NAME = "reports"
ENTRIES_FULL = 200_000
ENTRIES_QUICK = 5_000
PDF_ENTRIES_FULL = 50_000  # PDF is drawn glyph by glyph: its own, smaller statement
DAYS = 30
INSERT_BATCH = 5_000
MERCHANT = "898310054110001"
FIRST_DAY = date(2026, 9, 1)
SEED = 20_260_918
MIB_BYTES = 2**20

UrlFactory = Callable[[str], AbstractContextManager[str]]


def _rows(count: int) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    rng = random.Random(SEED)
    start = datetime.combine(FIRST_DAY, datetime.min.time(), UTC)
    step = timedelta(days=DAYS) / max(count, 1)
    for first in range(0, count, INSERT_BATCH):
        entries, lines = [], []
        for i in range(first, min(first + INSERT_BATCH, count)):
            entry_id = i + 1
            amount = rng.randint(100, 500_000)
            entries.append({"entry_id": entry_id, "idempotency_key": f"bench:stmt:{i:09d}",
                            "fingerprint": "0" * 64, "kind": "sale.captured",
                            "merchant_id": MERCHANT, "reference": f"{i:032x}",
                            "created_at": start + step * i})
            lines.append({"entry_id": entry_id, "account_code": "channel_receivable",
                          "merchant_id": None, "currency": "CNY", "amount_minor": amount})
            lines.append({"entry_id": entry_id,
                          "account_code": f"merchant_unsettled:{MERCHANT}",
                          "merchant_id": MERCHANT, "currency": "CNY",
                          "amount_minor": -amount})
        yield entries, lines


def populate(url: str, data_dir: Path, count: int) -> ServiceContext:
    """A migrated database with the merchant and ``count`` sale entries."""
    migrate.upgrade(url)
    ctx = ServiceContext(settings=bench_settings(url, data_dir), db=Database(url))
    merchants.create_merchant(ctx, SYSTEM, merchants.NewMerchant(
        MERCHANT, "华联超市有限公司", MerchantType.ENTERPRISE, "5411",
        settlement_cycle=CycleCode.T1))
    engine = make_engine(url)
    try:
        for entries, lines in _rows(count):
            with engine.begin() as conn:
                conn.execute(insert(journal_entries), entries)
                conn.execute(insert(journal_lines), lines)
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE journal_lines")
                conn.exec_driver_sql("ANALYZE journal_entries")
    finally:
        engine.dispose()
    return ctx


def _request() -> ReportRequest:
    return ReportRequest(ReportName.STATEMENT, date_from=FIRST_DAY,
                         date_to=FIRST_DAY + timedelta(days=DAYS), merchant_id=MERCHANT)


def run_ours(ctx: ServiceContext, fmt: ReportFormat, out: Path,
             count: int) -> tuple[float, int, int]:
    """(seconds, peak RSS, bytes) of building and writing the statement as ``fmt``."""
    reset_peak_rss()
    started = time.perf_counter()
    report = build(ctx, SYSTEM, _request())
    written = [0]

    def seen(n: int) -> None:
        written[0] += n

    with out.open("wb") as handle:
        render(report, fmt, handle, progress=seen)
    seconds = time.perf_counter() - started
    if report.row_count != count or written[0] != count:
        raise BenchCheckFailed(f"{fmt}: {report.row_count} rows counted, {written[0]} "
                               f"written, {count} expected")
    closing = {f.key: f.value for f in report.figures}["closing"]
    if closing != _expected_closing(count):
        raise BenchCheckFailed(f"closing balance {closing} != {_expected_closing(count)}")
    return seconds, peak_rss_bytes(), out.stat().st_size


def _expected_closing(count: int) -> int:
    total = 0
    for _, lines in _rows(count):
        total += sum(-line["amount_minor"] for line in lines if line["merchant_id"])
    return total


def run_reference(url: str, out: Path) -> tuple[float, int]:
    """A bare SELECT of the same rows, written with csv (one statement, no paging)."""
    engine = make_engine(url)
    line, entry = journal_lines.c, journal_entries.c
    query = (select(entry.entry_id, entry.created_at, entry.kind, entry.reference,
                    -func.sum(line.amount_minor))
             .select_from(journal_lines.join(journal_entries,
                                             entry.entry_id == line.entry_id))
             .where(line.merchant_id == MERCHANT)
             .group_by(entry.entry_id, entry.created_at, entry.kind, entry.reference)
             .order_by(entry.entry_id))
    try:
        started = time.perf_counter()
        rows = 0
        with engine.connect() as conn, out.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            for row in conn.execute(query):
                writer.writerow(row)
                rows += 1
        return time.perf_counter() - started, rows
    finally:
        engine.dispose()


def _measure(database: str, fresh: UrlFactory, data_dir: Path, count: int,
             formats: tuple[ReportFormat, ...],
             progress: Callable[[str], None]) -> list[Measurement]:
    results = []
    with fresh(f"stmt{count}") as url:
        progress(f"{NAME} {database}: {count:,} journal entries for one merchant")
        ctx = populate(url, data_dir, count)
        try:
            ref_s, ref_rows = run_reference(url, data_dir / "reference.csv")
            if ref_rows != count:
                raise BenchCheckFailed(f"reference read {ref_rows} of {count} rows")
            for fmt in formats:
                progress(f"{NAME} {database}: statement as {fmt.value}")
                seconds, peak, size = run_ours(ctx, fmt, data_dir / f"statement.{fmt.value}",
                                               count)
                results.append(Measurement(
                    database=database, case=f"statement {fmt.value}", items=count,
                    batch_size=0, seconds=seconds, rate_per_s=count / seconds,
                    reference="bare SELECT of the same rows written with csv",
                    reference_seconds=ref_s, reference_rate_per_s=count / ref_s,
                    peak_rss_bytes=peak, unit="rows",
                    notes=f"{size / MIB_BYTES:.1f} MiB written"))
        finally:
            ctx.db.dispose()
    return results


def run(config: BenchConfig) -> BenchReport:
    """The ``reports`` benchmark."""
    report = BenchReport(NAME, "a merchant statement over many journal lines in every "
                         "format, against a bare SELECT of the same rows written as CSV")
    count = ENTRIES_QUICK if config.quick else ENTRIES_FULL
    pdf_count = ENTRIES_QUICK if config.quick else PDF_ENTRIES_FULL
    tabular = (ReportFormat.CSV, ReportFormat.XLSX, ReportFormat.JSON)
    report.facts.update({"entries": count, "pdf_entries": pdf_count, "days": DAYS,
                         "seed": SEED})
    with temp_directory("autosettle-bench-") as tmp:
        data_dir = Path(tmp)

        def fresh_sqlite(label: str) -> AbstractContextManager[str]:
            return sqlite_database(data_dir, label)

        report.measurements += _measure("sqlite", fresh_sqlite, data_dir, count, tabular,
                                        config.progress)
        report.measurements += _measure("sqlite", fresh_sqlite, data_dir, pdf_count,
                                        (ReportFormat.PDF,), config.progress)
        if config.sqlite_only:
            report.notes.append("PostgreSQL skipped (--sqlite-only)")
            return report
        server, note = connect_postgres()
        report.notes.append(note)
        if server is None:
            return report
        report.facts["postgresql_version"] = server.version
        try:
            with server.bench_database(f"{PG_BENCH_DATABASE}_reports") as database:
                def fresh_postgres(label: str) -> AbstractContextManager[str]:
                    return database.fresh()

                report.measurements += _measure("postgresql", fresh_postgres, data_dir,
                                                count, tabular, config.progress)
        finally:
            server.dispose()
    return report
