"""What every benchmark shares: its options, its result shape, machine facts, databases.

A benchmark is a function ``(BenchConfig) -> BenchReport``. It measures our code and, in the
same run and on the same machine, a reference (the simplest thing that does the same work),
so a reader can judge the numbers without knowing the hardware. Nothing here asserts on time.
"""

from __future__ import annotations

import math
import os
import platform
import random
import resource
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from autosettle.config import Settings
from autosettle.store.engine import normalize_url

PG_URL_ENV = "AUTOSETTLE_BENCH_POSTGRES_URL"
PG_URL_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
PG_BENCH_DATABASE = "autosettle_bench"
PG_CONNECT_TIMEOUT_S = 3
PG_FORCE_DROP_VERSION_MIN = 130000  # DROP DATABASE .. WITH (FORCE) exists since PG 13
KIB_BYTES = 1024


def _silent(_message: str) -> None:
    return None


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """Options of one run, from the command line; ``progress`` receives status lines."""

    quick: bool = False
    sqlite_only: bool = False
    progress: Callable[[str], None] = _silent


@dataclass(frozen=True, slots=True)
class Measurement:
    """One line of the results table: our rate next to the reference rate of the same run."""

    database: str
    case: str
    items: int
    batch_size: int
    seconds: float
    rate_per_s: float
    reference: str
    reference_seconds: float
    reference_rate_per_s: float
    peak_rss_bytes: int
    unit: str = "entries"
    notes: str = ""
    p50_ms: float | None = None
    """Latency percentiles of one item, for benchmarks that measure them (else None)."""
    p99_ms: float | None = None

    @property
    def ratio(self) -> float:
        """Ours divided by the reference (1.0 = as fast as the plain baseline)."""
        if self.reference_rate_per_s <= 0:
            return 0.0
        return self.rate_per_s / self.reference_rate_per_s

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database, "case": self.case, "items": self.items,
            "unit": self.unit, "batch_size": self.batch_size,
            "seconds": round(self.seconds, 4), "rate_per_s": round(self.rate_per_s, 1),
            "reference": self.reference,
            "reference_seconds": round(self.reference_seconds, 4),
            "reference_rate_per_s": round(self.reference_rate_per_s, 1),
            "ratio": round(self.ratio, 3), "peak_rss_bytes": self.peak_rss_bytes,
            "notes": self.notes,
            **({"p50_ms": round(self.p50_ms, 3)} if self.p50_ms is not None else {}),
            **({"p99_ms": round(self.p99_ms, 3)} if self.p99_ms is not None else {}),
        }


@dataclass
class BenchReport:
    """Everything one benchmark measured, plus the notes it wants the reader to see."""

    name: str
    description: str
    measurements: list[Measurement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "description": self.description,
            "measurements": [m.as_dict() for m in self.measurements],
            "notes": self.notes, "facts": self.facts,
        }


# --- memory -------------------------------------------------------------------------------

def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """Peak resident set size since start (or since :func:`reset_peak_rss`)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * KIB_BYTES
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * KIB_BYTES  # macOS reports bytes


# --- machine ------------------------------------------------------------------------------

def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> float | None:
    """The 1-minute load average: other work on the machine skews every number."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def machine_info(postgres_version: str | None) -> dict[str, Any]:
    """The facts needed to compare runs across machines."""
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(affinity) if affinity is not None else os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres_version or "not measured",
        "sqlalchemy": _version("sqlalchemy"),
        "psycopg": _version("psycopg"),
        "autosettle": _version("autosettle"),
        "load_average_1m_after": load_average(),
    }


# --- databases ----------------------------------------------------------------------------

@contextmanager
def sqlite_database(directory: Path, name: str) -> Iterator[str]:
    """The URL of a new SQLite file in ``directory``; the file is deleted afterwards."""
    path = directory / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    try:
        yield f"sqlite:///{path.as_posix()}"
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


class PostgresServer:
    """A reachable PostgreSQL server on which the benchmark creates its own databases."""

    def __init__(self, admin_url: str) -> None:
        self._admin_url = make_url(normalize_url(admin_url))
        self._admin = create_engine(
            self._admin_url, isolation_level="AUTOCOMMIT",
            connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S})
        with self._admin.connect() as conn:
            self.version = str(conn.execute(text("SHOW server_version")).scalar())
            self.version_num = int(conn.execute(text("SHOW server_version_num")).scalar() or 0)

    @property
    def display_url(self) -> str:
        return self._admin_url.render_as_string(hide_password=True)

    def _drop(self, name: str) -> None:
        force = " WITH (FORCE)" if self.version_num >= PG_FORCE_DROP_VERSION_MIN else ""
        with self._admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"{force}'))

    @contextmanager
    def bench_database(self, name: str = PG_BENCH_DATABASE) -> Iterator[PostgresDatabase]:
        """Create the database ``name`` (dropping a leftover of an earlier run), yield it,
        and drop it at the end, whatever happens."""
        self._drop(name)
        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield PostgresDatabase(
                self._admin_url.set(database=name).render_as_string(hide_password=False))
        finally:
            self._drop(name)

    def dispose(self) -> None:
        self._admin.dispose()


