"""Job runs that nobody would ever close (issue 9, defect 11), on both databases: a run whose
owner died (its lease expired) is shown and recorded as ``abandoned`` by the next tick or the
next manual run, and a scheduled one that is due again is still taken over and finished; a
run deferred by a maintenance window that a later run of the same job covered is
``superseded`` instead of ``deferred`` for ever."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from jobtools import (
    SAME_DAY_SURCHARGE_MINOR,
    ClockLike,
    add_merchant,
    add_sales,
    batches,
    ledger_balanced,
    mid,
    payout_total,
    shanghai,
)

from autosettle.jobs.settlement import build_scheduler
from autosettle.services import leases, maintenance
from autosettle.services.context import SYSTEM, ServiceContext

NOODLES = mid(3)  # D+0
WORKDAY = date(2026, 10, 8)  # Thursday, the first workday after National Day
LEASE_S = 60.0


@pytest.fixture
def shop(ctx: ServiceContext) -> ServiceContext:
    add_merchant(ctx, NOODLES, "D0")
    return ctx


def status_in_db(ctx: ServiceContext, job: str, key: str) -> str:
    with ctx.db.unit_of_work() as uow:
        row = uow.leases.get(job, key)
    assert row is not None
    return str(row.status)


def balance(ctx: ServiceContext, code: str) -> int:
    with ctx.db.unit_of_work() as uow:
        return uow.ledger.balance(code, "CNY")


def test_a_manual_run_whose_owner_died_is_abandoned_not_running_for_ever(
        shop: ServiceContext, clock: ClockLike) -> None:
    ctx = shop
    clock.now = shanghai(2026, 10, 8, 10, 0)
    key = "2026-10-08:D0@100000-dead01"
    assert leases.claim(ctx, leases.JOB_MANUAL_SETTLE, key, "host:4242:dead", LEASE_S) == (
        "claimed", False)                       # what a killed `autosettle settle` leaves
    [shown] = leases.recent_runs(ctx)
    assert shown.status == "running"            # its lease still stands

    clock.advance(seconds=LEASE_S + 1)
    [shown] = leases.recent_runs(ctx)
    assert shown.status == "abandoned"          # shown so at once ...
    found = leases.get_run(ctx, leases.JOB_MANUAL_SETTLE, key)
    assert found is not None and found.status == "abandoned"
    assert status_in_db(ctx, leases.JOB_MANUAL_SETTLE, key) == "running"

    net = add_sales(ctx, NOODLES, WORKDAY, [30_000]) - SAME_DAY_SURCHARGE_MINOR
    done = leases.settle_now(ctx, SYSTEM, WORKDAY, ("D0",))    # ... and recorded by the next run
    assert (done.outcome.status, done.outcome.counts["batches"]) == ("done", 1)
    assert status_in_db(ctx, leases.JOB_MANUAL_SETTLE, key) == "abandoned"
    old = leases.get_run(ctx, leases.JOB_MANUAL_SETTLE, key)
    assert old is not None and old.error is not None and "host:4242:dead" in old.error
    assert sorted(r.status for r in leases.recent_runs(ctx)) == ["abandoned", "done"]
    assert payout_total(ctx, NOODLES) == net
    assert balance(ctx, f"merchant_unsettled:{NOODLES}") == 0
    assert balance(ctx, f"merchant_payable:{NOODLES}") == -net
    assert ledger_balanced(ctx)


def test_the_scheduler_records_abandoned_runs_and_still_takes_over_its_own(
        shop: ServiceContext, clock: ClockLike) -> None:
    ctx = shop
    net = add_sales(ctx, NOODLES, WORKDAY - timedelta(days=1), [50_000]) \
        - SAME_DAY_SURCHARGE_MINOR
    clock.now = shanghai(2026, 10, 8, 1, 0)
    manual = "2026-10-07:D0@010000-dead02"
    for job, key in ((leases.JOB_MANUAL_SETTLE, manual), ("settle-daily", "2026-10-08")):
        assert leases.claim(ctx, job, key, "host:4243:dead", LEASE_S)[0] == "claimed"
    scheduler = build_scheduler(ctx, owner="s1")

    clock.now = shanghai(2026, 10, 8, 2, 5)      # the daily run is due, the leases expired
    report = scheduler.tick()
    assert status_in_db(ctx, leases.JOB_MANUAL_SETTLE, manual) == "abandoned"
    [daily] = report.ran("settle-daily")
    assert (daily.run_key, daily.status, daily.took_over) == ("2026-10-08", "done", True)
    assert status_in_db(ctx, "settle-daily", "2026-10-08") == "done"
    # Yesterday's D+0 item was left by the dead runs; an intraday run of today settles it.
    assert [b["settlement_date"] for b in batches(ctx, NOODLES)] == [WORKDAY]
    assert payout_total(ctx, NOODLES) == net
    assert balance(ctx, f"merchant_unsettled:{NOODLES}") == 0
    assert balance(ctx, "payout_clearing") == -net   # the intraday payout file went out
    assert ledger_balanced(ctx)


def test_intraday_runs_deferred_by_a_window_are_superseded_by_the_next_run(
        shop: ServiceContext, clock: ClockLike) -> None:
    ctx = shop
    scheduler = build_scheduler(ctx, owner="s1")
    clock.now = shanghai(2026, 10, 8, 9, 55)
    scheduler.tick()
    maintenance.announce(ctx, SYSTEM, shanghai(2026, 10, 8, 10, 0),
                         shanghai(2026, 10, 8, 11, 20), "core banking upgrade")
    net = add_sales(ctx, NOODLES, WORKDAY, [20_000, 5_000]) - SAME_DAY_SURCHARGE_MINOR
    held_back = []
    for minute in (10 * 60 + 5, 10 * 60 + 35, 11 * 60 + 5):
        clock.now = shanghai(2026, 10, 8, minute // 60, minute % 60)
        report = scheduler.tick()
        assert report.outcomes == []
        held_back += [key for job, key in report.deferred if job == "settle-intraday"]
    assert held_back == ["2026-10-08:T0+D0@100000", "2026-10-08:T0+D0@103000",
                         "2026-10-08:T0+D0@110000"]
    assert {status_in_db(ctx, "settle-intraday", k) for k in held_back} == {"deferred"}

    clock.now = shanghai(2026, 10, 8, 11, 35)    # the window is over: the 11:30 slot runs
    [run] = scheduler.tick().ran("settle-intraday")
    assert (run.run_key, run.status, run.counts["batches"]) == (
        "2026-10-08:T0+D0@113000", "done", 1)
    for key in held_back:
        found = leases.get_run(ctx, "settle-intraday", key)
        assert found is not None and found.status == "superseded"
        assert found.error == "superseded: covered by run 2026-10-08:T0+D0@113000"
        assert found.finished_at == clock.now
    assert "deferred" not in {r.status for r in leases.recent_runs(ctx)}
    assert payout_total(ctx, NOODLES) == net
    assert balance(ctx, f"merchant_unsettled:{NOODLES}") == 0
    assert balance(ctx, "payout_clearing") == -net
    assert ledger_balanced(ctx)
