"""Approved card sales per second and their latency, through the service layer and over HTTP.

Workload: one merchant with one terminal and one debit card per client (a supermarket with
N lanes), so neither the terminal's batch row (trace numbers) nor the simulator's card row is
a single hot row. Every client sends sales of pseudo-random amounts (fixed seed) with a
unique idempotency key, one after the other, for a fixed time; only approved sales are
counted. The issuer simulator answers at once (no injected latency).

Cases, on SQLite (a new temporary file per measurement) and on PostgreSQL (database
``autosettle_bench_payments``, created for the run and dropped after it, emptied before each
measurement), each with 1, 8 and 32 clients (threads):

- ``service``: ``services.payments.authorize(ctx, PaymentRequest(SALE, ...))`` called from
  the client threads, in this process.
- ``http``: ``POST /v1/payments/sales`` with a terminal API key and an ``Idempotency-Key``,
  sent by one ``httpx.Client`` (keep-alive) per client thread to a real uvicorn server on
  127.0.0.1, started for the measurement in a child process (one worker: the default of
  ``autosettle serve``), so the clients do not share the server's interpreter lock.

Each client first sends :data:`WARMUP_SALES` untimed sales. Latency is measured per request
by the client (p50 and p99 by nearest rank). Afterwards the run is checked: the number of
approved sale records equals the approvals the clients saw, the ledger balances, the
merchant's unsettled balance and the simulator's card balances moved by exactly the approved
amounts. The benchmark fails rather than report numbers for wrong work.

Reference, same run, same machine, same PostgreSQL server: ``pgbench``'s built-in tpcb-like
script (``pgbench -i -s 10`` into a scratch database, then ``pgbench -c N -j min(N, 2) -T
<seconds> -n``) at each client count; its TPS is parsed from its output. A tpcb-like
transaction is five statements (three UPDATEs, a SELECT, an INSERT) in one commit; a sale
here is two commits (the pending record before the channel call, the answer after it) plus
the simulator's own. The issue's targets: our sales/s at least half of pgbench's TPS at equal
concurrency, and p99 under 50 ms at 32 clients; the report says which are met and asserts
nothing. Mind what is compared: pgbench's client is C with ``-j`` threads, ours are Python
threads sharing one interpreter lock (and, over HTTP, the client threads cost CPU of their
own on the same machine as the server and the database).

``--quick``: 1 and 8 clients, :data:`SECONDS_QUICK` s per case, pgbench 1 s per client
count; the whole benchmark in under 30 s.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from autosettle.channels.simulator import IssuerSimulator
from autosettle.domain.cards import luhn_check_digit
from autosettle.domain.merchants import MerchantType
from autosettle.domain.money import Money
from autosettle.domain.response_codes import ResponseCode
from autosettle.domain.transactions import TxnType
from autosettle.services import apikeys, merchants, payments
from autosettle.services import ledger as ledger_service
from autosettle.services.context import SYSTEM, Role, ServiceContext
from autosettle.services.payments import CardInput, PaymentRequest
from autosettle.store import migrate
from autosettle.store.engine import normalize_url
from autosettle.store.tables import transactions
from autosettle.store.uow import Database
from bench.core import (
    MS_PER_S,
    WARMUP_SALES,
    BenchCheckFailed,
    BenchConfig,
    BenchReport,
    ClientTally,
    Measurement,
    PostgresServer,
    SaleFn,
    bench_settings,
    connect_postgres,
    drive,
    peak_rss_bytes,
    percentile_ms,
    remove_sim,
    reset_peak_rss,
    sim_url,
    sqlite_database,
    temp_directory,
)

NAME = "payments"
CLIENTS_FULL = (1, 8, 32)
CLIENTS_QUICK = (1, 8)
SECONDS_FULL = 10.0
SECONDS_QUICK = 1.0
PGBENCH_SECONDS_FULL = 10
PGBENCH_SECONDS_QUICK = 1
PGBENCH_SCALE_FULL = 10
PGBENCH_SCALE_QUICK = 10  # as the full run: at a smaller scale the branch rows are hot and
# pgbench at 8 clients measures lock waits rather than throughput
PGBENCH_JOBS_MAX = 2
PGBENCH_TIMEOUT_MARGIN_S = 60
MODES = ("service", "http")
MERCHANT_ID = "898310054110001"
MERCHANT_NAME = "Bench Supermarket Co., Ltd."
TERMINAL_PREFIX = "BT"  # + 6 digits = the 8 characters of field 41
PAN_PREFIX = "622202020"  # + 9 digits + Luhn = 19 digits
PIN = "123456"
EXPIRY = "3012"
CARD_BALANCE_MINOR = 10**11
SALE_AMOUNT_MINOR_MAX = 50_000  # 500.00 CNY
SEED = 20_260_918
PG_DATABASE = "autosettle_bench_payments"  # its own: other benchmarks may run meanwhile
PGBENCH_DATABASE = "autosettle_bench_pgbench"
PGBENCH_PATH = "/usr/bin/pgbench"
SERVE_ENV = "AUTOSETTLE_BENCH_SERVE"
RSS_PREFIX = "peak_rss_bytes="
LOG_TAIL_CHARS = 4000
REPO_ROOT = Path(__file__).resolve().parent.parent
SERVER_START_TIMEOUT_S = 30.0
SERVER_STOP_TIMEOUT_S = 10.0
SERVER_POLL_S = 0.05
HTTP_TIMEOUT_S = 30.0
HTTP_POOL_PER_CLIENT = 1
TARGET_RATIO_MIN = 0.5
TARGET_P99_MS_MAX = 50.0
TARGET_P99_CLIENTS = 32
MIB_BYTES = 2**20

_TPS_LINE = re.compile(r"^tps = ([0-9.]+) \((?:without|excluding) initial connection",
                       re.MULTILINE)
_LATENCY_LINE = re.compile(r"^latency average = ([0-9.]+) ms", re.MULTILINE)

UrlFactory = Callable[[str], AbstractContextManager[str]]


# -- the workload -------------------------------------------------------------------------------

def terminal_id(client: int) -> str:
    return f"{TERMINAL_PREFIX}{client:06d}"


def card_pan(client: int) -> str:
    partial = f"{PAN_PREFIX}{client:09d}"
    return partial + luhn_check_digit(partial)


@dataclass(frozen=True, slots=True)
class Result:
    approved_timed: int
    seconds: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    approved_total: int
    declined: dict[str, int]
    peak_rss_bytes: int
    server_peak_rss_bytes: int | None = None


def seed(ctx: ServiceContext, sim: IssuerSimulator, clients: int,
         with_keys: bool) -> list[str]:
    """One merchant, a terminal and a card per client; terminal API keys when asked."""
    merchants.create_merchant(ctx, SYSTEM, merchants.NewMerchant(
        MERCHANT_ID, MERCHANT_NAME, MerchantType.ENTERPRISE, "5411"))
    keys: list[str] = []
    for client in range(clients):
        merchants.add_terminal(ctx, SYSTEM, MERCHANT_ID, merchants.NewTerminal(
            terminal_id(client)))
        sim.add_card(card_pan(client), balance_minor=CARD_BALANCE_MINOR, pin=PIN,
                     expiry=EXPIRY)
        if with_keys:
            keys.append(apikeys.create_api_key(ctx, SYSTEM, Role.TERMINAL, f"bench-{client}",
                                               MERCHANT_ID, terminal_id(client)).key)
    return keys


# -- clients ------------------------------------------------------------------------------------

def _service_sale(ctx: ServiceContext, client: int) -> SaleFn:
    tid = terminal_id(client)
    card = CardInput(card_pan(client), EXPIRY, PIN)

    def sale(sequence: int, amount_minor: int) -> tuple[bool, str]:
        key = f"bench-{client}-{sequence}"
        result = payments.authorize(ctx, PaymentRequest(
            TxnType.SALE, MERCHANT_ID, tid, Money(amount_minor), card, idempotency_key=key))
        return result.response_code is ResponseCode.APPROVED, result.response_code.value

    return sale


def _http_sale(base_url: str, api_key: str, client: int,
               opened: list[httpx.Client]) -> SaleFn:
    http = httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT_S,
                        limits=httpx.Limits(max_connections=HTTP_POOL_PER_CLIENT),
                        headers={"Authorization": f"Bearer {api_key}"})
    opened.append(http)
    card = {"pan": card_pan(client), "expiry": EXPIRY, "pin": PIN}

    def sale(sequence: int, amount_minor: int) -> tuple[bool, str]:
        key = f"bench-{client}-{sequence}"
        response = http.post("/v1/payments/sales", headers={"Idempotency-Key": key},
                             json={"amount_minor": amount_minor, "card": card})
        if response.status_code != httpx.codes.CREATED:
            return False, f"HTTP {response.status_code}"
        body = response.json()
        return bool(body["approved"]), str(body["response_code"])

    return sale


# -- the HTTP server (child process) ------------------------------------------------------------

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve(db_url: str, data_dir: str, port: int) -> None:
    """The child process: the API on ``port`` over ``db_url`` and the simulator in
    ``data_dir``, until SIGTERM; then its peak RSS on stdout (``peak_rss_bytes=N``)."""
    import uvicorn

    from autosettle.api.app import create_app

    directory = Path(data_dir)
    sim = IssuerSimulator(sim_url(directory))
    ctx = ServiceContext(settings=bench_settings(db_url, directory), db=Database(db_url),
                         channel=sim)
    config = uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port, log_level="warning",
                            access_log=False, lifespan="off")
    # uvicorn restores the handler it found and raises the signal again once it has shut
    # down: with this one installed first, that ends here instead of killing the process
    # before the peak RSS is reported.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    try:
        uvicorn.Server(config).run()
    finally:
        ctx.db.dispose()
        sim.close()
        sys.stdout.write(f"{RSS_PREFIX}{peak_rss_bytes()}\n")
        sys.stdout.flush()
    # Everything is closed: skip the interpreter's teardown (joining idle pool threads and
    # the like), which would add to every HTTP case of a --quick run.
    os._exit(0)


def serve_from_environment() -> None:
    """Entry point of the child: its arguments come in :data:`SERVE_ENV` (the database URL
    may hold a password: not on the command line)."""
    spec = json.loads(os.environ[SERVE_ENV])
    serve(spec["db_url"], spec["data_dir"], int(spec["port"]))


def _log_tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
    except OSError:
        return ""


@contextmanager
def http_server(db_url: str, data_dir: Path) -> Iterator[tuple[str, list[int]]]:
    """Start :func:`serve` in a child process; yield its base URL and, after it stopped, a
    one-element list with its peak RSS (empty if it did not report one)."""
    port = _free_port()
    env = dict(os.environ)
    env[SERVE_ENV] = json.dumps({"db_url": db_url, "data_dir": str(data_dir), "port": port})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO_ROOT),
                                                      os.environ.get("PYTHONPATH"))))
    log_path = data_dir / "api-server.log"
    base_url = f"http://127.0.0.1:{port}"
    rss: list[int] = []
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", "from bench.payments import serve_from_environment; "
             "serve_from_environment()"], cwd=REPO_ROOT, env=env, stdout=log,
            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise BenchCheckFailed(f"the API server exited with {process.returncode}:\n"
                                       f"{_log_tail(log_path)}")
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == httpx.codes.OK:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise BenchCheckFailed(f"the API server did not start in "
                                       f"{SERVER_START_TIMEOUT_S:.0f} s:\n"
                                       f"{_log_tail(log_path)}")
            time.sleep(SERVER_POLL_S)
        yield base_url, rss
    finally:
        if process.poll() is None:
            process.terminate()  # SIGTERM: uvicorn's graceful shutdown
            try:
                process.wait(SERVER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for line in _log_tail(log_path).splitlines():
            if line.startswith(RSS_PREFIX):
                rss.append(int(line[len(RSS_PREFIX):]))
        log_path.unlink(missing_ok=True)


# -- one measurement ----------------------------------------------------------------------------

def check(ctx: ServiceContext, sim: IssuerSimulator, tallies: list[ClientTally]) -> None:
    """The database, the ledger and the simulator agree with what the clients were told."""
    seen = sum(t.approved for t in tallies)
    seen_minor = sum(t.approved_minor for t in tallies)
    with ctx.db.unit_of_work() as uow:
        stored = int(uow.connection.execute(
            select(func.count()).select_from(transactions).where(
                transactions.c.txn_type == TxnType.SALE.value,
                transactions.c.status == "approved")).scalar() or 0)
        unsettled = -uow.ledger.balance(f"merchant_unsettled:{MERCHANT_ID}", "CNY")
        unbalanced = uow.ledger.unbalanced_entries(limit=5)
    imbalance = ledger_service.ledger_imbalance(ctx)
    charged = sum(CARD_BALANCE_MINOR - sim.card(card_pan(c)).balance_minor
                  for c in range(len(tallies)))
    problems = []
    if stored != seen:
        problems.append(f"{stored} approved sale records, but the clients saw {seen} approvals")
    if unbalanced or any(imbalance.values()):
        problems.append(f"ledger unbalanced: entries {unbalanced}, imbalance {imbalance}")
    if unsettled != seen_minor:
        problems.append(f"merchant unsettled {unsettled}, approved amounts {seen_minor}")
    if charged != seen_minor:
        problems.append(f"simulator charged {charged}, approved amounts {seen_minor}")
    if problems:
        raise BenchCheckFailed("; ".join(problems))


def _summarise(tallies: list[ClientTally], elapsed: float, peak: int,
               server_peak: int | None = None) -> Result:
    latencies = sorted(s for t in tallies for s in t.latencies_s)
    declined: dict[str, int] = {}
    for tally in tallies:
        for code, count in tally.declined.items():
            declined[code] = declined.get(code, 0) + count
    return Result(
        approved_timed=sum(t.timed_approved for t in tallies), seconds=elapsed,
        p50_ms=percentile_ms(latencies, 0.50), p99_ms=percentile_ms(latencies, 0.99),
        mean_ms=(sum(latencies) / len(latencies) * MS_PER_S) if latencies else 0.0,
        approved_total=sum(t.approved for t in tallies), declined=declined,
        peak_rss_bytes=peak, server_peak_rss_bytes=server_peak)


def run_one(url: str, data_dir: Path, mode: str, clients: int, seconds: float) -> Result:
    """Migrate the database at ``url``, seed it, drive the sales, check, summarise."""
    migrate.upgrade(url)
    remove_sim(data_dir)
    sim = IssuerSimulator(sim_url(data_dir))
    ctx = ServiceContext(settings=bench_settings(url, data_dir), db=Database(url), channel=sim)
    try:
        keys = seed(ctx, sim, clients, with_keys=mode == "http")
        reset_peak_rss()
        if mode == "service":
            tallies, elapsed = drive([_service_sale(ctx, c) for c in range(clients)], seconds,
                                     SALE_AMOUNT_MINOR_MAX)
            peak, server_peak = peak_rss_bytes(), None
        else:
            sim.close()  # the server process opens the simulator's file itself
            opened: list[httpx.Client] = []
            try:
                with http_server(url, data_dir) as (base_url, server_rss):
                    tallies, elapsed = drive(
                        [_http_sale(base_url, keys[c], c, opened) for c in range(clients)],
                        seconds, SALE_AMOUNT_MINOR_MAX)
                    peak = peak_rss_bytes()
            finally:
                for http in opened:
                    http.close()
            server_peak = server_rss[0] if server_rss else None
            sim = IssuerSimulator(sim_url(data_dir))
        check(ctx, sim, tallies)
    finally:
        ctx.db.dispose()
        sim.close()
        remove_sim(data_dir)
    return _summarise(tallies, elapsed, peak, server_peak)


# -- the reference: pgbench ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PgbenchRun:
    clients: int
    jobs: int
    tps: float
    latency_avg_ms: float | None
    seconds: int


def _pg_env(url: str) -> dict[str, str]:
    parsed = make_url(normalize_url(url))
    env = dict(os.environ)
    for variable, value in (("PGHOST", parsed.host), ("PGPORT", parsed.port),
                            ("PGUSER", parsed.username), ("PGPASSWORD", parsed.password),
                            ("PGDATABASE", parsed.database)):
        if value is not None:
            env[variable] = str(value)
    return env


def pgbench_executable() -> str | None:
    return PGBENCH_PATH if Path(PGBENCH_PATH).exists() else shutil.which("pgbench")


def parse_pgbench(output: str) -> tuple[float, float | None]:
    """TPS (excluding connection set-up) and average latency from pgbench's report."""
    tps = _TPS_LINE.search(output)
    if tps is None:
        raise BenchCheckFailed(f"no TPS line in pgbench's output:\n{output}")
    latency = _LATENCY_LINE.search(output)
    return float(tps.group(1)), float(latency.group(1)) if latency else None


