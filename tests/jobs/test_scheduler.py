"""The scheduler on a fake clock (both databases): the daily run at its time, catch-up after
downtime, maintenance windows, intraday D+0 vs T+0 on holidays, and the cut-off job."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from jobtools import (
    CHANNEL_RECEIVABLE,
    FEE_INCOME,
    PAYOUT_CLEARING,
    SAME_DAY_SURCHARGE_MINOR,
    ClockLike,
    add_merchant,
    add_sales,
    assert_balances,
    at_settlement_time,
    batches,
    ledger_balanced,
    merchant_unsettled,
    mid,
    payout_total,
    shanghai,
)

from autosettle.jobs.settlement import build_scheduler, intraday_key
from autosettle.services import alerts, leases, maintenance, merchants
from autosettle.services.context import SYSTEM, ServiceContext

T1, D1, D0, T0 = mid(1), mid(2), mid(3), mid(4)


@pytest.fixture
def shops(ctx: ServiceContext) -> ServiceContext:
    for merchant_id, cycle in ((T1, "T1"), (D1, "D1"), (D0, "D0"), (T0, "T0")):
        add_merchant(ctx, merchant_id, cycle)
    return ctx


def dates_of(ctx: ServiceContext, merchant_id: str) -> list[date]:
    return [b["settlement_date"] for b in batches(ctx, merchant_id)]


def test_the_daily_run_waits_for_its_time_then_settles_and_exports(
        shops: ServiceContext, clock: ClockLike) -> None:
    ctx = shops
    friday = date(2026, 9, 18)
    net_t1 = add_sales(ctx, T1, friday, [100_000, 2_345])   # T+1: Sunday 09-20 (in lieu)
    net_d1 = add_sales(ctx, D1, friday, [50_000])           # D+1: Saturday 09-19
    gross_t1, gross_d1 = 102_345, 50_000
    captured = assert_balances(ctx, {
        CHANNEL_RECEIVABLE: gross_t1 + gross_d1,
        merchant_unsettled(T1): -gross_t1, merchant_unsettled(D1): -gross_d1})
    scheduler = build_scheduler(ctx, owner="s1")

    clock.now = at_settlement_time(ctx, date(2026, 9, 19), minutes_after=-1)
    first = scheduler.tick()
    assert [o.run_key for o in first.ran("settle-daily")] == ["2026-09-18"]
    assert batches(ctx) == []
    assert_balances(ctx, {}, since=captured)

    clock.now = at_settlement_time(ctx, date(2026, 9, 19))
    saturday = scheduler.tick()
    assert [o.run_key for o in saturday.ran("settle-daily")] == ["2026-09-19"]
    assert dates_of(ctx, D1) == [date(2026, 9, 19)]  # D cycles run on any day
    assert dates_of(ctx, T1) == []                    # T cycles wait for a workday
    [export] = saturday.ran("payouts-daily")
    assert (export.counts["count"], export.counts["total_minor"]) == (1, net_d1)
    paid_d1 = assert_balances(ctx, {  # settled and sent: unsettled → fees + clearing
        merchant_unsettled(D1): gross_d1, FEE_INCOME: -(gross_d1 - net_d1),
        PAYOUT_CLEARING: -net_d1}, since=captured)

    clock.now = at_settlement_time(ctx, date(2026, 9, 20), minutes_after=5)
    sunday = scheduler.tick()
    assert dates_of(ctx, T1) == [date(2026, 9, 20)]
    [export] = sunday.ran("payouts-daily")
    assert (export.counts["count"], export.counts["total_minor"]) == (1, net_t1)
    assert (ctx.settings.data_dir / "payouts" / "payouts-20260920.csv").exists()
    assert payout_total(ctx) == net_t1 + net_d1
    assert_balances(ctx, {merchant_unsettled(T1): gross_t1, FEE_INCOME: -(gross_t1 - net_t1),
                          PAYOUT_CLEARING: -net_t1}, since=paid_d1)
    assert scheduler.tick().ran("settle-daily") == []  # once per date
    assert ledger_balanced(ctx)


def test_the_payout_file_waits_for_its_settlement_run(
        shops: ServiceContext, clock: ClockLike) -> None:
    ctx = shops
    net = add_sales(ctx, D1, date(2026, 9, 18), [50_000])   # D+1: Saturday 09-19
    day = date(2026, 9, 19)
    clock.now = at_settlement_time(ctx, day)
    assert leases.claim(ctx, "settle-daily", day.isoformat(), "other", 60) == ("claimed", False)
    scheduler = build_scheduler(ctx, owner="s1")
    busy = scheduler.tick()   # another instance is settling: the file must not be written
    assert busy.ran("settle-daily") == [] and busy.ran("payouts-daily") == []
    assert ("payouts-daily", day.isoformat()) in busy.waiting
    assert not leases.is_done(ctx, "payouts-daily", day.isoformat())

    clock.now = at_settlement_time(ctx, day, minutes_after=2)   # the other one died
    after = scheduler.tick()
    assert [o.run_key for o in after.ran("settle-daily")] == [day.isoformat()]
    [export] = after.ran("payouts-daily")
    assert (export.counts["count"], export.counts["total_minor"]) == (1, net)
    assert_balances(ctx, {CHANNEL_RECEIVABLE: 50_000, FEE_INCOME: -(50_000 - net),
                          PAYOUT_CLEARING: -net})


def test_runs_missed_while_down_are_caught_up_oldest_first(
        shops: ServiceContext, clock: ClockLike) -> None:
    ctx = shops
    start = date(2026, 10, 12)
    nets = [add_sales(ctx, D1, start + timedelta(days=n), [10_000 * (n + 1)])
            for n in range(4)]
    scheduler = build_scheduler(ctx, owner="s1")
    clock.now = at_settlement_time(ctx, start + timedelta(days=1), minutes_after=30)
    scheduler.tick()
    assert dates_of(ctx, D1) == [start + timedelta(days=1)]

    # down for three days: the next start settles each missed date, in order
    clock.now = at_settlement_time(ctx, start + timedelta(days=4), minutes_after=30)
    report = scheduler.tick()
    missed = [(start + timedelta(days=n)).isoformat() for n in (2, 3, 4)]
    assert [o.run_key for o in report.ran("settle-daily")] == missed
    assert [o.run_key for o in report.ran("payouts-daily")] == missed
    assert dates_of(ctx, D1) == [start + timedelta(days=n) for n in (1, 2, 3, 4)]
    assert [b["payout_minor"] for b in batches(ctx, D1)] == nets
    assert payout_total(ctx) == sum(nets)
    gross = sum(10_000 * (n + 1) for n in range(4))
    assert_balances(ctx, {CHANNEL_RECEIVABLE: gross, FEE_INCOME: -(gross - sum(nets)),
                          PAYOUT_CLEARING: -sum(nets)})  # every date settled and sent once

    # a long outage is caught up only so far back
    ctx.settings = ctx.settings.model_copy(update={"catchup_days_max": 2})
    clock.now += timedelta(days=10)
    report = scheduler.tick()
    latest = start + timedelta(days=14)
    assert [o.run_key for o in report.ran("settle-daily")] == [
        (latest - timedelta(days=1)).isoformat(), latest.isoformat()]


def test_a_maintenance_window_defers_jobs_to_its_end(
        shops: ServiceContext, clock: ClockLike) -> None:
    ctx = shops
    net = add_sales(ctx, T1, date(2026, 9, 18), [80_000])  # due Sunday 2026-09-20
    scheduler = build_scheduler(ctx, owner="s1")
    clock.now = shanghai(2026, 9, 20, 1, 0)
    scheduler.tick()
    starts, ends = shanghai(2026, 9, 20, 1, 30), shanghai(2026, 9, 21, 0, 30)
    window = maintenance.announce(ctx, SYSTEM, starts, ends, "core banking upgrade")

    [notice] = maintenance.notices(ctx, SYSTEM, T1)
    assert [r.job for r in notice.deferred_runs] == ["settle-intraday", "settle-daily",
                                                     "cutoff", "risk-score"]
    changes = {(a.cycle, a.was): (a.now, a.amount_minor) for a in notice.arrivals}
    assert changes[("T1", date(2026, 9, 20))] == (date(2026, 9, 21), net)

    clock.now = shanghai(2026, 9, 20, 2, 10)
    inside = scheduler.tick()
    assert inside.outcomes == [] and ("settle-daily", "2026-09-20") in inside.deferred
    run = leases.get_run(ctx, "settle-daily", "2026-09-20")
    assert run is not None and (run.status, run.lease_expires_at) == ("deferred", ends)
    assert batches(ctx) == []

    clock.now = shanghai(2026, 9, 21, 0, 29)
    assert scheduler.tick().outcomes == []
    assert batches(ctx) == []

    clock.now = shanghai(2026, 9, 21, 0, 31)
    after = scheduler.tick()
    [settled] = after.ran("settle-daily")
    assert (settled.run_key, settled.status, settled.counts["batches"]) == (
        "2026-09-20", "done", 1)
    assert [o.run_key for o in after.ran("payouts-daily")] == ["2026-09-20"]
    assert payout_total(ctx, T1) == net
    assert_balances(ctx, {CHANNEL_RECEIVABLE: 80_000, FEE_INCOME: -(80_000 - net),
                          PAYOUT_CLEARING: -net})
    run = leases.get_run(ctx, "settle-daily", "2026-09-20")
    assert run is not None and run.status == "done"
    assert maintenance.active(ctx) is None
    assert window.window_id > 0


def test_intraday_runs_settle_d0_every_day_and_t0_on_workdays_only(
        shops: ServiceContext, clock: ClockLike) -> None:
    ctx = shops
    holiday = date(2026, 10, 3)  # National Day week: Saturday, and a holiday
    net_d0 = add_sales(ctx, D0, holiday, [30_000, 1_000])
    net_t0 = add_sales(ctx, T0, holiday, [40_000])
    scheduler = build_scheduler(ctx, owner="s1")

    clock.now = shanghai(2026, 10, 3, 10, 7)
    report = scheduler.tick()
    [run] = report.ran("settle-intraday")
    assert run.run_key == intraday_key(shanghai(2026, 10, 3, 10, 0)) == \
        "2026-10-03:T0+D0@100000"
    assert dates_of(ctx, D0) == [holiday]
    assert dates_of(ctx, T0) == []  # T+0 waits for the first workday
    assert payout_total(ctx, D0) == net_d0 - SAME_DAY_SURCHARGE_MINOR
    gross_d0, gross_t0 = 31_000, 40_000
    d0_paid = net_d0 - SAME_DAY_SURCHARGE_MINOR
    holiday_books = assert_balances(ctx, {  # the surcharge is fee income too
        CHANNEL_RECEIVABLE: gross_d0 + gross_t0, merchant_unsettled(T0): -gross_t0,
        FEE_INCOME: -(gross_d0 - d0_paid), PAYOUT_CLEARING: -d0_paid})
    assert scheduler.tick().ran("settle-intraday") == []  # same slot: nothing again

    clock.now = shanghai(2026, 10, 7, 15, 0)  # still a holiday
    scheduler.tick()
    assert dates_of(ctx, T0) == []

    clock.now = shanghai(2026, 10, 8, 9, 31)  # Thursday, the first workday after
    scheduler.tick()
    assert dates_of(ctx, T0) == [date(2026, 10, 8)]
    assert payout_total(ctx, T0) == net_t0 - SAME_DAY_SURCHARGE_MINOR
    t0_paid = net_t0 - SAME_DAY_SURCHARGE_MINOR
    workday_books = assert_balances(ctx, {
        merchant_unsettled(T0): gross_t0, FEE_INCOME: -(gross_t0 - t0_paid),
        PAYOUT_CLEARING: -t0_paid}, since=holiday_books)
    more = add_sales(ctx, D0, date(2026, 10, 8), [12_000])
    clock.now = shanghai(2026, 10, 8, 10, 1)  # the next slot
    scheduler.tick()
    assert dates_of(ctx, D0) == [holiday, date(2026, 10, 8)]
    assert payout_total(ctx, D0) == net_d0 + more - 2 * SAME_DAY_SURCHARGE_MINOR
    more_paid = more - SAME_DAY_SURCHARGE_MINOR
    assert_balances(ctx, {CHANNEL_RECEIVABLE: 12_000, FEE_INCOME: -(12_000 - more_paid),
                          PAYOUT_CLEARING: -more_paid}, since=workday_books)
    assert ledger_balanced(ctx)


def test_the_cutoff_job_records_the_new_business_date_and_open_batches(
        shops: ServiceContext, clock: ClockLike) -> None:
    ctx = shops
    merchants.add_terminal(ctx, SYSTEM, T1, merchants.NewTerminal("HL000001"))
    clock.now = shanghai(2026, 9, 18, 20, 0)
    with ctx.db.unit_of_work() as uow:
        uow.batches.add(T1, "HL000001", "000001", clock.now)
    scheduler = build_scheduler(ctx, owner="s1")
    report = scheduler.tick()
    [before] = report.ran("cutoff")
    assert before.run_key == "2026-09-18"
    assert before.counts["open_terminal_batches"] == 0  # opened after that cut-off

    clock.now = shanghai(2026, 9, 18, 23, 0)  # the cut-off (日切): business date 09-19
    [cut] = scheduler.tick().ran("cutoff")
    assert cut.run_key == "2026-09-19"
    assert (cut.counts["open_terminal_batches"], cut.counts["merchants_with_open_batches"]) \
        == (1, 1)
    own = alerts.list_alerts(ctx, SYSTEM, T1)
    assert [a.kind for a in own] == ["open_terminal_batches"]
    assert scheduler.tick().ran("cutoff") == []
