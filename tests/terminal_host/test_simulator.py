"""The terminal simulator (`autosettle terminal simulate`) and the demo fleet of `serve`.

Real sockets against a host on a free port, on SQLite and (when configured) PostgreSQL:
the summary's own checks pass, and what it reports agrees with our ledger and with the
issuer simulator's card accounts.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator

import pytest
from hosttools import TEST_LIMITS
from sqlalchemy import func, select
from typer.testing import CliRunner

from autosettle.cli import app
from autosettle.cli import console as cli_console
from autosettle.domain.money import Money
from autosettle.domain.transactions import TxnType
from autosettle.services import payments, terminal_keys
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.services.payments import CardInput, PaymentRequest
from autosettle.simulators import demo_seed as demo
from autosettle.simulators.fleet import (
    CARD_EXPIRY,
    CARD_PIN,
    CardRole,
    Fleet,
    Keyring,
    NotOurs,
    PoolLock,
    cards_for,
    prepare_fleet,
    sim_terminal_ids,
)
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.simulators.report import Summary
from autosettle.simulators.terminal import (
    DemoFleet,
    Mix,
    SimulationConfig,
    run_simulation,
)
from autosettle.store.tables import transactions
from autosettle.terminal_host.server import TerminalHostHandle, start_terminal_host

OPENING = ("sale", "sale_foreign", "void", "refund", "preauth", "completion", "balance",
           "wrong_pin", "insufficient_funds", "declined_card", "drop", "timeout")
"""Every terminal plays these first, so each kind of message and fault happens."""
TIMEOUT_S = 0.8
HUALIAN = "898310054110001"


@pytest.fixture
def th(ctx: ServiceContext, sim: IssuerSimulator) -> Iterator[TerminalHostHandle]:
    handle = start_terminal_host(ctx, "127.0.0.1", 0, limits=TEST_LIMITS)
    yield handle
    handle.stop()


def _config(port: int, **overrides: object) -> SimulationConfig:
    values: dict[str, object] = dict(tps=12.0, duration_s=2.0, port=port,
                                     timeout_s=TIMEOUT_S, seed=20_260_918)
    values.update(overrides)
    return SimulationConfig(**values)  # type: ignore[arg-type]


def _run(ctx: ServiceContext, fleet: Fleet, config: SimulationConfig) -> Summary:
    try:
        return run_simulation(ctx, fleet, config)
    finally:
        fleet.release()


def _failed(summary: Summary) -> list[str]:
    return [f"{c.name}: {c.detail}" for c in summary.checks if not c.ok]


def _net_captured(summary: Summary) -> int:
    """Sales and completions minus refunds of every closed batch, as the journals say."""
    total = 0
    for batch in summary.batches:
        for block in batch.terminal_totals.values():
            total += block["debit_amount_minor"] - block["credit_amount_minor"]
    return total


def _host_counts(summary: Summary) -> dict[str, int]:
    counts = {"debit": 0, "credit": 0}
    for batch in summary.batches:
        assert batch.host_totals is not None
        for block in batch.host_totals.values():
            counts["debit"] += block["debit_count"]
            counts["credit"] += block["credit_count"]
    return counts


def test_simulation_agrees_with_the_host_the_ledger_and_the_issuer(
        ctx: ServiceContext, sim: IssuerSimulator, th: TerminalHostHandle) -> None:
    fleet = prepare_fleet(ctx, create=2)
    summary = _run(ctx, fleet, _config(th.port, tps=24.0, duration_s=2.5, opening=OPENING,
                                       unbalanced=1))

    assert summary.ok, _failed(summary)
    tally = summary.tally
    for kind in ("sale", "void", "refund", "preauth", "completion", "balance_inquiry",
                 "reversal", "settlement", "batch_upload_end", "sign_on", "sign_off"):
        assert tally.kind(kind).approved >= 1, (kind, summary.as_dict()["messages"])
    assert tally.drops == 2 and tally.timeouts_injected >= 1
    assert tally.codes["55"] >= 2 and tally.codes["51"] >= 2
    assert tally.codes["no answer"] >= 3  # two drops and at least one late answer
    assert summary.pending_reversals == 0
    verdicts = {b.terminal_id: b for b in summary.batches}
    assert verdicts["SM000001"].verdict == "not balanced"  # it lost a journal entry
    assert list(verdicts["SM000001"].flags) == ["host_only"]
    assert verdicts["SM000002"].verdict == "balanced"
    assert summary.as_dict()["latency_ms"]["p99_ms"] is not None

    # Our ledger: balanced, and the merchant is owed exactly what the journals captured.
    (merchant_id, _), _ = sim_terminal_ids(2)
    with ctx.db.unit_of_work() as uow:
        assert all(v == 0 for v in uow.ledger.imbalance_by_currency().values())
        owed = -uow.ledger.balance(f"merchant_unsettled:{merchant_id}", "CNY")
        holds = uow.ledger.balance("card_holds", "CNY")
        counted = {side: int(uow.connection.execute(
            select(func.count()).select_from(transactions).where(
                transactions.c.txn_type.in_(types), transactions.c.status == "approved",
                transactions.c.merchant_id == merchant_id)).scalar() or 0)
            for side, types in (("debit", ("sale", "completion")), ("credit", ("refund",)))}
    captured = _net_captured(summary)
    assert owed == captured > 0
    assert counted == _host_counts(summary)
    # The issuer: the cards were charged what was captured, and hold what is held.
    cards = [card for tid in ("SM000001", "SM000002")
             for card in cards_for(merchant_id, tid).values()]
    charged = sum(card.balance_minor - sim.card(card.pan).balance_minor for card in cards)
    held = sum(sim.card(card.pan).held_minor for card in cards)
    assert charged == captured
    assert held == holds


def test_a_batch_the_terminal_does_not_know_fails_the_checks(
        ctx: ServiceContext, sim: IssuerSimulator, th: TerminalHostHandle) -> None:
    assert _run(ctx, prepare_fleet(ctx, create=1), _config(th.port, duration_s=0.5)).ok
    # A sale behind the terminal's back, in the batch it will use next (not reloaded).
    (merchant_id, terminal_id), = sim_terminal_ids(1)
    card = cards_for(merchant_id, terminal_id)[CardRole.DEBIT]
    rogue = payments.authorize(ctx, PaymentRequest(
        TxnType.SALE, merchant_id, terminal_id, Money(1_234),
        CardInput(card.pan, CARD_EXPIRY, CARD_PIN), batch_no="000002", stan="900000",
        own_batch_numbers=True))
    assert rogue.approved

    summary = _run(ctx, prepare_fleet(ctx, create=1),
                   _config(th.port, duration_s=0.5, recover=False, faults=False))
    assert not summary.ok
    failed = {c.name for c in summary.checks if not c.ok}
    assert failed == {"batch verdicts", "host totals", "upload flags"}
    (batch,) = summary.batches
    assert batch.batch_no == "000002" and batch.verdict == "not balanced"
    assert batch.flags == {"host_only": ["900000"]}


def test_keys_are_kept_once_and_never_taken_from_an_operator(
        ctx: ServiceContext, sim: IssuerSimulator) -> None:
    prepare_fleet(ctx, create=2).release()
    keyring = Keyring.of(ctx)
    assert stat.S_IMODE(os.stat(keyring.path).st_mode) == 0o600
    (mid, tid), (mid2, tid2) = sim_terminal_ids(2)
    first = keyring.get(mid, tid)
    assert first is not None and first.generation == 1
    prepare_fleet(ctx, create=2).release()  # the same TMKs again: nothing re-provisioned
    assert keyring.get(mid, tid) == first

    terminal_keys.reset_tmk(ctx, SYSTEM, mid2, tid2)
    terminal_keys.provision_terminal(ctx, SYSTEM, mid2, tid2)  # an operator's TMK
    with pytest.raises(NotOurs):
        prepare_fleet(ctx, create=2)
    skipping = prepare_fleet(ctx, create=2, skip_not_ours=True)
    skipping.release()
    assert [p.terminal_id for p in skipping.profiles] == [tid]
    assert len(skipping.skipped) == 1 and tid2 in skipping.skipped[0]
    taken = prepare_fleet(ctx, create=2, reprovision=True)
    taken.release()
    second = keyring.get(mid2, tid2)
    assert len(taken.profiles) == 2 and second is not None and second.generation == 3


def test_two_runs_never_drive_the_same_terminals(ctx: ServiceContext,
                                                 sim: IssuerSimulator) -> None:
    demo.seed(ctx)
    held = PoolLock.of(ctx, "demo")
    assert held.acquire()
    try:
        with pytest.raises(Exception, match="driven by another simulator"):
            prepare_fleet(ctx)
        prepare_fleet(ctx, create=1).release()  # the simulator's own terminals are free
    finally:
        held.release()


def test_demo_fleet_runs_stops_cleanly_and_leaves_out_what_it_does_not_own(
        ctx: ServiceContext, sim: IssuerSimulator, th: TerminalHostHandle,
        caplog: pytest.LogCaptureFixture) -> None:
    demo.seed(ctx)
    terminal_keys.provision_terminal(ctx, SYSTEM, HUALIAN, "HL000002")  # an operator's TMK
    caplog.set_level(logging.INFO, logger="autosettle.terminal_sim")
    fleet = DemoFleet(ctx, "127.0.0.1", th.port, interval_s=0.15, seed=5).start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _approved_count(ctx) < 6:
            time.sleep(0.05)
    finally:
        started = time.monotonic()
        fleet.stop()
    assert not fleet.running and time.monotonic() - started < 5
    assert _approved_count(ctx) >= 6
    ran = fleet.summary
    assert ran is not None and ran.ok, _failed(ran) if ran else "no summary"
    assert "HL000002" not in ran.terminals and len(ran.terminals) == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
                and r.name == "autosettle.terminal_sim"]
    assert len(warnings) == 1 and "HL000002" in warnings[0], warnings
    assert any(r.getMessage().startswith("HL000001 sale ") for r in caplog.records)

    # The fleet left its batches open: a run on the demo terminals reloads them and
    # closes them balanced.
    summary = _run(ctx, prepare_fleet(ctx, skip_not_ours=True),
                   _config(th.port, duration_s=0.5, faults=False))
    assert summary.ok, _failed(summary)
    assert summary.tally.recovered >= 1
    assert all(b.verdict == "balanced" for b in summary.batches)


def _approved_count(ctx: ServiceContext) -> int:
    with ctx.db.unit_of_work() as uow:
        return int(uow.connection.execute(select(func.count()).select_from(transactions)
                                          .where(transactions.c.status == "approved"))
                   .scalar() or 0)


def test_cli_simulate_prints_json_and_exits_by_its_checks(
        ctx: ServiceContext, sim: IssuerSimulator, th: TerminalHostHandle,
        monkeypatch: pytest.MonkeyPatch) -> None:
    if not ctx.settings.effective_database_url.startswith("sqlite"):
        pytest.skip("the CLI runs on SQLite here; the simulator itself runs on both")
    monkeypatch.setattr(cli_console, "context_factory", lambda: ctx)
    runner = CliRunner()
    result = runner.invoke(app, ["terminal", "simulate", "--create", "2", "--tps", "10",
                                 "--duration", "1.5", "--port", str(th.port), "--timeout",
                                 "1", "--seed", "3", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["terminals"] == ["SM000001", "SM000002"]
    assert {b["verdict"] for b in report["batches"]} == {"balanced"}
    assert report["financial_messages"] > 0 and "00" in report["response_codes"]
    assert all(check["ok"] for check in report["checks"])

    text = runner.invoke(app, ["terminal", "simulate", "--create", "1", "--tps", "5",
                               "--duration", "0.5", "--local", "--no-faults"])
    assert text.exit_code == 0, text.output
    assert "all checks passed" in text.stdout

    usage = runner.invoke(app, ["terminal", "simulate", "--terminals", "9", "--duration",
                                "0.5", "--port", str(th.port)])
    assert usage.exit_code == 2  # no demo terminals here
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]
    down = runner.invoke(app, ["terminal", "simulate", "--create", "1", "--port",
                               str(closed_port)])
    assert down.exit_code == 2 and "no terminal host" in down.output


def test_a_host_that_is_down_is_reported_once(ctx: ServiceContext, sim: IssuerSimulator,
                                              caplog: pytest.LogCaptureFixture) -> None:
    handle = start_terminal_host(ctx, "127.0.0.1", 0, limits=TEST_LIMITS)
    port = handle.port
    handle.stop()
    caplog.set_level(logging.WARNING, logger="autosettle.terminal_sim")
    stop = threading.Event()
    fleet = prepare_fleet(ctx, create=1)
    timer = threading.Timer(0.6, stop.set)
    timer.start()
    try:
        summary = run_simulation(ctx, fleet, _config(port, duration_s=None, tps=20.0), stop)
    finally:
        fleet.release()
        timer.cancel()
    assert [c.name for c in summary.checks if not c.ok] == ["sign-on"]
    unreachable = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(unreachable) == 1
    assert Mix().without_faults().timeout == 0