def run_pgbench(server: PostgresServer, executable: str, client_counts: tuple[int, ...],
                scale: int, seconds: int,
                progress: Callable[[str], None]) -> dict[int, PgbenchRun]:
    """``pgbench -i -s scale`` into a scratch database, then one run per client count."""
    runs: dict[int, PgbenchRun] = {}
    with server.bench_database(PGBENCH_DATABASE) as database:
        env = _pg_env(database.url)
        progress(f"{NAME} pgbench: initialising scale {scale}")
        subprocess.run([executable, "-i", "-q", "-s", str(scale)], env=env, check=True,
                       capture_output=True, text=True,
                       timeout=PGBENCH_TIMEOUT_MARGIN_S * max(1, scale))
        for clients in client_counts:
            jobs = min(clients, PGBENCH_JOBS_MAX)
            progress(f"{NAME} pgbench: {clients} client(s), {seconds} s")
            done = subprocess.run([executable, "-c", str(clients), "-j", str(jobs), "-T",
                                   str(seconds), "-n"], env=env, check=True,
                                  capture_output=True, text=True,
                                  timeout=seconds + PGBENCH_TIMEOUT_MARGIN_S)
            tps, latency = parse_pgbench(done.stdout)
            runs[clients] = PgbenchRun(clients, jobs, tps, latency, seconds)
    return runs