class PostgresDatabase:
    """The benchmark's own database; :meth:`fresh` empties it before each measurement."""

    def __init__(self, url: str) -> None:
        self.url = url

    @contextmanager
    def fresh(self) -> Iterator[str]:
        """Drop and recreate schema ``public`` (tables, triggers, functions), yield the URL.

        Cheaper than a new database per measurement, and just as empty.
        """
        engine = create_engine(normalize_url(self.url), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        finally:
            engine.dispose()
        yield self.url


def connect_postgres() -> tuple[PostgresServer | None, str]:
    """The server named by ``AUTOSETTLE_BENCH_POSTGRES_URL`` (or the default), or a note
    saying why PostgreSQL is skipped."""
    url = os.environ.get(PG_URL_ENV) or PG_URL_DEFAULT
    try:
        server = PostgresServer(url)
    except (SQLAlchemyError, OSError, ImportError) as exc:  # any of them: skip PostgreSQL
        shown = make_url(normalize_url(url)).render_as_string(hide_password=True)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"PostgreSQL skipped: {shown} unreachable ({reason}); set {PG_URL_ENV}"
    return server, f"PostgreSQL {server.version} at {server.display_url}"


def temp_directory(prefix: str) -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix=prefix)


BENCH_PAN_TOKEN_KEY = "11" * 32  # fixed, bench-only keys: nothing secret is handled here
BENCH_DATA_KEY = "22" * 32


def bench_settings(url: str, data_dir: Path) -> Settings:
    """Settings for a benchmark database in ``data_dir`` with the bench-only keys."""
    return Settings(data_dir=data_dir, database_url=url,
                    pan_token_key=SecretStr(BENCH_PAN_TOKEN_KEY),
                    data_key=SecretStr(BENCH_DATA_KEY))


def sim_url(data_dir: Path) -> str:
    """The issuer simulator's own SQLite file in ``data_dir``."""
    return f"sqlite:///{(data_dir / 'issuer-sim.db').as_posix()}"


def remove_sim(data_dir: Path) -> None:
    """Delete the simulator's file (and its WAL) so the next run starts clean."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{data_dir / 'issuer-sim.db'}{suffix}").unlink(missing_ok=True)


class BenchCheckFailed(RuntimeError):
    """A benchmark's own check of its results failed: its numbers are not printed."""


# -- load driving: N clients, a warm-up, then a timed window -----------------------------------

WARMUP_SALES = 3
LOAD_SEED = 20_260_918
MS_PER_S = 1000.0

SaleFn = Callable[[int, int], tuple[bool, str]]
"""``(sequence, amount_minor) -> (approved, response code)``: one sale of one client."""


@dataclass
class ClientTally:
    """What one client saw: every answer, before and during the timed window."""

    approved: int = 0
    approved_minor: int = 0
    declined: dict[str, int] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list)
    timed_approved: int = 0
    error: str | None = None

    def saw(self, approved: bool, code: str, amount_minor: int) -> None:
        if approved:
            self.approved += 1
            self.approved_minor += amount_minor
        else:
            self.declined[code] = self.declined.get(code, 0) + 1


def percentile_ms(sorted_s: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted seconds, in milliseconds."""
    if not sorted_s:
        return 0.0
    rank = max(1, math.ceil(q * len(sorted_s)))
    return sorted_s[rank - 1] * MS_PER_S


def _client_loop(sale: SaleFn, barrier: threading.Barrier, deadline: list[float],
                 tally: ClientTally, rng: random.Random, amount_minor_max: int) -> None:
    sequence = 0

    def one(timed: bool) -> None:
        nonlocal sequence
        sequence += 1
        amount = rng.randint(1, amount_minor_max)
        started = time.perf_counter()
        approved, code = sale(sequence, amount)
        elapsed = time.perf_counter() - started
        tally.saw(approved, code, amount)
        if timed:
            tally.latencies_s.append(elapsed)
            tally.timed_approved += approved

    try:
        for _ in range(WARMUP_SALES):
            one(timed=False)
    except Exception as exc:  # reported by the caller; the barrier must still be reached
        tally.error = f"{type(exc).__name__}: {exc}"
    barrier.wait()
    if tally.error is not None:
        return
    try:
        while time.perf_counter() < deadline[0]:
            one(timed=True)
    except Exception as exc:
        tally.error = f"{type(exc).__name__}: {exc}"


def drive(sales: list[SaleFn], seconds: float,
          amount_minor_max: int) -> tuple[list[ClientTally], float]:
    """One thread per client: a warm-up, then ``seconds`` of sales from a common start.

    Returns the tallies and the time from that start to the last answer; raises
    :class:`BenchCheckFailed` when a client failed.
    """
    tallies = [ClientTally() for _ in sales]
    deadline, start = [0.0], [0.0]

    def release() -> None:  # runs once, in the last thread to reach the barrier
        start[0] = time.perf_counter()
        deadline[0] = start[0] + seconds

    barrier = threading.Barrier(len(sales), action=release)
    threads = [threading.Thread(target=_client_loop, name=f"bench-client-{n}",
                                args=(sale, barrier, deadline, tallies[n],
                                      random.Random(LOAD_SEED + n), amount_minor_max))
               for n, sale in enumerate(sales)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start[0]
    errors = [t.error for t in tallies if t.error]
    if errors:
        raise BenchCheckFailed(f"{len(errors)} client(s) failed, first: {errors[0]}")
    return tallies, elapsed
