"""The scheduled cash-out scoring (``risk-score``, jobs/risk_scoring.py) on a fake clock, both
databases: each closed business date is scored once after its cut-off and before the T+1/D+1
settlement run that could pay it, which waits for it; the planted merchant's items are held
and not paid, the honest one is paid; a tick again, or scoring the date again, changes
nothing; a run whose owner died or that failed half-way is resumed without a second hold or
alert; missed dates are caught up, scoring first."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from jobtools import (
    CHANNEL_RECEIVABLE,
    FEE_INCOME,
    PAYOUT_CLEARING,
    ClockLike,
    add_merchant,
    add_sales,
    assert_balances,
    ledger_balanced,
    merchant_unsettled,
    mid,
    payout_total,
    shanghai,
)
from sqlalchemy import select

from autosettle.jobs import risk_scoring as risk_jobs
from autosettle.jobs.settlement import build_scheduler
from autosettle.services import leases, risk_scoring
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.store.tables import settlement_items

PLANTED, HONEST = mid(1), mid(2)
DAY = date(2026, 9, 17)          # Thursday; T+1 is Friday 2026-09-18
SETTLE_DAY = date(2026, 9, 18)
# Round amounts just under the enterprise single maximum (1,000,000.00 CNY), one card four
# times: round_amounts + just_under_limit + repeat_card = 60, the review threshold.
PLANTED_SALES = [95_000_000, 96_000_000, 98_000_000, 99_000_000]
HONEST_SALES = [12_345, 6_789]
LEASE_S = 60.0


def held(ctx: ServiceContext, merchant_id: str) -> list[bool]:
    i = settlement_items.c
    with ctx.db.unit_of_work() as uow:
        return [bool(r.held) for r in uow.connection.execute(
            select(i.held).where(i.merchant_id == merchant_id).order_by(i.item_id))]


def risk_alerts(ctx: ServiceContext) -> list[str]:
    with ctx.db.unit_of_work() as uow:
        return [a.merchant_id or "" for a in uow.alerts.alerts(None, True, 500)
                if a.kind == "risk_cash_out"]


def scores(ctx: ServiceContext) -> list[tuple[str, int, bool, datetime]]:
    found = risk_scoring.flagged(ctx, SYSTEM, DAY, None)
    return sorted((s.merchant_id, s.score, s.on_review, s.created_at) for s in found)


@pytest.fixture
def day(ctx: ServiceContext) -> dict[str, Any]:
    """Both merchants' sales of DAY; the captured balances and each one's net."""
    add_merchant(ctx, PLANTED, "T1")
    add_merchant(ctx, HONEST, "T1")
    net = {PLANTED: add_sales(ctx, PLANTED, DAY, PLANTED_SALES),
           HONEST: add_sales(ctx, HONEST, DAY, HONEST_SALES)}
    gross = {PLANTED: sum(PLANTED_SALES), HONEST: sum(HONEST_SALES)}
    captured = assert_balances(ctx, {
        CHANNEL_RECEIVABLE: sum(gross.values()),
        merchant_unsettled(PLANTED): -gross[PLANTED],
        merchant_unsettled(HONEST): -gross[HONEST]})
    return {"net": net, "gross": gross, "captured": captured}


def honest_paid(day: dict[str, Any]) -> dict[str, int]:
    """The moves of the honest merchant's settlement and payout file."""
    gross, net = day["gross"][HONEST], day["net"][HONEST]
    return {merchant_unsettled(HONEST): gross, FEE_INCOME: -(gross - net),
            PAYOUT_CLEARING: -net}


