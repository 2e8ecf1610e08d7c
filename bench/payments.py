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
- ``service-2p``: as ``service``, with the clients split over :data:`PROCESSES` spawned
  processes (each its own engine and simulator connection), started together: one Python
  process is capped by its interpreter lock, a deployment runs one per core.
- ``http-2w``: as ``http``, with uvicorn running :data:`PROCESSES` worker processes.

The single-process cases stay the headline numbers; the multi-process ones show what a
deployment with one process per core gets on the same machine (where the clients, the
server processes and PostgreSQL share the same cores).

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
nothing.

The database floor, same run, PostgreSQL: ``bench/sale_floor.sql`` holds the statements one
approved sale executes (the same SQL and count, in the same two transactions, captured from a
sale and made static with pgbench variables so rows never collide), run with ``pgbench -f`` at
each client count in a database migrated and seeded like the sales'. Its TPS is what the
database work of a sale alone allows, without Python and without the simulator; the notes
compare it with tpcb-like and say when it is below the target ratio already. A sale is
counted through engine events before the floor runs, and a differing count is noted.

Mind what is compared: pgbench's client is C with ``-j`` threads, ours are Python
threads sharing one interpreter lock (and, over HTTP, the client threads cost CPU of their
own on the same machine as the server and the database).

``--quick``: 1 and 8 clients, :data:`SECONDS_QUICK` s per case, pgbench 1 s per client
count; the whole benchmark in about a minute and a half.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import resource
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
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from autosettle.domain.cards import luhn_check_digit
from autosettle.domain.merchants import MerchantType
from autosettle.domain.money import Money
from autosettle.domain.response_codes import ResponseCode
from autosettle.domain.transactions import TxnType
from autosettle.services import apikeys, merchants, payments
from autosettle.services import ledger as ledger_service
from autosettle.services.context import SYSTEM, Role, ServiceContext
from autosettle.services.payments import CardInput, PaymentRequest
from autosettle.simulators.issuer import IssuerSimulator
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
MODES = ("service", "http", "service-2p", "http-2w")
PROCESSES = 2
"""Processes of the ``service-2p`` and ``http-2w`` cases: one per core of the bench machine
(a production deployment runs several API processes against one database)."""
PROCESS_START_TIMEOUT_S = 60.0
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
FLOOR_DATABASE = "autosettle_bench_sale_floor"
FLOOR_SCRIPT = Path(__file__).resolve().with_name("sale_floor.sql")
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


def app_from_environment() -> object:
    """The app of one uvicorn worker process (``http-2w``): its own engine and simulator."""
    from autosettle.api.app import create_app

    spec = json.loads(os.environ[SERVE_ENV])
    directory = Path(spec["data_dir"])
    ctx = ServiceContext(settings=bench_settings(spec["db_url"], directory),
                         db=Database(spec["db_url"]), channel=IssuerSimulator(sim_url(directory)))
    return create_app(ctx)


