"""Does the terminal host's memory level off under a connection flood? (issue 9, item 12)

``python -m bench.host_flood [--seconds 150] [--clients 160] [--sample-s 5] [--trace]
[--mix all|db] [--json]``

A terminal host runs in a child process on 127.0.0.1 (``start_terminal_host`` with its
default limits, over a new SQLite file with one provisioned terminal). ``--clients``
threads of this process open connections one after another for ``--seconds``, each doing
one of: connect and close at once; send random bytes; send half a frame and close; send a
frame with an impossible length; sign on as an unknown terminal; sign on as a stranger to
the provisioned terminal (pending keys); send a sale with a wrong MAC; send an echo and keep
the connection until the host's idle timeout would matter (closed after a moment). More
clients than the per-peer limit (128) are allowed, so the host also refuses connections.

The child samples its resident set size every ``--sample-s`` seconds (and, with
``--trace``, the memory ``tracemalloc`` sees, with the allocation sites that grew most
between the end of the first quarter and the end of the run). The report prints the
samples, the growth per minute over each half of the run (a leak keeps growing at the same
rate; warm-up and allocator arenas level off) and the top growing sites.

Nothing is asserted: this is a measurement. Reference numbers: docs/terminal-integration.md
(section "Memory under a connection flood").
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVE_ENV = "AUTOSETTLE_BENCH_HOST_FLOOD"
SAMPLE_PREFIX = "sample="
TOP_PREFIX = "top="
PORT_PREFIX = "port="
TRACE_FRAMES = 12
TOP_SITES = 12
MIB = 2**20
CLIENT_TIMEOUT_S = 5.0
HOLD_S = 0.2
START_TIMEOUT_S = 60.0
FRAME_SIZE_MAX = 2048
MID, TID = "898310054110001", "FL000001"
SEED = 12


# -- the host (child process) -------------------------------------------------------------

def _host_sample(started: float, process: psutil.Process, stats: Any,
                 traced: bool) -> dict[str, Any]:
    sample: dict[str, Any] = {
        "t": round(time.monotonic() - started, 1), "rss": process.memory_info().rss,
        "threads": threading.active_count(), "accepted": stats.connections_accepted,
        "refused": stats.connections_refused + stats.connections_refused_per_peer,
        "active": stats.connections_active, "answered": stats.frames_answered}
    if traced:
        sample["traced"] = tracemalloc.get_traced_memory()[0]
    return sample


def serve(data_dir: str, sample_s: float, traced: bool) -> None:
    """The child: a host on a free port; prints ``port=``, then a ``sample=`` JSON line
    every ``sample_s``; at SIGTERM (with ``traced``) the top growing allocation sites."""
    from autosettle.domain.merchants import AccountType, CycleCode, MerchantType
    from autosettle.services import merchants, terminal_keys
    from autosettle.services.context import SYSTEM, ServiceContext
    from autosettle.simulators.issuer import IssuerSimulator
    from autosettle.store import migrate
    from autosettle.store.uow import Database
    from autosettle.terminal_host.server import start_terminal_host
    from bench.core import bench_settings, sim_url

    if traced:
        tracemalloc.start(TRACE_FRAMES)
    directory = Path(data_dir)
    url = f"sqlite:///{(directory / 'flood.db').as_posix()}"
    migrate.upgrade(url)
    sim = IssuerSimulator(sim_url(directory))
    ctx = ServiceContext(settings=bench_settings(url, directory), db=Database(url),
                         channel=sim)
    merchants.create_merchant(ctx, SYSTEM, merchants.NewMerchant(
        MID, "Flood Test Co., Ltd.", MerchantType.ENTERPRISE, "5411",
        settlement_cycle=CycleCode.T1))
    merchants.add_settlement_account(ctx, SYSTEM, MID, merchants.NewSettlementAccount(
        "ICBC", "6212260200001234567", "Flood Test Co., Ltd.", AccountType.CORPORATE))
    merchants.add_terminal(ctx, SYSTEM, MID, merchants.NewTerminal(TID))
    made = terminal_keys.provision_terminal(ctx, SYSTEM, MID, TID)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    handle = start_terminal_host(ctx, "127.0.0.1", 0)
    print(f"{PORT_PREFIX}{handle.port} {made.tmk().hex()}", flush=True)
    process, started = psutil.Process(), time.monotonic()
    baseline = None
    try:
        while not stop.wait(sample_s):
            sample = _host_sample(started, process, handle.stats, traced)
            print(f"{SAMPLE_PREFIX}{json.dumps(sample)}", flush=True)
            if traced and baseline is None and os.environ.get("FLOOD_BASELINE_T") and (
                    sample["t"] >= float(os.environ["FLOOD_BASELINE_T"])):
                gc.collect()  # compare live objects, not garbage waiting for the collector
                baseline = tracemalloc.take_snapshot()
        if traced and baseline is not None:
            gc.collect()
            _print_top(baseline, tracemalloc.take_snapshot())
    finally:
        handle.stop()
        ctx.db.dispose()
        sim.close()
    os._exit(0)


def _print_top(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot) -> None:
    keep = (tracemalloc.Filter(False, tracemalloc.__file__),)
    diffs = after.filter_traces(keep).compare_to(before.filter_traces(keep), "traceback")
    total = {"growth": sum(d.size_diff for d in diffs), "count": sum(d.count_diff for d in diffs),
             "where": "(all sites, after gc.collect(): end of run minus first quarter)"}
    print(f"{TOP_PREFIX}{json.dumps(total)}", flush=True)
    for diff in diffs[:TOP_SITES]:
        frames = [f"{Path(f.filename).name}:{f.lineno}" for f in diff.traceback[-4:]]
        top = {"growth": diff.size_diff, "count": diff.count_diff,
               "where": " < ".join(reversed(frames))}
        print(f"{TOP_PREFIX}{json.dumps(top)}", flush=True)


# -- the flood (this process) -------------------------------------------------------------

@dataclass
class Tally:
    connections: int = 0
    errors: int = 0
    by_action: dict[str, int] = field(default_factory=dict)


def _frame(tid: str, mti_fields: dict[str, str], tmk: bytes | None = None,
           keys: bool = False) -> bytes:
    from autosettle.domain.iso8583 import crypto
    from autosettle.simulators.terminal_client import TerminalClient, TerminalProfile
    from autosettle.terminal_host.messages import MessageKind

    pos = TerminalClient(TerminalProfile(MID, tid, tmk or crypto.generate_key()))
    if keys:
        pos.keys = crypto.WorkingKeys(crypto.generate_key(), crypto.generate_key())
        return pos.encode(pos.prepare(MessageKind.SALE, pan="6222020200112345679",
                                      amount_minor=100))
    kind = MessageKind(mti_fields["kind"])
    outgoing = pos.prepare_sign_on() if kind is MessageKind.SIGN_ON else (
        pos.prepare_network(kind))
    return pos.encode(outgoing)


def _frames() -> dict[str, bytes]:
    return {
        "unknown_sign_on": _frame("ZZ000001", {"kind": "sign_on"}),
        "stranger_sign_on": _frame(TID, {"kind": "sign_on"}),
        "bad_mac_sale": _frame(TID, {}, keys=True),
        "echo": _frame(TID, {"kind": "echo"}),
    }


MIXES = {
    "all": ("close", "random", "half", "too_long", "unknown_sign_on", "stranger_sign_on",
            "bad_mac_sale", "echo"),
    "db": ("unknown_sign_on", "stranger_sign_on", "bad_mac_sale", "echo"),
}
"""``db``: only messages that reach a worker thread and the database (fills the pool)."""


def _one(port: int, rng: random.Random, frames: dict[str, bytes], tally: Tally,
         actions: tuple[str, ...]) -> None:
    action = rng.choice(actions)
    tally.by_action[action] = tally.by_action.get(action, 0) + 1
    with socket.create_connection(("127.0.0.1", port), CLIENT_TIMEOUT_S) as sock:
        sock.settimeout(CLIENT_TIMEOUT_S)
        tally.connections += 1
        if action == "close":
            return
        if action == "random":
            body = rng.randbytes(rng.randrange(20, 200))
            sock.sendall(len(body).to_bytes(2, "big") + body)
        elif action == "half":
            wire = frames["echo"]
            sock.sendall(wire[:len(wire) // 2])
            return
        elif action == "too_long":
            sock.sendall((FRAME_SIZE_MAX + 1).to_bytes(2, "big") + bytes(16))
        else:
            sock.sendall(frames[action])
        try:
            sock.recv(4096)
            if action == "echo":
                time.sleep(HOLD_S)
        except (TimeoutError, ConnectionError):
            pass


def flood(port: int, clients: int, seconds: float, actions: tuple[str, ...]) -> Tally:
    frames = _frames()
    tally = Tally()
    deadline = time.monotonic() + seconds

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            try:
                _one(port, rng, frames, tally, actions)
            except OSError:
                tally.errors += 1

    threads = [threading.Thread(target=worker, args=(SEED + i,), daemon=True)
               for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally


# -- report -------------------------------------------------------------------------------

def _slope_mib_per_min(samples: list[dict[str, Any]], key: str) -> float:
    if len(samples) < 2 or samples[-1]["t"] <= samples[0]["t"]:
        return 0.0
    return ((samples[-1][key] - samples[0][key]) / MIB
            / ((samples[-1]["t"] - samples[0]["t"]) / 60))


def report(samples: list[dict[str, Any]], tops: list[dict[str, Any]], tally: Tally,
           seconds: float, as_json: bool) -> None:
    half = len(samples) // 2
    keys = ["rss"] + (["traced"] if samples and "traced" in samples[0] else [])
    summary = {
        "seconds": seconds, "connections": tally.connections, "client_errors": tally.errors,
        "connections_per_s": round(tally.connections / seconds),
        "by_action": tally.by_action,
        "slopes_mib_per_min": {k: {"first_half": round(_slope_mib_per_min(
            samples[:half + 1], k), 2), "second_half": round(_slope_mib_per_min(
                samples[half:], k), 2)} for k in keys},
        "samples": samples, "top_growth": tops}
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    print(f"{tally.connections:,} connections in {seconds:g} s "
          f"({summary['connections_per_s']}/s), {tally.errors} client errors")
    print("   t s   RSS MiB" + ("  traced MiB" if "traced" in keys else "")
          + "  accepted  refused  active  threads")
    for s in samples:
        traced = f"  {s['traced'] / MIB:10.2f}" if "traced" in s else ""
        print(f"{s['t']:6.0f}  {s['rss'] / MIB:8.1f}{traced}  {s['accepted']:8}  "
              f"{s['refused']:7}  {s['active']:6}  {s['threads']:7}")
    for key, slope in summary["slopes_mib_per_min"].items():
        print(f"{key}: {slope['first_half']:+.2f} MiB/min in the first half, "
              f"{slope['second_half']:+.2f} MiB/min in the second")
    for top in tops:
        print(f"  {top['growth'] / 1024:+9.1f} KiB {top['count']:+7} blocks  {top['where']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.host_flood")
    parser.add_argument("--seconds", type=float, default=150.0)
    parser.add_argument("--clients", type=int, default=160)
    parser.add_argument("--sample-s", type=float, default=5.0)
    parser.add_argument("--trace", action="store_true", help="tracemalloc in the host")
    parser.add_argument("--mix", choices=sorted(MIXES), default="all")
    parser.add_argument("--json", action="store_true", dest="as_json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="autosettle-flood-") as tmp:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (
            str(REPO_ROOT), os.environ.get("PYTHONPATH")))),
            FLOOD_BASELINE_T=str(args.seconds / 4))
        env[SERVE_ENV] = json.dumps({"data_dir": tmp, "sample_s": args.sample_s,
                                     "traced": args.trace})
        child = subprocess.Popen(
            [sys.executable, "-c", "from bench.host_flood import serve_from_environment; "
             "serve_from_environment()"], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True)
        assert child.stdout is not None
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(child.stdout.readline, "")),
                                  daemon=True)
        port = _wait_port(child, lines, reader)
        tally = flood(port, args.clients, args.seconds, MIXES[args.mix])
        time.sleep(args.sample_s)  # one sample after the flood
        child.send_signal(signal.SIGTERM)
        child.wait(START_TIMEOUT_S)
        reader.join(5)
    samples = [json.loads(x[len(SAMPLE_PREFIX):]) for x in lines if x.startswith(SAMPLE_PREFIX)]
    tops = [json.loads(x[len(TOP_PREFIX):]) for x in lines if x.startswith(TOP_PREFIX)]
    report(samples, tops, tally, args.seconds, args.as_json)
    return 0


def _wait_port(child: subprocess.Popen[str], lines: list[str],
               reader: threading.Thread) -> int:
    assert child.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        line = child.stdout.readline()
        if line.startswith(PORT_PREFIX):
            reader.start()
            return int(line[len(PORT_PREFIX):].split()[0])
        if not line and child.poll() is not None:
            break
    child.kill()
    raise SystemExit("the terminal host did not start")


def serve_from_environment() -> None:
    spec = json.loads(os.environ[SERVE_ENV])
    serve(spec["data_dir"], float(spec["sample_s"]), bool(spec["traced"]))


if __name__ == "__main__":
    sys.exit(main())
