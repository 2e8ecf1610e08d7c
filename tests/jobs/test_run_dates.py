"""The dates a settlement run or a payout export may carry (issue 9, defect 2), on both
databases: never after the current business date (Asia/Shanghai, 23:00 cut-off, from the
injected clock), never before the holiday data; refused with ``date_out_of_range`` by every
entry point (the service, ``POST /v1/settlement-runs``, the scheduler's functions) before
anything is written. The scheduler's intraday and catch-up runs are never refused, and after
the cut-off the next business date may be settled. The calendar answers a typed error near
the last representable date instead of crashing."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jobtools import (
    ClockLike,
    add_merchant,
    add_sales,
    advance_clock_to,
    at_settlement_time,
    batches,
    fee_of,
    ledger_balanced,
    mid,
    shanghai,
)
from sqlalchemy import func, select

from autosettle.domain.errors import ErrorCode, ValidationError
from autosettle.jobs.settlement import build_scheduler
from autosettle.services import apikeys, leases, maintenance, payouts, settlement
from autosettle.services.context import SYSTEM, Role, ServiceContext
from autosettle.store.tables import metadata
from autosettle.store.tables import payouts as payouts_table

SHOP, NOODLES = mid(1), mid(2)          # T+1 and D+0
FRIDAY = date(2026, 9, 18)              # the fake clock starts at 10:00 on it (Shanghai)
SUNDAY = date(2026, 9, 20)              # Friday's T+1: an in-lieu workday
FAR = date(9999, 12, 31)


@pytest.fixture
def shops(ctx: ServiceContext) -> ServiceContext:
    add_merchant(ctx, SHOP, "T1")
    add_merchant(ctx, NOODLES, "D0")
    return ctx


def row_counts(ctx: ServiceContext) -> dict[str, int]:
    with ctx.db.unit_of_work() as uow:
        return {t.name: int(uow.connection.execute(
            select(func.count()).select_from(t)).scalar() or 0) for t in metadata.sorted_tables}


def balances(ctx: ServiceContext) -> dict[str, int]:
    codes = [f"{kind}:{m}" for m in (SHOP, NOODLES)
             for kind in ("merchant_unsettled", "merchant_payable", "merchant_receivable")]
    codes += ["fee_income", "payout_clearing", "channel_receivable", "bank"]
    with ctx.db.unit_of_work() as uow:
        return {code: uow.ledger.balance(code, "CNY") for code in codes}


def refused(call: Any) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        call()
    assert caught.value.code is ErrorCode.DATE_OUT_OF_RANGE, caught.value
    return caught.value


def operator(ctx: ServiceContext) -> dict[str, str]:
    key = apikeys.create_api_key(ctx, SYSTEM, Role.OPERATOR, "ops").key
    return {"Authorization": f"Bearer {key}"}


def test_a_run_dated_in_the_future_is_refused_everywhere_and_changes_nothing(
        shops: ServiceContext, client: TestClient) -> None:
    ctx = shops
    headers = operator(ctx)
    net_shop = add_sales(ctx, SHOP, FRIDAY, [100_000, 2_345])   # due Sunday
    net_noodles = add_sales(ctx, NOODLES, FRIDAY, [50_000])     # due today
    before, money = row_counts(ctx), balances(ctx)
    assert money[f"merchant_unsettled:{SHOP}"] == -102_345
    assert money[f"merchant_unsettled:{NOODLES}"] == -50_000

    tomorrow = FRIDAY + timedelta(days=1)
    for day in (FAR, SUNDAY, tomorrow):
        error = refused(lambda d=day: settlement.settle(ctx, d, settlement.ALL_CYCLES))
        assert "after the current business date 2026-09-18" in error.message
        refused(lambda d=day: leases.settle_now(ctx, SYSTEM, d, ("T1", "D1")))
    refused(lambda: settlement.settle(ctx, date(2003, 12, 31), settlement.ALL_CYCLES))
    for body in ({"date": "9999-12-30"}, {"date": "2026-09-20", "cycles": ["T1"]},
                 {"date": "1999-01-01"}):
        answer = client.post("/v1/settlement-runs", json=body, headers=headers)
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["code"] == "date_out_of_range", answer.text
    assert row_counts(ctx) == before              # no batch, cursor, job run or audit row
    assert balances(ctx) == money
    assert leases.recent_runs(ctx) == []

    # Today is fine: the D+0 merchant is paid, the T+1 merchant's items are still waiting
    # for their date (a far-future run would have taken them and moved its cursor to 9999).
    today = client.post("/v1/settlement-runs", json={"date": "2026-09-18",
                                                     "cycles": ["D0", "T1", "D1"]},
                        headers=headers)
    assert today.status_code == 201, today.text
    assert today.json()["counts"]["batches"] == 1
    assert [b["merchant_id"] for b in batches(ctx)] == [NOODLES]
    paid = balances(ctx)
    assert paid[f"merchant_unsettled:{SHOP}"] == -102_345
    assert paid[f"merchant_unsettled:{NOODLES}"] == 0
    assert paid[f"merchant_payable:{NOODLES}"] == -(net_noodles - 200)  # same-day surcharge
    assert paid["fee_income"] == -(fee_of(50_000) + 200)

    # On Sunday the T+1 batch is dated Sunday and Sunday's payout file carries it.
    advance_clock_to(ctx, SUNDAY)
    assert settlement.settle(ctx, SUNDAY).batches == 1
    assert [b["settlement_date"] for b in batches(ctx, SHOP)] == [SUNDAY]
    exported = payouts.export_payouts(ctx, SUNDAY)
    assert (exported.count, exported.total_minor) == (2, net_shop + net_noodles - 200)
    done = balances(ctx)
    assert done[f"merchant_unsettled:{SHOP}"] == 0
    assert done[f"merchant_payable:{SHOP}"] == done[f"merchant_payable:{NOODLES}"] == 0
    assert done["payout_clearing"] == -(net_shop + net_noodles - 200)
    assert ledger_balanced(ctx)


def test_a_payout_export_dated_in_the_future_is_refused(shops: ServiceContext) -> None:
    ctx = shops
    net = add_sales(ctx, NOODLES, FRIDAY, [50_000]) - 200
    assert settlement.settle(ctx, FRIDAY, settlement.SAME_DAY).batches == 1
    before, money = row_counts(ctx), balances(ctx)
    assert money[f"merchant_payable:{NOODLES}"] == -net
    for day in (FAR, FRIDAY + timedelta(days=1), date(1970, 1, 1)):
        error = refused(lambda d=day: payouts.export_payouts(ctx, d))
        assert "a payout export" in error.message
    assert not (ctx.settings.data_dir / "payouts").exists()   # no file written
    assert row_counts(ctx) == before and balances(ctx) == money
    with ctx.db.unit_of_work() as uow:
        assert set(uow.connection.execute(select(payouts_table.c.status)).scalars()) == {
            "pending"}

    file = payouts.export_payouts(ctx, FRIDAY)
    assert (file.count, file.total_minor) == (1, net)
    sent = balances(ctx)
    assert (sent[f"merchant_payable:{NOODLES}"], sent["payout_clearing"]) == (0, -net)


def test_after_the_cutoff_the_next_business_date_may_be_settled_and_exported(
        shops: ServiceContext, clock: ClockLike) -> None:
    ctx = shops
    clock.now = shanghai(2026, 9, 18, 23, 30)      # after the cut-off: business date 09-19
    net = add_sales(ctx, NOODLES, date(2026, 9, 19), [30_000]) - 200
    assert settlement.settle(ctx, date(2026, 9, 19), settlement.SAME_DAY).batches == 1
    refused(lambda: settlement.settle(ctx, date(2026, 9, 20), settlement.SAME_DAY))
    refused(lambda: payouts.export_payouts(ctx, date(2026, 9, 20)))
    assert payouts.export_payouts(ctx, date(2026, 9, 19)).total_minor == net
    clock.now = shanghai(2026, 9, 18, 22, 59)      # before it: 09-19 is still to come
    refused(lambda: settlement.settle(ctx, date(2026, 9, 19), settlement.SAME_DAY))
    money = balances(ctx)
    assert (money[f"merchant_unsettled:{NOODLES}"], money["payout_clearing"]) == (0, -net)


def test_the_scheduler_runs_intraday_after_the_cutoff_and_catches_up(
        shops: ServiceContext, clock: ClockLike) -> None:
    ctx = shops
    scheduler = build_scheduler(ctx, owner="s1")
    net_d0 = add_sales(ctx, NOODLES, FRIDAY, [40_000]) - 200
    clock.now = shanghai(2026, 9, 18, 23, 40)      # the 23:30 slot of Friday, after cut-off
    report = scheduler.tick()
    [intraday] = report.ran("settle-intraday")
    assert (intraday.run_key, intraday.status, intraday.error) == (
        "2026-09-18:T0+D0@233000", "done", None)
    assert [o.status for o in report.ran("payouts-intraday")] == ["done"]
    assert [o.status for o in report.ran("settle-daily")] == ["done"]   # 09-18 at 02:00

    net_t1 = add_sales(ctx, SHOP, FRIDAY, [100_000])  # a late item, due Sunday
    clock.now = at_settlement_time(ctx, date(2026, 9, 22), minutes_after=30)  # down 4 days
    report = scheduler.tick()
    caught_up = report.ran("settle-daily")
    assert [(o.run_key, o.status, o.error) for o in caught_up] == [
        (f"2026-09-{d}", "done", None) for d in (19, 20, 21, 22)]
    assert [o.status for o in report.ran("payouts-daily")] == ["done"] * 4
    assert [b["settlement_date"] for b in batches(ctx, SHOP)] == [SUNDAY]
    money = balances(ctx)
    assert money[f"merchant_unsettled:{SHOP}"] == money[f"merchant_unsettled:{NOODLES}"] == 0
    assert money["payout_clearing"] == -(net_d0 + net_t1)
    assert ledger_balanced(ctx)


def test_calendar_answers_near_the_last_date_are_typed_errors(
        shops: ServiceContext, client: TestClient) -> None:
    headers = operator(shops)
    far = client.get("/v1/calendar/settlement-date?date=9999-12-31&cycle=T1",
                     headers=headers)
    assert far.status_code == 422, far.text
    assert far.json()["error"]["code"] == "date_out_of_range"
    same_day = client.get("/v1/calendar/settlement-date?date=9999-12-31&cycle=D0",
                          headers=headers)
    assert same_day.status_code == 200 and same_day.json()["settlement_date"] == "9999-12-31"
    # the default period of the cycle costs: 30 days back, but not before year 1
    early = client.get(f"/v1/merchants/{SHOP}/cycle-costs?date_to=0001-01-05",
                       headers=headers)
    assert early.status_code == 200, early.text
    assert (early.json()["date_from"], early.json()["date_to"]) == ("0001-01-01",
                                                                    "0001-01-05")


def test_a_maintenance_window_may_not_start_years_ahead(
        shops: ServiceContext, client: TestClient) -> None:
    headers = operator(shops)
    for starts, ends in (("9999-12-31T20:00:00+08:00", "9999-12-31T22:00:00+08:00"),
                         ("2028-01-01T01:00:00+08:00", "2028-01-01T02:00:00+08:00")):
        answer = client.post("/v1/maintenance-windows", headers=headers, json={
            "starts_at": starts, "ends_at": ends, "note": "far away"})
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["code"] == "date_out_of_range"
    assert maintenance.windows(shops) == []
    assert client.get("/v1/notices", headers=headers).status_code == 200
    soon = client.post("/v1/maintenance-windows", headers=headers, json={
        "starts_at": "2027-09-01T01:00:00+08:00", "ends_at": "2027-09-01T02:00:00+08:00",
        "note": "within a year"})
    assert soon.status_code == 201, soon.text
