"""Reconciliation: N of our records against an N-line ACP file with 0.1 % planted faults.

Set-up (not timed): a migrated database with N sale records (plus settlement items with
their fees, and 0.05 % reversed sales) spread over :data:`MERCHANTS` merchants, and the
ACP detail file the channel would write for them (GBK, fixed width, header and trailer),
with 0.1 % discrepancies planted by the issuer simulator's fault planter (every kind).

Measured, on SQLite and PostgreSQL, from the same run:

- ``parse+match``: reading the file with the streaming columnar parser (every line checked,
  no storing), loading both sides of the day from the database (our records with their
  fees, the imported lines) and matching them. **Reference**: polars reading the same file
  (one column, the same fields sliced and cast), our rows read with the same query, and one
  join on the same keys.
- ``store``: writing the run's results (replacing the day's matches and discrepancies, the
  clearing entry, the day) against the **write floor**: a bare bulk insert of the very same
  result rows, by the same driver path, into tables of the same columns without indexes.
- ``import``: the whole import (hash, parse, check, store every line) for the record.

The run checks its own results: exactly the planted discrepancies are found.
Size: ``AUTOSETTLE_BENCH_RECON_SIZE`` (default 1,000,000; ``--quick``: 20,000).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
from sqlalchemy import text

from autosettle.domain.recon_layouts import control_record
from autosettle.services import recon
from autosettle.services.context import SYSTEM, build_context
from autosettle.services.recon_parse import parse_file
from autosettle.store import migrate
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

NAME = "recon"
SIZE_ENV = "AUTOSETTLE_BENCH_RECON_SIZE"
DATABASE_ENV = "AUTOSETTLE_BENCH_RECON_DATABASE"
"""The PostgreSQL database the benchmark creates and drops (default: the benches' own)."""
SIZE_FULL = 1_000_000
SIZE_QUICK = 20_000
MERCHANTS = 100
DAY = date(2026, 9, 18)
CHANNEL = "issuer-sim"
SEED = 20_260_918
FAULT_SHARE = 0.001
REVERSED_SHARE = 0.0005
FEE_BP = 38  # the channel's and our fee, 0.38 %
SETUP_ROWS = 200_000


def _size(config: BenchConfig) -> int:
    if config.quick:
        return SIZE_QUICK
    return int(os.environ.get(SIZE_ENV, SIZE_FULL))


@contextmanager
def _database(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        with sqlite_database(folder, "recon") as url:
            yield url
        return
    server, _ = connect_postgres()
    if server is None:
        raise BenchCheckFailed("no PostgreSQL")
    try:
        name = os.environ.get(DATABASE_ENV) or PG_BENCH_DATABASE
        with server.bench_database(name) as database, database.fresh() as url:
            yield url
    finally:
        server.dispose()


def _setup(url: str, n: int, folder: str) -> tuple[str, dict[str, int]]:
    """Our records in the database, the channel's file on disk (columnar, in a process of
    its own so that none of it counts in the measured peak RSS); the planted faults by
    result class."""
    db = Database(url)
    rng = random.Random(SEED)
    now = datetime(2026, 9, 18, 4, 0, tzinfo=UTC)
    with db.unit_of_work() as uow:
        uow.connection.execute(text(
            "INSERT INTO merchants (merchant_id, legal_name, short_name, merchant_type, mcc, "
            "status, settlement_cycle, currency, created_at, updated_at) VALUES "
            + ", ".join(f"('8983100{m:08d}', 'Bench {m}', 'B{m}', 'enterprise', '5411', "
                        f"'active', 'T1', 'CNY', :t, :t)" for m in range(MERCHANTS))),
            {"t": now})
    i = pl.int_range(n, dtype=pl.Int64)
    reversed_every = int(1 / REVERSED_SHARE)
    base = datetime(2026, 9, 18, 4, 0)
    ours = pl.select(
        (pl.lit("8983100") + (i % MERCHANTS).cast(pl.Utf8).str.zfill(8)).alias("merchant_id"),
        (pl.lit("b") + i.cast(pl.Utf8).str.zfill(31)).alias("txn_id"),
        (pl.lit("BT") + (i % MERCHANTS).cast(pl.Utf8).str.zfill(6)).alias("terminal_id"),
        pl.lit("sale").alias("txn_type"),
        pl.when(i % reversed_every == reversed_every - 1).then(pl.lit("reversed"))
        .otherwise(pl.lit("approved")).alias("status"),
        (i.hash(SEED) % 499_900 + 100).cast(pl.Int64).alias("amount_minor"),
        pl.lit("CNY").alias("currency"), pl.lit(0).alias("refunded_minor"),
        (i // 900_000).cast(pl.Utf8).str.zfill(6).alias("batch_no"),
        (i % 900_000).cast(pl.Utf8).str.zfill(6).alias("stan"),
        i.cast(pl.Utf8).str.zfill(12).alias("rrn"), pl.lit(CHANNEL).alias("channel"),
        pl.lit("b" * 64).alias("request_fingerprint"), pl.lit(DAY).alias("business_date"),
        (pl.lit(base) + pl.duration(seconds=i % 36_000)).alias("created_at"),
        pl.lit("5679").alias("pan_last4"))
    ours = ours.with_columns(pl.col("created_at").alias("updated_at"),
                             pl.col("created_at").alias("answered_at"))
    items = ours.filter(pl.col("status") == "approved").select(
        "merchant_id", "txn_id", pl.col("txn_id").alias("source_txn_id"),
        pl.lit("capture").alias("kind"), "txn_type", pl.lit("debit").alias("card_kind"),
        "business_date", pl.lit("T1").alias("cycle"),
        pl.lit(DAY + timedelta(days=1)).alias("due_date"), "amount_minor",
        ((pl.col("amount_minor") * FEE_BP + 5_000) // 10_000).alias("fee_minor"),
        "currency", pl.lit("bench").alias("fee_schedule"), pl.lit(False).alias("held"),
        "created_at")
    for start in range(0, n, SETUP_ROWS):
        with db.unit_of_work() as uow:
            uow.recon.write_frame("transactions", ours.slice(start, SETUP_ROWS))
            uow.recon.write_frame("settlement_items", items.slice(start, SETUP_ROWS))
    db.dispose()
    # the channel's lines: every approved sale, then the planted faults
    lines = ours.with_row_index("idx").select(
        "idx", "status", "txn_id", "merchant_id", "terminal_id", "amount_minor",
        ((pl.col("amount_minor") * FEE_BP + 5_000) // 10_000).alias("fee_minor"),
        pl.col("stan").alias("trace"), (pl.col("created_at") + pl.duration(hours=8))
        .alias("local"))
    each = max(1, int(n * FAULT_SHARE) // 6)
    live = lines.filter(pl.col("status") == "approved")["idx"].to_list()
    picked = rng.sample(live, 4 * each)
    missing, amount, next_day, fee = (set(picked[k * each:(k + 1) * each]) for k in range(4))
    gone = lines.filter(pl.col("status") == "reversed")["idx"].to_list()[:each]
    idx = pl.col("idx")
    lines = lines.filter((pl.col("status") == "approved") & ~idx.is_in(list(missing))
                         | idx.is_in(gone)).with_columns(
        pl.when(idx.is_in(list(amount))).then(pl.col("amount_minor") + 1)
        .otherwise(pl.col("amount_minor")).alias("amount_minor"),
        pl.when(idx.is_in(list(fee))).then(pl.col("fee_minor") + 1)
        .otherwise(pl.col("fee_minor")).alias("fee_minor"),
        pl.when(idx.is_in(list(next_day))).then(pl.col("local") + pl.duration(days=1))
        .otherwise(pl.col("local")).alias("local"))
    extra = lines.head(each).with_columns(
        (pl.lit("x") + pl.col("txn_id").str.slice(1)).alias("txn_id"),
        (pl.col("amount_minor") + 7).alias("amount_minor"))
    lines = pl.concat([lines, extra])
    path = Path(folder) / f"INN{DAY:%y%m%d}01ZM"
    _write_acp(lines, path)
    planted = {"ours_only": len(missing), "theirs_only": each, "amount_mismatch": len(amount),
               "status_mismatch": len(gone), "date_mismatch": len(next_day),
               "fee_mismatch": len(fee)}
    return str(path), planted


def _write_acp(lines: pl.DataFrame, path: Path) -> None:
    """The ACP detail file of ``lines`` (columnar: each record built by string
    concatenation of the padded fields)."""
    spec = recon.builtin_sources()["acp"]
    assert spec.header is not None and spec.trailer is not None
    values = {
        "txn_code": pl.lit("S22"), "trace": pl.col("trace"),
        "txn_time": pl.col("local").dt.strftime("%m%d%H%M%S"),
        "account": pl.lit("622202******5679"),
        "amount": pl.col("amount_minor").cast(pl.Utf8).str.zfill(12),
        "order_ref": pl.col("txn_id"),
        "fee": pl.col("fee_minor").cast(pl.Utf8).str.zfill(13),
        "merchant_id": pl.col("merchant_id"), "terminal_id": pl.col("terminal_id")}
    parts: list[pl.Expr] = []
    at = 0
    for name, pos in sorted(spec.fields.items(), key=lambda kv: kv[1].start):
        if pos.start > at:
            parts.append(pl.lit(" " * (pos.start - at)))
        parts.append(values[name].str.pad_end(pos.width))
        at = pos.start + pos.width
    parts.append(pl.lit(" " * (spec.record_bytes - at)))
    records = lines.select(pl.concat_str(parts).alias("r"))["r"]
    total = int(lines["amount_minor"].sum())
    with open(path, "wb") as handle:
        handle.write(control_record(spec.header, DAY, len(records), total) + b"\n")
        for start in range(0, len(records), SETUP_ROWS):
            chunk = records.slice(start, SETUP_ROWS).to_list()
            handle.write(("\n".join(chunk) + "\n").encode("gbk"))
        handle.write(control_record(spec.trailer, DAY, len(records), total) + b"\n")


def _reference(path: Path, db: Database) -> tuple[float, int]:
    """polars reads the same file and joins it to the same rows on the same keys."""
    spec = recon.builtin_sources()["acp"]
    t0 = time.perf_counter()
    raw = pl.read_csv(path, has_header=False, separator="\x1f", quote_char=None,
                      new_columns=["raw"], skip_rows=1, infer_schema=False)
    raw = raw.filter(~pl.col("raw").str.starts_with("TRL"))

    def cut(name: str) -> pl.Expr:
        p = spec.fields[name]
        return pl.col("raw").str.slice(p.start, p.width).str.strip_chars().alias(name)
    theirs = raw.select(cut("order_ref"), cut("terminal_id"), cut("txn_code"),
                        cut("amount").cast(pl.Int64), cut("fee").cast(pl.Int64, strict=False),
                        cut("txn_time"))
    with db.unit_of_work() as uow:
        # (the store reads the terminal as a categorical: as text again, for a join of text
        # to text as before)
        ours = uow.recon.our_records(CHANNEL, DAY).with_columns(
            pl.col("terminal_id").cast(pl.Utf8))
    joined = theirs.join(ours, left_on=["order_ref", "terminal_id"],
                         right_on=["txn_id", "terminal_id"], how="full")
    return time.perf_counter() - t0, joined.height


def _measure(kind: str, n: int, config: BenchConfig) -> list[Measurement]:
    with temp_directory("autosettle-bench-recon-") as folder_name, \
            _database(kind, Path(folder_name)) as url:
        folder = Path(folder_name)
        migrate.upgrade(url)
        ctx = build_context(bench_settings(url, folder / "var"),
                            clock=lambda: datetime(2026, 9, 19, 2, 0, tzinfo=UTC))
        config.progress(f"recon {kind}: setting up {n:,} records and the ACP file")
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            made, planted = pool.submit(_setup, url, n, folder_name).result()
        path = Path(made)
        spec = recon.builtin_sources()["acp"]
        reset_peak_rss()
        config.progress(f"recon {kind}: parse, import, run")
        t0 = time.perf_counter()
        report = parse_file(path, spec, lambda _frame: None)
        parse_s = time.perf_counter() - t0
        if report.problems or report.bad:
            raise BenchCheckFailed(f"the file did not parse cleanly: {report.problems}")
        t0 = time.perf_counter()
        recon.import_file(ctx, SYSTEM, path, "acp")
        import_s = time.perf_counter() - t0
        run = recon.run_day(ctx, SYSTEM, DAY, CHANNEL, clock=time.perf_counter)
        rss = peak_rss_bytes()
        found = {k: v for k, v in run.counts.items() if k != "matched"}
        if found != planted:
            raise BenchCheckFailed(f"found {found}, planted {planted}")
        ours_s = parse_s + run.timings["load"] + run.timings["match"]
        ref_s, _ = _reference(path, ctx.db)
        floor_s = _floor(ctx.db)
        ctx.db.dispose()
    store_s = run.timings["store"]
    return [
        Measurement(kind, "parse+match", n, n, ours_s, n / ours_s, "polars read+join", ref_s,
                    n / ref_s, rss, unit="lines",
                    notes=f"parse {parse_s:.2f}s, load {run.timings['load']:.2f}s, match "
                          f"{run.timings['match']:.2f}s; ratio target ≤ 2"),
        Measurement(kind, "store", n, n, store_s, n / store_s, "bare bulk insert", floor_s,
                    n / floor_s, rss, unit="lines", notes="ratio target ≤ 2"),
        Measurement(kind, "import", n, n, import_s, n / import_s, "parse only", parse_s,
                    n / parse_s, rss, unit="lines",
                    notes="hash + parse + check + store every line"),
    ]


def _say(message: str) -> None:
    print(f"… {message}", file=sys.stderr, flush=True)


def _measure_in_child(kind: str, n: int, quick: bool) -> list[Measurement]:
    return _measure(kind, n, BenchConfig(quick=quick, progress=_say))


def _measure_apart(kind: str, n: int, quick: bool) -> list[Measurement]:
    """:func:`_measure` in a fresh process: each database's peak RSS is its own (not what
    the measurement of the other database left in this process's allocators)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_measure_in_child, kind, n, quick).result()


def _floor(db: Database) -> float:
    """A bare bulk insert of the same result rows the run stored (read back from its
    tables), by the same driver path, into index-free tables of the same columns."""
    with db.unit_of_work() as uow:
        conn = uow.connection
        for table in ("recon_matches", "recon_discrepancies"):
            conn.execute(text(f"CREATE TABLE bench_{table} AS SELECT * FROM {table} "
                              "WHERE 1 = 0"))
        matches = uow.recon.read_frame_sql(
            "SELECT channel, business_date, merchant_id, txn_id, line_id, rule, amount_minor, "
            "currency FROM recon_matches", ("channel", "business_date", "merchant_id",
                                            "txn_id", "line_id", "rule", "amount_minor",
                                            "currency"))
        found = uow.recon.read_frame_sql(
            "SELECT channel, business_date, klass, merchant_id, txn_id, line_id, "
            "our_amount_minor, their_amount_minor, currency, state FROM recon_discrepancies",
            ("channel", "business_date", "klass", "merchant_id", "txn_id", "line_id",
             "our_amount_minor", "their_amount_minor", "currency", "state"))
    with db.unit_of_work() as uow:   # timed inside the transaction, as the run's store is
        t0 = time.perf_counter()
        uow.recon.write_frame("bench_recon_matches", matches)
        uow.recon.write_frame("bench_recon_discrepancies", found.with_columns(
            pl.lit(datetime(2026, 9, 19, 2, 0)).alias("created_at")))
        return time.perf_counter() - t0


def run(config: BenchConfig) -> BenchReport:
    n = _size(config)
    report = BenchReport(NAME, f"{n:,} of our records against a {n:,}-line ACP file with "
                               f"{FAULT_SHARE:.1%} planted discrepancies")
    kinds = ["sqlite"] + ([] if config.sqlite_only else ["postgresql"])
    for kind in kinds:
        try:
            config.progress(f"recon {kind}: measured in a process of its own")
            report.measurements.extend(_measure_apart(kind, n, config.quick))
        except BenchCheckFailed as exc:
            if kind == "postgresql" and str(exc) == "no PostgreSQL":
                report.notes.append("PostgreSQL skipped: unreachable")
                continue
            raise
    report.notes.append("ours/ref below 1 means slower than the reference: parse+match "
                        "target ≥ 0.5, store target ≥ 0.5; peak RSS target ≤ 1 GiB")
    return report

