"""Shared fixtures: a migrated database per test on SQLite and, when configured, PostgreSQL.

``AUTOSETTLE_TEST_POSTGRES_URL`` (e.g. ``postgresql://postgres@127.0.0.1:5432/test``) turns
on the PostgreSQL half: every database test then runs on both. If it is set and PostgreSQL
cannot be reached, the suite fails; it never skips silently. If it is not set, the summary
at the end says how many database tests ran on SQLite only.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from autosettle.api.app import create_app
from autosettle.config import Settings, get_settings
from autosettle.services import users
from autosettle.services.context import ServiceContext
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.store import migrate
from autosettle.store.engine import normalize_url
from autosettle.store.tables import metadata
from autosettle.store.uow import Database

# One hypothesis profile for the whole suite: no per-example deadline (database tests on a
# shared 2-core machine vary in speed; speed is measured in bench/, never in tests) and no
# "too slow" health check. Examples stay random (no derandomize) and bounded: a test that
# names its own max_examples keeps it (the fuzz tests read AUTOSETTLE_FUZZ_EXAMPLES,
# AUTOSETTLE_FUZZ_FRAMES, AUTOSETTLE_API_FUZZ_EXAMPLES); every other one runs
# AUTOSETTLE_HYPOTHESIS_EXAMPLES (hypothesis's 100 by default; a long run sets e.g. 5000).
hypothesis_settings.register_profile(
    "autosettle", deadline=None, suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
    max_examples=int(os.environ.get("AUTOSETTLE_HYPOTHESIS_EXAMPLES", "100")))
hypothesis_settings.load_profile("autosettle")

# Console passwords in this process: argon2id through the same hash and verify calls, with
# the smallest cost parameters instead of the production ones (3 passes over 64 MiB: about
# 0.1-0.2 s of CPU per hash or login, a few per web test). The hash names its parameters,
# so hashes made either way verify; no test asserts the parameters or a duration.
users._HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
users._DUMMY_HASH = users._HASHER.hash("autosettle-timing-equaliser")

PG_URL_ENV = "AUTOSETTLE_TEST_POSTGRES_URL"
TEST_PAN_KEY = "11" * 32
TEST_DATA_KEY = "22" * 32
BACKENDS = ["sqlite"] + (["postgres"] if os.environ.get(PG_URL_ENV) else [])
if os.environ.get("AUTOSETTLE_TEST_REQUIRE_POSTGRES") and not os.environ.get(PG_URL_ENV):
    raise RuntimeError(f"AUTOSETTLE_TEST_REQUIRE_POSTGRES is set but {PG_URL_ENV} is not")


SQLITE_ONLY = ("database", "sqlite")
"""The user property of a test parametrised on ``db_url`` that runs on SQLite."""


BROWSER_DIR = Path(__file__).resolve().parent / "browser"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the SQLite half of every test parametrised on ``db_url`` (see the summary), and
    keep the browser tests on one xdist worker (``--dist loadgroup``): their session fixtures
    (Chromium, a seeded site per database) are built once per worker that runs one. With
    pytest 9.2 and pytest-xdist 3.8 the group is not applied (pytest-xdist issue 1386: its
    node-id suffix no longer takes effect); the tests pass either way, each worker building
    its own fixtures."""
    for item in items:
        if BROWSER_DIR in item.path.parents:
            item.add_marker(pytest.mark.xdist_group("browser"))
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("db_url") == "sqlite":
            item.user_properties.append(SQLITE_ONLY)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Without PostgreSQL, say how many database tests ran on SQLite only."""
    if os.environ.get(PG_URL_ENV):
        return
    ran = {report.nodeid for outcome in ("passed", "failed")
           for report in terminalreporter.stats.get(outcome, [])
           if getattr(report, "when", None) == "call"
           and SQLITE_ONLY in getattr(report, "user_properties", ())}
    if ran:
        terminalreporter.write_sep(
            "=", f"PostgreSQL not configured: {len(ran)} database tests ran on SQLite only "
                 f"(set {PG_URL_ENV})", yellow=True)


class FakeClock:
    """A settable clock; starts at a fixed instant and only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 9, 18, 2, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


def _worker_suffix() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A freshly created, migrated PostgreSQL database for this test session (worker)."""
    base = os.environ.get(PG_URL_ENV)
    if not base:
        pytest.skip("PostgreSQL not configured")
    base_url = make_url(normalize_url(base))
    name = f"autosettle_test_{_worker_suffix()}_{os.getpid()}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        pytest.fail(f"PostgreSQL at {base_url.render_as_string()} is unreachable: {exc}")
    url = base_url.set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


_ANY_ROWS = text("SELECT " + ", ".join(f'EXISTS (SELECT 1 FROM "{t.name}")'
                                        for t in metadata.sorted_tables))
_RESTART_SEQUENCES = text(
    "SELECT setval(c.oid, 1, false) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind = 'S' AND n.nspname = current_schema()")


def _truncate_postgres(url: str) -> None:
    """Empty the tables a test wrote to and restart every sequence: one query finds the
    tables with rows (truncating all of them cost ~64 ms a test, this ~3 ms)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        flags = conn.execute(_ANY_ROWS).one()
        used = [f'"{t.name}"' for t, has_rows in zip(metadata.sorted_tables, flags, strict=True)
                if has_rows]
        if used:
            conn.execute(text(f"TRUNCATE {', '.join(used)} RESTART IDENTITY CASCADE"))
        conn.execute(_RESTART_SEQUENCES)
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database on each configured backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "autosettle.db"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("postgres_url")
    _truncate_postgres(url)
    return url


@pytest.fixture
def cli_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A data directory of its own for the command line, which reads its settings from the
    environment: every other ``AUTOSETTLE_*`` variable removed, no stray ``.env`` file, and
    the settings cache cleared before and after."""
    for name in list(os.environ):
        if name.startswith("AUTOSETTLE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    data_dir = tmp_path / "var"
    monkeypatch.setenv("AUTOSETTLE_DATA_DIR", str(data_dir))
    get_settings.cache_clear()
    yield data_dir
    get_settings.cache_clear()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "var", database_url=db_url,
                    pan_token_key=TEST_PAN_KEY, data_key=TEST_DATA_KEY)  # type: ignore[arg-type]


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[IssuerSimulator]:
    """The issuer simulator, with its own database (as a real issuer would have)."""
    simulator = IssuerSimulator(f"sqlite:///{tmp_path / 'issuer-sim.db'}")
    yield simulator
    simulator.close()


@pytest.fixture
def ctx(settings: Settings, clock: FakeClock, sim: IssuerSimulator) -> Iterator[ServiceContext]:
    context = ServiceContext(settings=settings, db=Database(settings.effective_database_url),
                             clock=clock, channel=sim)
    yield context
    context.db.dispose()


@pytest.fixture
def client(ctx: ServiceContext) -> Iterator[TestClient]:
    with TestClient(create_app(ctx), raise_server_exceptions=False) as test_client:
        yield test_client