# -- the report ---------------------------------------------------------------------------------

def _measurement(database: str, mode: str, clients: int, result: Result,
                 reference: PgbenchRun | None) -> Measurement:
    rate = result.approved_timed / result.seconds if result.seconds > 0 else 0.0
    declined = ", ".join(f"{code}×{n}" for code, n in sorted(result.declined.items()))
    notes = (f"mean {result.mean_ms:.2f} ms; {result.approved_total:,} approved in all "
             f"(with {WARMUP_SALES} warm-up sales per client); declined: {declined or 'none'}")
    if result.server_peak_rss_bytes is not None:
        notes += f"; server peak RSS {result.server_peak_rss_bytes / MIB_BYTES:.0f} MiB"
    if reference is not None and reference.latency_avg_ms is not None:
        notes += f"; pgbench latency average {reference.latency_avg_ms:.2f} ms"
    return Measurement(
        database=database, case=f"{mode}, {clients} client{'s' if clients > 1 else ''}",
        items=result.approved_timed, batch_size=clients, seconds=result.seconds,
        rate_per_s=rate,
        reference=(f"pgbench tpcb-like -c {reference.clients} -j {reference.jobs} "
                   f"-T {reference.seconds} -n" if reference else "pgbench not run"),
        reference_seconds=float(reference.seconds) if reference else 0.0,
        reference_rate_per_s=reference.tps if reference else 0.0,
        peak_rss_bytes=result.peak_rss_bytes, unit="approved sales", notes=notes,
        p50_ms=result.p50_ms, p99_ms=result.p99_ms)