def test_the_date_is_scored_after_its_cut_off_and_held_before_settlement(
        day: dict[str, Any], ctx: ServiceContext, clock: ClockLike) -> None:
    scheduler = build_scheduler(ctx, owner="s1")
    clock.now = shanghai(2026, 9, 17, 23, 29)       # closed at 23:00, scored at 23:30
    report = scheduler.tick()
    assert DAY.isoformat() not in [o.run_key for o in report.ran("risk-score")]
    assert held(ctx, PLANTED) == [False] * 4

    clock.now = shanghai(2026, 9, 17, 23, 31)
    report = scheduler.tick()
    [scored] = report.ran("risk-score")
    assert (scored.run_key, scored.status, scored.counts["count"],
            scored.counts["on_review"]) == (DAY.isoformat(), "done", 2, 1)
    assert held(ctx, PLANTED) == [True] * 4 and held(ctx, HONEST) == [False] * 2
    assert risk_alerts(ctx) == [PLANTED]
    assert [(m, s, r) for m, s, r, _ in scores(ctx)] == [(PLANTED, 60, True),
                                                         (HONEST, 0, False)]
    assert_balances(ctx, {}, since=day["captured"])  # a hold moves no money

    clock.now = shanghai(2026, 9, 18, 2, 5)
    report = scheduler.tick()
    [settled] = report.ran("settle-daily")
    assert (settled.run_key, settled.counts["batches"]) == (SETTLE_DAY.isoformat(), 1)
    assert payout_total(ctx, PLANTED) == 0
    assert payout_total(ctx, HONEST) == day["net"][HONEST]
    after = assert_balances(ctx, honest_paid(day), since=day["captured"])

    again = scheduler.tick()                         # nothing is due twice
    assert again.ran() == []
    assert_balances(ctx, {}, since=after)

    # the operator releases the day: the next workday's run (Sunday 09-20, in lieu) pays it
    assert risk_scoring.release_merchant_day(ctx, SYSTEM, PLANTED, DAY) == 4
    clock.now = shanghai(2026, 9, 20, 2, 5)
    report = scheduler.tick()
    assert [o.run_key for o in report.ran("risk-score")] == ["2026-09-18", "2026-09-19"]
    assert [o.run_key for o in report.ran("settle-daily")] == ["2026-09-19", "2026-09-20"]
    gross, net = day["gross"][PLANTED], day["net"][PLANTED]
    assert payout_total(ctx, PLANTED) == net
    assert_balances(ctx, {merchant_unsettled(PLANTED): gross, FEE_INCOME: -(gross - net),
                          PAYOUT_CLEARING: -net}, since=after)
    assert risk_alerts(ctx) == [PLANTED]
    assert ledger_balanced(ctx)


def test_after_downtime_the_missed_date_is_scored_before_its_settlement_runs(
        day: dict[str, Any], ctx: ServiceContext, clock: ClockLike) -> None:
    scheduler = build_scheduler(ctx, owner="s1")
    clock.now = shanghai(2026, 9, 17, 20, 0)
    scheduler.tick()
    clock.now = shanghai(2026, 9, 18, 9, 0)         # down over the cut-off and 02:00
    report = scheduler.tick()
    jobs = [(o.job_name, o.run_key) for o in report.ran()
            if o.job_name in ("risk-score", "settle-daily")]
    assert jobs == [("risk-score", DAY.isoformat()), ("settle-daily", SETTLE_DAY.isoformat())]
    assert held(ctx, PLANTED) == [True] * 4
    assert payout_total(ctx, PLANTED) == 0
    assert_balances(ctx, honest_paid(day), since=day["captured"])


def test_scoring_the_date_again_changes_nothing(
        day: dict[str, Any], ctx: ServiceContext, clock: ClockLike) -> None:
    scheduler = build_scheduler(ctx, owner="s1")
    clock.now = shanghai(2026, 9, 17, 23, 31)
    scheduler.tick()
    first = scores(ctx)
    assert scheduler.tick().ran() == []             # the scheduler: once per date

    clock.now = shanghai(2026, 9, 18, 0, 10)        # by hand (autosettle risk score)
    assert [s.merchant_id for s in risk_scoring.score_day(ctx, SYSTEM, DAY)] == [
        PLANTED, HONEST]
    assert scores(ctx) == first                     # the same records, times included
    assert held(ctx, PLANTED) == [True] * 4 and risk_alerts(ctx) == [PLANTED]

    # a released day stays released when scored again: its items are not held again
    assert risk_scoring.release_merchant_day(ctx, SYSTEM, PLANTED, DAY) == 4
    risk_scoring.score_day(ctx, SYSTEM, DAY)
    assert held(ctx, PLANTED) == [False] * 4
    [released] = risk_scoring.flagged(ctx, SYSTEM, DAY, None)[:1]
    assert (released.merchant_id, released.on_review, released.released_by) == (
        PLANTED, False, SYSTEM.actor)
    assert risk_alerts(ctx) == [PLANTED]

    clock.now = shanghai(2026, 9, 18, 2, 5)
    scheduler.tick()
    gross, net = day["gross"][PLANTED], day["net"][PLANTED]
    paid = honest_paid(day)
    assert_balances(ctx, {**paid, merchant_unsettled(PLANTED): gross,
                          FEE_INCOME: paid[FEE_INCOME] - (gross - net),
                          PAYOUT_CLEARING: paid[PAYOUT_CLEARING] - net},
                    since=day["captured"])


def test_a_run_whose_owner_died_after_committing_is_resumed_without_a_second_hold(
        day: dict[str, Any], ctx: ServiceContext, clock: ClockLike) -> None:
    clock.now = shanghai(2026, 9, 17, 23, 31)
    # what a process killed between its commit and the end of its run leaves behind
    assert leases.claim(ctx, "risk-score", DAY.isoformat(), "host:4242:dead", LEASE_S)[0] \
        == "claimed"
    risk_scoring.score_day(ctx, SYSTEM, DAY)
    committed = scores(ctx)
    scheduler = build_scheduler(ctx, owner="s1")

    clock.now = shanghai(2026, 9, 18, 2, 0, 30)      # its lease has expired
    report = scheduler.tick()                        # (the days before: first run)
    [resumed] = [o for o in report.ran("risk-score") if o.run_key == DAY.isoformat()]
    assert (resumed.run_key, resumed.status, resumed.took_over) == (
        DAY.isoformat(), "done", True)
    assert scores(ctx) == committed
    assert held(ctx, PLANTED) == [True] * 4 and risk_alerts(ctx) == [PLANTED]
    [settled] = report.ran("settle-daily")
    assert settled.counts["batches"] == 1
    assert_balances(ctx, honest_paid(day), since=day["captured"])


