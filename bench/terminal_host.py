"""ISO 8583 sale round trips over loopback TCP, and decode + MAC verification per core.

**Round trips.** 50 terminals (simulator terminals ``SM000001``.., 8 per merchant, each with
its own debit card at the issuer simulator, TMK provisioned through the service layer)
each hold one TCP connection to a terminal host on 127.0.0.1, sign on, send
:data:`WARMUP_SALES` untimed sales, then sales with a PIN block and a MAC (pseudo-random
amounts, fixed seed), one after the other, for a fixed time. The host runs in a child
process (``start_terminal_host`` with its default limits: 32 worker threads), so the 50
client threads of this process do not share its interpreter lock. Latency is measured per
sale by the terminal, from building the request (PIN block, MAC) to the checked answer
(MAC verified); p50/p99 by nearest rank. Afterwards the run is checked: every answer's MAC
verified, the approved sale records equal the approvals the terminals saw, and the ledger
balances; the benchmark fails rather than report numbers for wrong work.

Reference, same run, same machine, same workload: the very same sales (same terminals,
batch and trace numbers, cards, PINs) through ``services.payments.authorize`` from 50
threads in this process, without ISO 8583, TCP, keys, MAC or PIN blocks. The ratio is the
share of the service's rate the terminal host keeps.

Both on SQLite (a new temporary file per measurement) and PostgreSQL (database
``autosettle_bench_terminal_host``, created for the run and dropped after it, emptied
before each measurement).

**Decode + MAC.** :data:`MESSAGES` distinct sale requests as terminals send them (TPDU,
header, fields 2, 3, 4, 11, 14, 22, 25, 26, 41, 42, 49, 52, 53, 60, 64) are decoded and
their MAC verified, over and over, in one thread pinned to one core: frame header, the
domain decoder (``decode_message``: pyiso8583 plus the content checks of every field), and
field 64 checked with the CUP ECB MAC (clear MAK), or through the key module as the host
does it (``SoftwareHsm.mac``: the sealed MAK opened with AES-GCM for each message).
Reference, same run, same messages: bare ``iso8583.decode(payload, CUP_POS_SPEC)``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import iso8583
from sqlalchemy import func, select

from autosettle.domain.iso8583 import crypto
from autosettle.domain.iso8583.frame import LENGTH_PREFIX_SIZE_BYTES, decode_frame_body
from autosettle.domain.iso8583.message import decode_message
from autosettle.domain.iso8583.spec import CUP_POS_SPEC
from autosettle.domain.money import Money
from autosettle.domain.transactions import TxnType
from autosettle.services import ledger as ledger_service
from autosettle.services import payments
from autosettle.services.context import DataSealer, ServiceContext
from autosettle.services.key_module import (
    KeyRole,
    MacAlgorithm,
    SealedKey,
    SoftwareHsm,
    key_label,
)
from autosettle.services.payments import CardInput, PaymentRequest
from autosettle.simulators.fleet import (
    CARD_EXPIRY,
    CardRole,
    Fleet,
    cards_for,
    prepare_fleet,
    sim_terminal_ids,
)
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.simulators.terminal_client import TerminalClient, TerminalProfile
from autosettle.store import migrate
from autosettle.store.tables import transactions
from autosettle.store.uow import Database
from autosettle.terminal_host.messages import MessageKind
from autosettle.terminal_host.server import start_terminal_host
from bench.core import (
    BENCH_DATA_KEY,
    MS_PER_S,
    WARMUP_SALES,
    BenchCheckFailed,
    BenchConfig,
    BenchReport,
    ClientTally,
    Measurement,
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

NAME = "terminal_host"
TERMINALS = 50
SECONDS_FULL = 10.0
SECONDS_QUICK = 2.0
SALE_AMOUNT_MINOR_MAX = 50_000
SEED = 20_260_918
MESSAGES = 1_000
DECODE_SECONDS_FULL = 3.0
DECODE_SECONDS_QUICK = 0.5
PG_DATABASE = "autosettle_bench_terminal_host"
SERVE_ENV = "AUTOSETTLE_BENCH_TERMINAL_HOST"
PORT_PREFIX = "port="
RSS_PREFIX = "peak_rss_bytes="
REPO_ROOT = Path(__file__).resolve().parent.parent
SERVER_START_TIMEOUT_S = 30.0
SERVER_STOP_TIMEOUT_S = 30.0
CLIENT_TIMEOUT_S = 30.0
LOG_TAIL_CHARS = 4000
MIB_BYTES = 2**20
FIRST_BATCH = 1

UrlFactory = Callable[[str], AbstractContextManager[str]]


# -- the host (child process) -------------------------------------------------------------------

def serve(db_url: str, data_dir: str) -> None:
    """The child: a terminal host on a free port over ``db_url``; prints ``port=N``, runs
    until SIGTERM, then prints its peak RSS (``peak_rss_bytes=N``)."""
    directory = Path(data_dir)
    sim = IssuerSimulator(sim_url(directory))
    ctx = ServiceContext(settings=bench_settings(db_url, directory), db=Database(db_url),
                         channel=sim)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    handle = start_terminal_host(ctx, "127.0.0.1", 0)
    sys.stdout.write(f"{PORT_PREFIX}{handle.port}\n")
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        handle.stop()
        ctx.db.dispose()
        sim.close()
        sys.stdout.write(f"{RSS_PREFIX}{peak_rss_bytes()}\n")
        sys.stdout.flush()
    os._exit(0)


def serve_from_environment() -> None:
    spec = json.loads(os.environ[SERVE_ENV])
    serve(spec["db_url"], spec["data_dir"])


def _read_line(stream: IO[str], prefix: str, deadline: float) -> str | None:
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            return None
        if line.startswith(prefix):
            return line[len(prefix):].strip()
    return None


@contextmanager
def host_process(db_url: str, data_dir: Path) -> Iterator[tuple[int, list[int]]]:
    """Start :func:`serve` in a child; yield its port and, after it stopped, a list with
    its peak RSS (empty when it did not report one)."""
    env = dict(os.environ)
    env[SERVE_ENV] = json.dumps({"db_url": db_url, "data_dir": str(data_dir)})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO_ROOT),
                                                      os.environ.get("PYTHONPATH"))))
    log_path = data_dir / "terminal-host.log"
    rss: list[int] = []
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", "from bench.terminal_host import serve_from_environment; "
             "serve_from_environment()"], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
            stderr=log, text=True)
    assert process.stdout is not None
    try:
        port = _read_line(process.stdout, PORT_PREFIX, time.monotonic() + SERVER_START_TIMEOUT_S)
        if port is None:
            process.kill()
            process.wait()
            raise BenchCheckFailed(f"the terminal host did not start:\n{_tail(log_path)}")
        yield int(port), rss
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(SERVER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        value = _read_line(process.stdout, RSS_PREFIX, time.monotonic() + 1)
        if value is not None:
            rss.append(int(value))
        process.stdout.close()
        log_path.unlink(missing_ok=True)


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
    except OSError:
        return ""


# -- the terminals -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RoundTrips:
    timed_approved: int
    seconds: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    approved_total: int
    declined: dict[str, int]
    peak_rss_bytes: int
    host_peak_rss_bytes: int | None = None


def _tcp_sale(client: TerminalClient, pan: str, pin: str) -> SaleFn:
    def sale(_trace: int, amount_minor: int) -> tuple[bool, str]:
        answer = client.send(client.prepare(MessageKind.SALE, pan=pan,
                                            amount_minor=amount_minor, pin=pin))
        if answer.mac_ok is not True:
            raise BenchCheckFailed(f"answer {answer.code} without a valid MAC")
        return answer.approved, answer.code

    return sale


def _service_sale(ctx: ServiceContext, profile: TerminalProfile, pan: str,
                  pin: str) -> SaleFn:
    card = CardInput(pan, CARD_EXPIRY, pin)

    def sale(trace: int, amount_minor: int) -> tuple[bool, str]:
        # The terminal's first trace is its sign-on: its sales start at trace 2.
        result = payments.authorize(ctx, PaymentRequest(
            TxnType.SALE, profile.merchant_id, profile.terminal_id, Money(amount_minor), card,
            batch_no=f"{FIRST_BATCH:06d}", stan=f"{trace + 1:06d}"))
        return result.approved, result.response_code.value

    return sale


def _card(fleet: Fleet, profile: TerminalProfile) -> tuple[str, str]:
    card = fleet.cards[(profile.merchant_id, profile.terminal_id)][CardRole.DEBIT]
    assert card.pin is not None
    return card.pan, card.pin


def check(ctx: ServiceContext, tallies: list[ClientTally]) -> None:
    """The stored sales and the ledger agree with what the terminals were told."""
    seen = sum(t.approved for t in tallies)
    with ctx.db.unit_of_work() as uow:
        stored = int(uow.connection.execute(
            select(func.count()).select_from(transactions).where(
                transactions.c.txn_type == TxnType.SALE.value,
                transactions.c.status == "approved")).scalar() or 0)
        unbalanced = uow.ledger.unbalanced_entries(limit=5)
    imbalance = ledger_service.ledger_imbalance(ctx)
    problems = []
    if stored != seen:
        problems.append(f"{stored} approved sale records, the terminals saw {seen}")
    if unbalanced or any(imbalance.values()):
        problems.append(f"ledger unbalanced: entries {unbalanced}, imbalance {imbalance}")
    if problems:
        raise BenchCheckFailed("; ".join(problems))


def _summarise(tallies: list[ClientTally], elapsed: float, peak: int,
               host_peak: int | None) -> RoundTrips:
    latencies = sorted(s for t in tallies for s in t.latencies_s)
    declined: dict[str, int] = {}
    for tally in tallies:
        for code, count in tally.declined.items():
            declined[code] = declined.get(code, 0) + count
    return RoundTrips(
        timed_approved=sum(t.timed_approved for t in tallies), seconds=elapsed,
        p50_ms=percentile_ms(latencies, 0.50), p99_ms=percentile_ms(latencies, 0.99),
        mean_ms=(sum(latencies) / len(latencies) * MS_PER_S) if latencies else 0.0,
        approved_total=sum(t.approved for t in tallies), declined=declined,
        peak_rss_bytes=peak, host_peak_rss_bytes=host_peak)


def run_one(url: str, data_dir: Path, mode: str, seconds: float) -> RoundTrips:
    """Migrate, create and provision the terminals, drive them (``tcp`` or ``service``),
    check, summarise."""
    migrate.upgrade(url)
    remove_sim(data_dir)
    sim = IssuerSimulator(sim_url(data_dir))
    ctx = ServiceContext(settings=bench_settings(url, data_dir), db=Database(url), channel=sim)
    clients: list[TerminalClient] = []
    try:
        fleet = prepare_fleet(ctx, create=TERMINALS)
        fleet.release()
        reset_peak_rss()
        if mode == "service":
            tallies, elapsed = drive([_service_sale(ctx, p, *_card(fleet, p))
                                      for p in fleet.profiles], seconds, SALE_AMOUNT_MINOR_MAX)
            peak, host_peak = peak_rss_bytes(), None
        else:
            with host_process(url, data_dir) as (port, host_rss):
                sales = []
                for profile in fleet.profiles:
                    client = TerminalClient(profile, "127.0.0.1", port, CLIENT_TIMEOUT_S)
                    clients.append(client)
                    if client.sign_on().code != "00":
                        raise BenchCheckFailed(f"sign-on of {profile.terminal_id} refused")
                    sales.append(_tcp_sale(client, *_card(fleet, profile)))
                tallies, elapsed = drive(sales, seconds, SALE_AMOUNT_MINOR_MAX)
                peak = peak_rss_bytes()
                for client in clients:
                    client.close()
            host_peak = host_rss[0] if host_rss else None
        check(ctx, tallies)
    finally:
        for client in clients:
            client.close()
        ctx.db.dispose()
        sim.close()
        remove_sim(data_dir)
    return _summarise(tallies, elapsed, peak, host_peak)


def _round_trip_measurement(database: str, tcp: RoundTrips,
                            service: RoundTrips) -> Measurement:
    rate = tcp.timed_approved / tcp.seconds if tcp.seconds > 0 else 0.0
    reference = service.timed_approved / service.seconds if service.seconds > 0 else 0.0
    declined = ", ".join(f"{c}×{n}" for c, n in sorted(tcp.declined.items())) or "none"
    notes = (f"mean {tcp.mean_ms:.2f} ms; {tcp.approved_total:,} approved in all (with "
             f"{WARMUP_SALES} warm-up sales per terminal); declined: {declined}; reference "
             f"p50 {service.p50_ms:.1f} ms, p99 {service.p99_ms:.1f} ms")
    if tcp.host_peak_rss_bytes is not None:
        notes += f"; host process peak RSS {tcp.host_peak_rss_bytes / MIB_BYTES:.0f} MiB"
    return Measurement(
        database=database, case=f"sale round trips, {TERMINALS} terminals",
        items=tcp.timed_approved, batch_size=TERMINALS, seconds=tcp.seconds, rate_per_s=rate,
        reference=f"services.payments.authorize, same sales, {TERMINALS} threads in-process",
        reference_seconds=service.seconds, reference_rate_per_s=reference,
        peak_rss_bytes=tcp.peak_rss_bytes, unit="sales", notes=notes,
        p50_ms=tcp.p50_ms, p99_ms=tcp.p99_ms)


def _run_database(report: BenchReport, database: str, fresh: UrlFactory, data_dir: Path,
                  config: BenchConfig, seconds: float) -> None:
    results = {}
    for mode in ("tcp", "service"):
        config.progress(f"{NAME} {database} {mode}: {TERMINALS} terminals, {seconds:g} s")
        with fresh(f"th-{mode}") as url:
            results[mode] = run_one(url, data_dir, mode, seconds)
    report.measurements.append(_round_trip_measurement(database, results["tcp"],
                                                       results["service"]))


# -- decode + MAC ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Messages:
    bodies: list[bytes]
    """Frames without their length prefix (TPDU, header, payload)."""
    payloads: list[bytes]
    mak: bytes


def build_messages(count: int) -> Messages:
    """``count`` distinct sale requests of 50 terminals, MAC'd under one MAK."""
    rng = random.Random(SEED)
    keys = crypto.WorkingKeys(crypto.generate_key(), crypto.generate_key())
    bodies, payloads = [], []
    clients = []
    for merchant_id, terminal_id in sim_terminal_ids(TERMINALS):
        client = TerminalClient(TerminalProfile(merchant_id, terminal_id,
                                                crypto.generate_key()))
        client.keys = keys  # as after a sign-on
        clients.append(client)
    for i in range(count):
        client = clients[i % TERMINALS]
        card = cards_for(client.profile.merchant_id,
                         client.profile.terminal_id)[CardRole.DEBIT]
        wire = client.encode(client.prepare(MessageKind.SALE, pan=card.pan,
                                            amount_minor=rng.randint(1, SALE_AMOUNT_MINOR_MAX),
                                            pin=card.pin))
        body = wire[LENGTH_PREFIX_SIZE_BYTES:]
        bodies.append(body)
        payloads.append(decode_frame_body(body).payload)
    return Messages(bodies, payloads, keys.mak)