def target_notes(measurements: list[Measurement]) -> list[str]:
    """One line per measurement: are the issue's two targets met?"""
    lines = []
    for m in measurements:
        parts = []
        if m.reference_rate_per_s > 0:
            verdict = "met" if m.ratio >= TARGET_RATIO_MIN else "MISSED"
            parts.append(f"sales/s ≥ {TARGET_RATIO_MIN:g} × pgbench: {verdict} "
                         f"({m.rate_per_s:,.0f} vs {m.reference_rate_per_s:,.0f}, "
                         f"ratio {m.ratio:.2f})")
        else:
            parts.append("sales/s vs pgbench: no reference")
        if m.batch_size == TARGET_P99_CLIENTS and m.p99_ms is not None:
            verdict = "met" if m.p99_ms < TARGET_P99_MS_MAX else "MISSED"
            parts.append(f"p99 < {TARGET_P99_MS_MAX:g} ms at {TARGET_P99_CLIENTS} clients: "
                         f"{verdict} ({m.p99_ms:.1f} ms)")
        lines.append(f"target {m.database} / {m.case}: " + "; ".join(parts))
    return lines


def _run_database(report: BenchReport, database: str, fresh: UrlFactory, data_dir: Path,
                  config: BenchConfig, client_counts: tuple[int, ...], seconds: float,
                  references: dict[int, PgbenchRun]) -> None:
    for mode in MODES:
        for clients in client_counts:
            config.progress(f"{NAME} {database} {mode}: {clients} client(s), {seconds:g} s")
            with fresh(f"{mode}-{clients}") as url:
                result = run_one(url, data_dir, mode, clients, seconds)
            report.measurements.append(
                _measurement(database, mode, clients, result, references.get(clients)))


