"""Leases across OS processes (both databases): two processes racing for one run settle it
once; a process killed (SIGKILL) half-way through a run is taken over after its lease
expires, the run completes, and no merchant is paid twice; a manual run killed so is shown
and recorded as abandoned (never ``running`` for ever) and the next run of its date settles
the rest, again paying nobody twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from jobtools import (
    CHANNEL_RECEIVABLE,
    FEE_INCOME,
    PAYOUT_CLEARING,
    ClockLike,
    add_merchant,
    add_sales,
    assert_balances,
    batch_count,
    batches,
    ledger_balanced,
    merchant_payable,
    mid,
    payout_total,
    shanghai,
    unclaimed_items,
)

from autosettle.jobs.settlement import build_scheduler
from autosettle.services import leases
from autosettle.services.context import SYSTEM, ServiceContext

CHILD = Path(__file__).with_name("settle_child.py")
BUSINESS_DAY = date(2026, 9, 18)  # Friday: T+1 is Sunday 2026-09-20, an in-lieu workday
RUN_DAY = date(2026, 9, 20)
NOW = shanghai(2026, 9, 20, 2, 5)
RUN_KEY = "2026-09-20"
BATCH_RUN_KEY = "2026-09-20:T1+D1:T1:CNY"
CHILD_LEASE_S = 20
START_LINE_S = 1.5
WAIT_S_MAX = 40.0
POLL_S = 0.05


def seed(ctx: ServiceContext, merchants: int) -> dict[str, int]:
    """``merchants`` T+1 merchants with two sales each; their expected payouts."""
    expected: dict[str, int] = {}
    for n in range(merchants):
        merchant_id = mid(n + 1)
        add_merchant(ctx, merchant_id, "T1")
        expected[merchant_id] = add_sales(ctx, merchant_id, BUSINESS_DAY,
                                          [10_000 + n, 2_500 * (n + 1)])
    return expected


def gross_of(merchants: int) -> int:
    """What :func:`seed` captured."""
    return sum(10_000 + n + 2_500 * (n + 1) for n in range(merchants))


def spawn(db_url: str, tmp_path: Path, owner: str, delay_s: float,
          start_at: float, *mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), db_url, str(tmp_path / "child"), NOW.isoformat(),
         RUN_DAY.isoformat(), str(CHILD_LEASE_S), str(delay_s), str(start_at), owner, *mode],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})


def assert_paid_once(ctx: ServiceContext, expected: dict[str, int], exported: bool) -> None:
    for merchant_id, net in expected.items():
        found = batches(ctx, merchant_id)
        assert [b["run_key"] for b in found] == [BATCH_RUN_KEY], (merchant_id, found)
        assert found[0]["payout_minor"] == net
        assert payout_total(ctx, merchant_id) == net
    assert payout_total(ctx) == sum(expected.values())
    assert unclaimed_items(ctx) == 0
    assert ledger_balanced(ctx)
    gross, paid = gross_of(len(expected)), sum(expected.values())
    owed = ({PAYOUT_CLEARING: -paid} if exported
            else {merchant_payable(m): -net for m, net in expected.items()})
    assert_balances(ctx, {CHANNEL_RECEIVABLE: gross, FEE_INCOME: -(gross - paid), **owed})


def test_two_processes_racing_for_a_run_settle_it_once(
        ctx: ServiceContext, db_url: str, tmp_path: Path) -> None:
    expected = seed(ctx, 6)
    start_at = time.time() + START_LINE_S
    racers = [spawn(db_url, tmp_path, f"racer-{n}", 0.1, start_at) for n in range(2)]
    results = []
    for racer in racers:
        out, err = racer.communicate(timeout=WAIT_S_MAX)
        assert racer.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    statuses = sorted(r["status"] for r in results)
    assert statuses.count("done") == 1, results
    assert set(statuses) - {"done"} <= {"busy", "already_done"}, results
    winner = next(r for r in results if r["status"] == "done")
    assert winner["batches"] == len(expected)
    run = leases.get_run(ctx, "settle-daily", RUN_KEY)
    assert run is not None and (run.status, run.owner) == ("done", winner["owner"])
    assert_paid_once(ctx, expected, exported=False)


def test_sigkill_during_a_run_then_restart_completes_it_without_paying_twice(
        ctx: ServiceContext, clock: ClockLike, db_url: str, tmp_path: Path) -> None:
    expected = seed(ctx, 24)
    child = spawn(db_url, tmp_path, "doomed", 0.1, 0.0)
    settled_before = kill_half_way(ctx, child, len(expected))
    run = leases.get_run(ctx, "settle-daily", RUN_KEY)
    assert run is not None and (run.status, run.owner) == ("running", "doomed")

    scheduler = build_scheduler(ctx, owner="restarted")
    clock.now = NOW  # restarted at once: the dead owner's lease still stands
    report = scheduler.tick()
    assert report.ran("settle-daily") == []
    assert batch_count(ctx) == settled_before

    clock.now = NOW + timedelta(seconds=CHILD_LEASE_S + 1)
    report = scheduler.tick()
    [resumed] = report.ran("settle-daily")
    assert (resumed.status, resumed.took_over) == ("done", True)
    assert resumed.counts["batches"] == len(expected) - settled_before
    assert [o.run_key for o in report.ran("payouts-daily")] == [RUN_KEY]
    assert_paid_once(ctx, expected, exported=True)
    run = leases.get_run(ctx, "settle-daily", RUN_KEY)
    assert run is not None and (run.status, run.owner) == ("done", "restarted")

    again = scheduler.tick()  # nothing is due twice
    assert again.ran("settle-daily") == [] and again.ran("payouts-daily") == []
    assert_paid_once(ctx, expected, exported=True)


def kill_half_way(ctx: ServiceContext, child: subprocess.Popen[str], total: int) -> int:
    """SIGKILL ``child`` once it has settled a few merchants; how many it settled."""
    deadline = time.monotonic() + WAIT_S_MAX
    while batch_count(ctx) < 4:
        if child.poll() is not None:
            raise AssertionError(f"the child ended early: {child.communicate()}")
        assert time.monotonic() < deadline, "the child never settled anything"
        time.sleep(POLL_S)
    os.kill(child.pid, signal.SIGKILL)
    child.communicate(timeout=WAIT_S_MAX)
    assert child.returncode == -signal.SIGKILL
    settled = batch_count(ctx)
    assert 4 <= settled < total, "the kill should land half-way"
    return settled


def test_sigkill_during_a_manual_run_leaves_it_abandoned_not_running(
        ctx: ServiceContext, clock: ClockLike, db_url: str, tmp_path: Path) -> None:
    expected = seed(ctx, 24)
    child = spawn(db_url, tmp_path, "-", 0.1, 0.0, "manual")
    settled_before = kill_half_way(ctx, child, len(expected))
    [dead] = leases.recent_runs(ctx, leases.JOB_MANUAL_SETTLE)
    clock.now = NOW                                   # its lease (the default) still stands
    assert leases.recent_runs(ctx)[0].status == "running"

    clock.now = NOW + timedelta(seconds=leases.LEASE_S_DEFAULT + 1)
    assert leases.recent_runs(ctx)[0].status == "abandoned"
    again = leases.settle_now(ctx, SYSTEM, RUN_DAY)   # the operator runs the date again
    assert again.outcome.status == "done"
    assert again.outcome.counts["batches"] == len(expected) - settled_before
    assert_paid_once(ctx, expected, exported=False)
    runs = {r.run_key: r for r in leases.recent_runs(ctx, leases.JOB_MANUAL_SETTLE)}
    assert runs[dead.run_key].status == "abandoned"
    assert runs[again.outcome.run_key].status == "done"
    with ctx.db.unit_of_work() as uow:
        row = uow.leases.get(leases.JOB_MANUAL_SETTLE, dead.run_key)
    assert row is not None and row.status == "abandoned"   # recorded, not only shown
    assert row.error is not None and row.error.startswith("abandoned: owner ")