def _timed(fn: Callable[[], None], items: int, seconds: float) -> tuple[int, float]:
    """Run ``fn`` (which handles ``items`` messages) until ``seconds`` passed; returns
    (messages, elapsed)."""
    done, started = 0, time.perf_counter()
    while True:
        fn()
        done += items
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return done, elapsed


@contextmanager
def one_core() -> Iterator[str]:
    """Pin this process to one CPU for the block (Linux); yields what was done."""
    if not hasattr(os, "sched_setaffinity"):
        yield "not pinned (no sched_setaffinity)"
        return
    before = os.sched_getaffinity(0)
    cpu = max(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield f"pinned to CPU {cpu}"
    finally:
        os.sched_setaffinity(0, before)


def run_decode(report: BenchReport, config: BenchConfig) -> None:
    seconds = DECODE_SECONDS_QUICK if config.quick else DECODE_SECONDS_FULL
    config.progress(f"{NAME} decode + MAC: {MESSAGES} messages, {seconds:g} s per case")
    messages = build_messages(MESSAGES)
    mak = messages.mak
    sealer = DataSealer(bytes.fromhex(BENCH_DATA_KEY))
    hsm = SoftwareHsm(sealer)
    (merchant_id, terminal_id), = sim_terminal_ids(1)
    label = key_label(KeyRole.MAK, merchant_id, terminal_id, 1)
    sealed = SealedKey(sealer.seal(mak, label), label, crypto.key_check_value(mak).hex().upper())

    def ours_clear() -> None:
        for body in messages.bodies:
            decoded = decode_message(decode_frame_body(body).payload)
            if not crypto.macs_equal(crypto.mac_cup_ecb(mak, decoded.mac_data),
                                     bytes.fromhex(decoded.fields["64"])):
                raise BenchCheckFailed("a MAC did not verify")

    def ours_hsm() -> None:
        for body in messages.bodies:
            decoded = decode_message(decode_frame_body(body).payload)
            if not crypto.macs_equal(hsm.mac(sealed, MacAlgorithm.CUP_ECB, decoded.mac_data),
                                     bytes.fromhex(decoded.fields["64"])):
                raise BenchCheckFailed("a MAC did not verify")

    def reference() -> None:
        for payload in messages.payloads:
            iso8583.decode(payload, CUP_POS_SPEC)

    with one_core() as pinned:
        reset_peak_rss()
        ref_items, ref_seconds = _timed(reference, MESSAGES, seconds)
        results = [(case, *_timed(fn, MESSAGES, seconds)) for case, fn in (
            ("decode + MAC verify (clear MAK)", ours_clear),
            ("decode + MAC verify (key module, sealed MAK)", ours_hsm))]
        peak = peak_rss_bytes()
    ref_rate = ref_items / ref_seconds
    size = sum(len(b) for b in messages.bodies) / len(messages.bodies)
    for case, items, elapsed in results:
        report.measurements.append(Measurement(
            database="-", case=case, items=items, batch_size=1, seconds=elapsed,
            rate_per_s=items / elapsed,
            reference="iso8583.decode(payload, CUP_POS_SPEC), same messages",
            reference_seconds=ref_seconds, reference_rate_per_s=ref_rate,
            peak_rss_bytes=peak, unit="messages",
            notes=f"{MESSAGES} distinct sale requests of {size:.0f} bytes, one thread, "
                  f"{pinned}; µs per message: ours {elapsed / items * 1e6:.1f}, reference "
                  f"{ref_seconds / ref_items * 1e6:.1f}"))


# -- the benchmark -------------------------------------------------------------------------------

def run(config: BenchConfig) -> BenchReport:
    """The ``terminal_host`` benchmark."""
    report = BenchReport(NAME, f"ISO 8583 sale round trips over loopback TCP ({TERMINALS} "
                         "terminals) against the same sales through the payment service; "
                         "decode + MAC verification per core against bare pyiso8583")
    seconds = SECONDS_QUICK if config.quick else SECONDS_FULL
    report.facts.update({"terminals": TERMINALS, "seconds_per_case": seconds,
                         "warmup_sales_per_terminal": WARMUP_SALES, "seed": SEED,
                         "simulator_latency_ms": 0, "decode_messages": MESSAGES,
                         "host": "child process, start_terminal_host default limits"})
    run_decode(report, config)
    server = None
    if config.sqlite_only:
        report.notes.append("PostgreSQL skipped (--sqlite-only)")
    else:
        server, note = connect_postgres()
        report.notes.append(note)
    try:
        if server is not None:
            report.facts["postgresql_version"] = server.version
        with temp_directory("autosettle-bench-th-") as tmp:
            data_dir = Path(tmp)

            def fresh_sqlite(label: str) -> AbstractContextManager[str]:
                return sqlite_database(data_dir, label)

            _run_database(report, "sqlite", fresh_sqlite, data_dir, config, seconds)
            if server is not None:
                with server.bench_database(PG_DATABASE) as database:
                    def fresh_postgres(label: str) -> AbstractContextManager[str]:
                        return database.fresh()

                    _run_database(report, "postgresql", fresh_postgres, data_dir, config,
                                  seconds)
    finally:
        if server is not None:
            server.dispose()
    return report