def run(config: BenchConfig) -> BenchReport:
    """The ``payments`` benchmark."""
    report = BenchReport(NAME, "approved card sales through services.payments and over HTTP "
                         "(simulator at zero latency), against pgbench tpcb-like TPS")
    client_counts = CLIENTS_QUICK if config.quick else CLIENTS_FULL
    seconds = SECONDS_QUICK if config.quick else SECONDS_FULL
    pg_seconds = PGBENCH_SECONDS_QUICK if config.quick else PGBENCH_SECONDS_FULL
    scale = PGBENCH_SCALE_QUICK if config.quick else PGBENCH_SCALE_FULL
    report.facts.update({
        "clients": list(client_counts), "seconds_per_case": seconds,
        "warmup_sales_per_client": WARMUP_SALES, "seed": SEED,
        "simulator_latency_ms": 0, "http_server": "uvicorn, 1 worker, child process",
        "pgbench_scale": scale, "pgbench_seconds": pg_seconds,
        "targets": {"ratio_min": TARGET_RATIO_MIN, "p99_ms_max_at_32": TARGET_P99_MS_MAX},
    })
    server: PostgresServer | None = None
    references: dict[int, PgbenchRun] = {}
    if config.sqlite_only:
        report.notes.append("PostgreSQL and pgbench skipped (--sqlite-only): no reference")
    else:
        server, note = connect_postgres()
        report.notes.append(note)
    try:
        if server is not None:
            report.facts["postgresql_version"] = server.version
            executable = pgbench_executable()
            if executable is None:
                report.notes.append("pgbench not found: no reference")
            else:
                references = run_pgbench(server, executable, client_counts, scale, pg_seconds,
                                         config.progress)
                report.facts["pgbench_tps"] = {str(c): r.tps for c, r in references.items()}
        with temp_directory("autosettle-bench-") as tmp:
            data_dir = Path(tmp)

            def fresh_sqlite(label: str) -> AbstractContextManager[str]:
                return sqlite_database(data_dir, label)

            _run_database(report, "sqlite", fresh_sqlite, data_dir, config, client_counts,
                          seconds, references)
            if server is not None:
                with server.bench_database(PG_DATABASE) as database:
                    def fresh_postgres(label: str) -> AbstractContextManager[str]:
                        return database.fresh()

                    _run_database(report, "postgresql", fresh_postgres, data_dir, config,
                                  client_counts, seconds, references)
    finally:
        if server is not None:
            server.dispose()
    report.notes.extend(target_notes(report.measurements))
    return report