def serve(db_url: str, data_dir: str, port: int, workers: int = 1) -> None:
    """The child process: the API on ``port`` over ``db_url`` and the simulator in
    ``data_dir``, until SIGTERM; then its peak RSS on stdout (``peak_rss_bytes=N``).

    With ``workers`` > 1, uvicorn's supervisor runs that many worker processes (each with
    its own engine and simulator connection; SQLite's lock and busy timeout order the
    writers of different processes) and the peak RSS reported is the largest worker's.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from autosettle.api.app import create_app

    if workers > 1:
        # uvicorn.run(workers=N) binds socket.socket(AF_INET) with protocol 0, and asyncio
        # only sets TCP_NODELAY on accepted sockets whose protocol is IPPROTO_TCP: answers
        # written in two parts then wait out Nagle and delayed ACKs (about 40 ms each). So
        # the listening socket is made here, as a TCP socket, and handed to the supervisor.
        config = uvicorn.Config("bench.payments:app_from_environment", factory=True,
                                workers=workers, host="127.0.0.1", port=port,
                                log_level="warning", access_log=False, lifespan="off")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.set_inheritable(True)
        Multiprocess(config, sockets=[listener]).run()
        rss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        sys.stdout.write(f"{RSS_PREFIX}{rss_kib * 1024}\n")
        sys.stdout.flush()
        os._exit(0)
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
    serve(spec["db_url"], spec["data_dir"], int(spec["port"]), int(spec.get("workers", 1)))


def _log_tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
    except OSError:
        return ""


@contextmanager
def http_server(db_url: str, data_dir: Path,
                workers: int = 1) -> Iterator[tuple[str, list[int]]]:
    """Start :func:`serve` in a child process; yield its base URL and, after it stopped, a
    one-element list with its peak RSS (empty if it did not report one)."""
    port = _free_port()
    env = dict(os.environ)
    env[SERVE_ENV] = json.dumps({"db_url": db_url, "data_dir": str(data_dir), "port": port,
                                 "workers": workers})
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


# -- the service layer in several processes (service-2p) ---------------------------------------

def _service_process(url: str, data_dir: str, clients: list[int], seconds: float,
                     barrier: Any, results: Any) -> None:
    """One process of ``service-2p``: its share of the clients, in threads, as ``service``."""
    directory = Path(data_dir)
    sim = IssuerSimulator(sim_url(directory))
    ctx = ServiceContext(settings=bench_settings(url, directory), db=Database(url),
                         channel=sim)
    try:
        barrier.wait(PROCESS_START_TIMEOUT_S)
        tallies, elapsed = drive([_service_sale(ctx, c) for c in clients], seconds,
                                 SALE_AMOUNT_MINOR_MAX)
        results.put((tallies, elapsed, peak_rss_bytes(), None))
    except Exception as exc:  # reported by the parent
        results.put(([], 0.0, 0, f"{type(exc).__name__}: {exc}"))
    finally:
        ctx.db.dispose()
        sim.close()


def drive_processes(url: str, data_dir: Path, clients: int, seconds: float,
                    processes: int = PROCESSES) -> tuple[list[ClientTally], float, int]:
    """``clients`` split over ``processes`` spawned processes that start together: every
    tally, the longest process's timed window, the largest process's peak RSS."""
    spawn = multiprocessing.get_context("spawn")
    shares = [list(range(clients))[n::processes] for n in range(processes)]
    shares = [share for share in shares if share]
    barrier, results = spawn.Barrier(len(shares)), spawn.Queue()
    children = [spawn.Process(target=_service_process,
                              args=(url, str(data_dir), share, seconds, barrier, results))
                for share in shares]
    for child in children:
        child.start()
    try:
        outcomes = [results.get(timeout=PROCESS_START_TIMEOUT_S + seconds * 10)
                    for _ in children]
    finally:
        for child in children:
            child.join(SERVER_STOP_TIMEOUT_S)
            if child.is_alive():
                child.kill()
    errors = [error for *_, error in outcomes if error]
    if errors:
        raise BenchCheckFailed(f"{len(errors)} process(es) failed, first: {errors[0]}")
    tallies = [tally for outcome in outcomes for tally in outcome[0]]
    return tallies, max(o[1] for o in outcomes), max(o[2] for o in outcomes)


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
        keys = seed(ctx, sim, clients, with_keys=mode.startswith("http"))
        reset_peak_rss()
        if mode == "service":
            tallies, elapsed = drive([_service_sale(ctx, c) for c in range(clients)], seconds,
                                     SALE_AMOUNT_MINOR_MAX)
            peak, server_peak = peak_rss_bytes(), None
        elif mode == "service-2p":
            sim.close()  # each process opens the simulator's file itself
            tallies, elapsed, server_peak = drive_processes(url, data_dir, clients, seconds)
            peak = peak_rss_bytes()
            sim = IssuerSimulator(sim_url(data_dir))
        else:
            sim.close()  # the server process opens the simulator's file itself
            opened: list[httpx.Client] = []
            workers = PROCESSES if mode == "http-2w" else 1
            try:
                with http_server(url, data_dir, workers) as (base_url, server_rss):
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


# -- the database floor: a sale's statements alone, through pgbench ------------------------------

@dataclass(frozen=True, slots=True)
class FloorRuns:
    runs: dict[int, PgbenchRun]
    sale_statements: int
    script_statements: int


def script_statements(path: Path = FLOOR_SCRIPT) -> int:
    """SQL statements of the floor script (BEGIN and COMMIT included; no meta-commands)."""
    return sum(1 for line in path.read_text().splitlines()
               if line.strip() and not line.startswith(("--", "\\")))


def count_sale_statements(ctx: ServiceContext, sale: SaleFn, sequence: int,
                          what: str = "the counted sale") -> int:
    """Statements (BEGIN and COMMIT included, each row of an executemany) of one approved
    sale made by ``sale`` (bench/risk.py counts its sales with risk on and off the same way),
    those the risk counters send on the driver's cursor (``store.risk._at_driver``, which
    fires no engine event) included."""
    from sqlalchemy import event

    from autosettle.store import risk as risk_store

    count = [0]
    at_driver = risk_store._at_driver

    def counted_at_driver(*args: Any) -> Any:
        count[0] += 1
        return at_driver(*args)

    def executed(_conn: Any, _cursor: Any, _statement: Any, parameters: Any, _context: Any,
                 executemany: bool) -> None:
        count[0] += len(parameters) if executemany else 1

    def ended(_conn: Any) -> None:
        count[0] += 1

    listeners = (("before_cursor_execute", executed), ("begin", ended), ("commit", ended))
    for name, listener in listeners:
        event.listen(ctx.db.engine, name, listener)
    risk_store._at_driver = counted_at_driver  # type: ignore[assignment]
    try:
        approved, code = sale(sequence, 100)
    finally:
        risk_store._at_driver = at_driver
        for name, listener in listeners:
            event.remove(ctx.db.engine, name, listener)
    if not approved:
        raise BenchCheckFailed(f"{what} was declined ({code})")
    return count[0]


def run_floor(server: PostgresServer, executable: str, client_counts: tuple[int, ...],
              seconds: int, data_dir: Path, progress: Callable[[str], None]) -> FloorRuns:
    """``pgbench -f sale_floor.sql`` at each client count, in a database migrated and
    seeded as for the sales (a terminal per client, its batch opened by one sale)."""
    runs: dict[int, PgbenchRun] = {}
    with server.bench_database(FLOOR_DATABASE) as database:
        migrate.upgrade(database.url)
        remove_sim(data_dir)
        sim = IssuerSimulator(sim_url(data_dir))
        ctx = ServiceContext(settings=bench_settings(database.url, data_dir),
                             db=Database(database.url), channel=sim)
        try:
            seed(ctx, sim, max(client_counts), with_keys=False)
            for client in range(max(client_counts)):  # opens each terminal's batch
                _service_sale(ctx, client)(10**6, 100)
            sale_statements = count_sale_statements(  # a sale in an open batch
                ctx, _service_sale(ctx, 0), 10**6 + 1, "the floor's counted sale")
        finally:
            ctx.db.dispose()
            sim.close()
            remove_sim(data_dir)
        env = _pg_env(database.url)
        for clients in client_counts:
            jobs = min(clients, PGBENCH_JOBS_MAX)
            progress(f"{NAME} sale floor: {clients} client(s), {seconds} s")
            done = subprocess.run([executable, "-n", "-f", str(FLOOR_SCRIPT), "-D", "seq=0",
                                   "-D", f"run={clients}", "-c", str(clients), "-j", str(jobs),
                                   "-T", str(seconds)], env=env, check=True,
                                  capture_output=True, text=True,
                                  timeout=seconds + PGBENCH_TIMEOUT_MARGIN_S)
            tps, latency = parse_pgbench(done.stdout)
            runs[clients] = PgbenchRun(clients, jobs, tps, latency, seconds)
    return FloorRuns(runs, sale_statements, script_statements())


def floor_notes(floor: FloorRuns, references: dict[int, PgbenchRun]) -> list[str]:
    """What the floor says: the database work of a sale alone, against tpcb-like."""
    lines = [f"database floor (bench/{FLOOR_SCRIPT.name}): the statements of one sale, "
             f"{floor.script_statements} in two transactions (a sale through the service "
             f"executed {floor.sale_statements}), via pgbench -f; no Python, no simulator"]
    if floor.sale_statements != floor.script_statements:
        lines.append("database floor: the script and the sale differ in statement count: "
                     "update bench/sale_floor.sql")
    for clients, run in sorted(floor.runs.items()):
        reference = references.get(clients)
        line = (f"database floor, {clients} client(s): {run.tps:,.0f} sales/s of database "
                f"work alone")
        if run.latency_avg_ms is not None:
            line += f", latency average {run.latency_avg_ms:.2f} ms"
        if reference is not None and reference.tps > 0:
            ratio = run.tps / reference.tps
            line += f"; {ratio:.2f} × tpcb-like ({reference.tps:,.0f})"
            if ratio < TARGET_RATIO_MIN:
                line += (f": the database work of a sale alone is below {TARGET_RATIO_MIN:g} × "
                         "tpcb-like at this client count")
        lines.append(line)
    return lines


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
        "simulator_latency_ms": 0,
        "http_server": f"uvicorn, child process: 1 worker (http), {PROCESSES} (http-2w)",
        "service_processes": f"1 (service), {PROCESSES} spawned (service-2p)",
        "pgbench_scale": scale, "pgbench_seconds": pg_seconds,
        "targets": {"ratio_min": TARGET_RATIO_MIN, "p99_ms_max_at_32": TARGET_P99_MS_MAX},
    })
    server: PostgresServer | None = None
    executable: str | None = None
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
            if server is not None and executable is not None:
                floor = run_floor(server, executable, client_counts, pg_seconds, data_dir,
                                  config.progress)
                report.facts["sale_floor_tps"] = {str(c): r.tps for c, r in floor.runs.items()}
                report.facts["sale_statements"] = floor.sale_statements
                report.notes.extend(floor_notes(floor, references))

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
