"""Every file autosettle writes is 0600 and every folder 0700 (issue 9, defect 5).

A realistic workload runs in a fresh data directory under the usual umask 022: settings
with generated secrets, migrations, the demo data set and its keys, the demo cards at the
issuer simulator, a payment, the terminal simulator against a real host (its keyring and
locks), a same-day settlement and its payout files. Then the mode of every file and folder
under the data directory is checked, with the databases still open (WAL and SHM files
included) and after they are closed. A data directory an older version left readable by
others (0755, files 0644) is tightened by the next run.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from autosettle.cli.wiring import channel_for
from autosettle.config import Settings, load_settings
from autosettle.domain.money import Money
from autosettle.domain.transactions import TxnType
from autosettle.services import payments, payouts, settlement
from autosettle.services.context import ServiceContext, build_context
from autosettle.services.payments import CardInput, PaymentRequest
from autosettle.simulators import demo_seed as demo
from autosettle.simulators.demo_traffic import DEMO_CARDS, seed_cards
from autosettle.simulators.fleet import prepare_fleet
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.simulators.terminal import SimulationConfig, run_simulation
from autosettle.store import migrate
from autosettle.terminal_host.server import HostLimits, start_terminal_host

NOW = datetime(2026, 9, 18, 2, 0, tzinfo=UTC)
DAY = date(2026, 9, 18)
LAO_WANG = "898310058120001"  # D0: settled and paid out the same day
LIMITS = HostLimits(connections_max=16, idle_timeout_s=5.0, read_timeout_s=1.0,
                    write_timeout_s=2.0, workers_max=8, stop_timeout_s=10.0)
WRITTEN = {"secrets.json", "demo-keys.json", "issuer-sim.db", "issuer-sim.key",
           "terminal-sim-keys.json", "payouts", "payouts/payouts-20260918.csv",
           "payouts/payouts-20260918.txt"}
"""What the workload writes in every case (plus autosettle.db on SQLite)."""


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, whatever the test runner has: no file may rely on a strict one."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def modes(root: Path) -> dict[str, int]:
    """Permission bits of ``root`` ('.') and of everything under it, by relative path."""
    found = {".": stat.S_IMODE(os.stat(root).st_mode)}
    for path in root.rglob("*"):
        found[path.relative_to(root).as_posix()] = stat.S_IMODE(os.lstat(path).st_mode)
    return found


def loose(root: Path) -> dict[str, str]:
    """Every folder under ``root`` that is not 0700 and every file that is not 0600."""
    wrong = {}
    for name, mode in modes(root).items():
        want = 0o700 if (root / name).is_dir() else 0o600
        if mode != want:
            wrong[name] = oct(mode)
    return wrong


def _settings(data_dir: Path, db_url: str) -> Settings:
    # As the CLI loads them: no secrets configured, so they are generated in the data dir.
    return load_settings(data_dir=data_dir,
                         database_url="" if db_url.startswith("sqlite") else db_url)


def _pay_and_settle(ctx: ServiceContext) -> None:
    card = DEMO_CARDS[0]
    sale = payments.authorize(ctx, PaymentRequest(
        TxnType.SALE, LAO_WANG, "LW000001", Money(12_800),
        CardInput(card.pan, card.expiry, card.pin)))
    assert sale.approved, sale.message
    run = settlement.settle(ctx, DAY, settlement.SAME_DAY)
    assert run.payout_minor > 0
    file = payouts.export_payouts(ctx, DAY)
    assert file.count == 1
    with ctx.db.unit_of_work() as uow:
        assert all(v == 0 for v in uow.ledger.imbalance_by_currency().values())
        assert uow.ledger.balance(f"merchant_unsettled:{LAO_WANG}", "CNY") == 0  # all paid


def _terminal_simulator(ctx: ServiceContext) -> None:
    host = start_terminal_host(ctx, "127.0.0.1", 0, limits=LIMITS)
    try:
        fleet = prepare_fleet(ctx, create=1)
        try:
            summary = run_simulation(ctx, fleet, SimulationConfig(
                tps=10.0, duration_s=1.0, port=host.port, timeout_s=0.8, seed=9,
                faults=False))
        finally:
            fleet.release()
    finally:
        host.stop()
    assert summary.ok, [c.detail for c in summary.checks if not c.ok]


def test_every_file_written_is_private(tmp_path: Path, db_url: str, umask_022: None) -> None:
    data_dir = tmp_path / "var"
    settings = _settings(data_dir, db_url)
    migrate.upgrade(settings.effective_database_url)
    ctx = build_context(settings, clock=lambda: NOW, channel=channel_for(settings))
    assert isinstance(ctx.channel, IssuerSimulator)
    try:
        demo.seed(ctx)
        seed_cards(ctx.channel)
        _pay_and_settle(ctx)
        _terminal_simulator(ctx)
        assert loose(data_dir) == {}             # databases open: WAL and SHM included
        written = set(modes(data_dir))
        assert written >= WRITTEN, sorted(written)
        if not ctx.db.is_postgres:
            assert "autosettle.db" in written and "autosettle.db-wal" in written
        assert "issuer-sim.db-wal" in written
    finally:
        ctx.db.dispose()
        ctx.channel.close()
    assert loose(data_dir) == {}


def test_an_older_data_dir_is_tightened(tmp_path: Path, db_url: str, umask_022: None) -> None:
    data_dir = tmp_path / "var"
    (data_dir / "payouts").mkdir(parents=True)                        # 0755
    (data_dir / "payouts" / "payouts-20260918.csv").write_text("x")   # 0644
    (data_dir / "demo-keys.json").write_text("{}")
    (data_dir / "secrets.json").write_text(
        '{"pan_token_key": "' + "33" * 32 + '", "data_key": "' + "44" * 32 + '"}')
    # The embedded database, left open: its WAL and SHM stay (on PostgreSQL, the issuer
    # simulator's database stands in for it).
    older_db = "autosettle.db" if db_url.startswith("sqlite") else "issuer-sim.db"
    older = sqlite3.connect(data_dir / older_db)
    older.execute("PRAGMA journal_mode = WAL")
    older.execute("CREATE TABLE older_version (x)")
    assert set(loose(data_dir)) >= {".", "payouts", "payouts/payouts-20260918.csv",
                                    older_db, f"{older_db}-wal", f"{older_db}-shm",
                                    "demo-keys.json", "secrets.json"}

    settings = _settings(data_dir, db_url)
    migrate.upgrade(settings.effective_database_url)
    ctx = build_context(settings, clock=lambda: NOW, channel=channel_for(settings))
    assert isinstance(ctx.channel, IssuerSimulator)
    try:
        demo.seed(ctx)
        seed_cards(ctx.channel)
        _pay_and_settle(ctx)
        assert loose(data_dir) == {}
    finally:
        older.close()
        ctx.db.dispose()
        ctx.channel.close()
    assert loose(data_dir) == {}