def test_settlement_waits_while_the_scoring_is_held_by_another_instance(
        day: dict[str, Any], ctx: ServiceContext, clock: ClockLike) -> None:
    scheduler = build_scheduler(ctx, owner="s1")
    clock.now = shanghai(2026, 9, 17, 22, 0)
    scheduler.tick()
    clock.now = shanghai(2026, 9, 18, 2, 4)
    assert leases.claim(ctx, "risk-score", DAY.isoformat(), "other", LEASE_S)[0] == "claimed"
    busy = scheduler.tick()
    assert ("settle-daily", SETTLE_DAY.isoformat()) in busy.waiting
    assert busy.ran("settle-daily") == [] and busy.ran("risk-score") == []
    assert_balances(ctx, {}, since=day["captured"])

    clock.now += timedelta(seconds=LEASE_S + 1)     # "other" died: taken over, then settled
    report = scheduler.tick()
    assert [o.job_name for o in report.ran() if o.job_name != "settle-intraday"][:2] == [
        "risk-score", "settle-daily"]
    assert held(ctx, PLANTED) == [True] * 4
    assert_balances(ctx, honest_paid(day), since=day["captured"])


def test_a_run_that_fails_half_way_holds_nothing_and_is_retried(
        day: dict[str, Any], ctx: ServiceContext, clock: ClockLike,
        monkeypatch: pytest.MonkeyPatch) -> None:
    real: Callable[..., Any] = risk_scoring._rescored

    def fail_on_the_second(before: Any, merchant_id: str, *args: Any) -> Any:
        if merchant_id == HONEST:                   # after the planted one was held
            raise RuntimeError("connection lost")
        return real(before, merchant_id, *args)

    scheduler = build_scheduler(ctx, owner="s1")
    clock.now = shanghai(2026, 9, 17, 22, 0)        # the days before DAY: scored
    scheduler.tick()
    clock.now = shanghai(2026, 9, 17, 23, 31)
    monkeypatch.setattr(risk_scoring, "_rescored", fail_on_the_second)
    [failed] = scheduler.tick().ran("risk-score")
    assert (failed.run_key, failed.status) == (DAY.isoformat(), "failed")
    assert held(ctx, PLANTED) == [False] * 4 and scores(ctx) == [] and risk_alerts(ctx) == []

    clock.now = shanghai(2026, 9, 18, 2, 5)         # still failing: settlement waits
    report = scheduler.tick()
    assert [o.status for o in report.ran("risk-score")] == ["failed"]
    assert ("settle-daily", SETTLE_DAY.isoformat()) in report.waiting
    assert_balances(ctx, {}, since=day["captured"])

    monkeypatch.setattr(risk_scoring, "_rescored", real)
    clock.now += timedelta(seconds=ctx.settings.job_lease_s + 1)  # retried after a lease
    report = scheduler.tick()
    assert [(o.run_key, o.status) for o in report.ran("risk-score")] == [
        (DAY.isoformat(), "done")]
    assert [o.run_key for o in report.ran("settle-daily")] == [SETTLE_DAY.isoformat()]
    assert held(ctx, PLANTED) == [True] * 4 and risk_alerts(ctx) == [PLANTED]
    assert payout_total(ctx, PLANTED) == 0
    assert_balances(ctx, honest_paid(day), since=day["captured"])


def test_the_scoring_moment_follows_the_cut_off() -> None:
    at = time(23, 30)
    assert risk_jobs.scoring_moment(DAY, time(23, 0), at) == shanghai(2026, 9, 17, 23, 30)
    assert risk_jobs.scoring_moment(DAY, time(23, 0), time(0, 30)) == shanghai(
        2026, 9, 18, 0, 30)
    assert risk_jobs.scoring_moment(DAY, time.min, time(0, 30)) == shanghai(2026, 9, 18, 0, 30)
    assert risk_jobs.latest_scorable(shanghai(2026, 9, 17, 23, 29), time(23, 0), at) == \
        DAY - timedelta(days=1)
    assert risk_jobs.latest_scorable(shanghai(2026, 9, 17, 23, 30), time(23, 0), at) == DAY
    assert risk_jobs.latest_scorable(shanghai(2026, 9, 18, 22, 0), time(23, 0), at) == DAY
