"""The settlement API (both databases): merchants see their own settlements, fees, payout
status, alerts and notices and get 404 on anyone else's; operators run settlements, manage
payouts, fee schedules, maintenance windows and the calendar."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jobtools import (
    BANK,
    CHANNEL_RECEIVABLE,
    FEE_INCOME,
    PAYOUT_CLEARING,
    ClockLike,
    add_merchant,
    add_sales,
    advance_clock_to,
    assert_balances,
    fee_of,
    merchant_payable,
    merchant_unsettled,
    mid,
)

from autosettle.services import apikeys, payouts
from autosettle.services.context import SYSTEM, Role, ServiceContext

A, B = mid(1), mid(2)
FRIDAY = date(2026, 9, 18)


@dataclass(frozen=True)
class Keys:
    operator: dict[str, str]
    a: dict[str, str]
    b: dict[str, str]


def bearer(ctx: ServiceContext, role: Role, merchant_id: str | None = None) -> dict[str, str]:
    key = apikeys.create_api_key(ctx, SYSTEM, role, f"{role} key", merchant_id).key
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keys(ctx: ServiceContext) -> Keys:
    add_merchant(ctx, A, "T1")
    add_merchant(ctx, B, "D0")
    return Keys(bearer(ctx, Role.OPERATOR), bearer(ctx, Role.MERCHANT, A),
                bearer(ctx, Role.MERCHANT, B))


def error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert body["error"]["message"]


def test_settlements_payouts_and_alerts_are_scoped_to_their_merchant(
        client: TestClient, ctx: ServiceContext, keys: Keys) -> None:
    amounts = [100_000, 2_345]
    net = add_sales(ctx, A, FRIDAY, amounts)
    gross, fees = sum(amounts), sum(fee_of(a) for a in amounts)
    assert_balances(ctx, {CHANNEL_RECEIVABLE: gross, merchant_unsettled(A): -gross})
    advance_clock_to(ctx, date(2026, 9, 20))  # T+1 of Friday: Sunday, an in-lieu workday
    error(client.post("/v1/settlement-runs", json={"date": "2026-09-20"}, headers=keys.a),
          403, "forbidden")
    error(client.post("/v1/settlement-runs", json={"date": "2026-09-20", "cycles": ["X9"]},
                      headers=keys.operator), 422, "validation_failed")
    run = client.post("/v1/settlement-runs", json={"date": "2026-09-20", "cycles": ["T1"]},
                      headers={**keys.operator, "Idempotency-Key": "run-0920"})
    assert run.status_code == 201, run.text
    assert (run.json()["job_name"], run.json()["status"]) == ("settle-manual", "done")
    assert run.json()["counts"]["batches"] == 1
    settled = assert_balances(ctx, {CHANNEL_RECEIVABLE: gross, FEE_INCOME: -fees,
                                    merchant_payable(A): -net})
    replay = client.post("/v1/settlement-runs", json={"date": "2026-09-20", "cycles": ["T1"]},
                         headers={**keys.operator, "Idempotency-Key": "run-0920"})
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json() == run.json()

    mine = client.get(f"/v1/merchants/{A}/settlements", headers=keys.a)
    assert mine.status_code == 200, mine.text
    [batch] = mine.json()["settlements"]
    assert (batch["cycle"], batch["settlement_date"], batch["expected_arrival"]) == (
        "T1", "2026-09-20", "2026-09-20")
    assert batch["gross_minor"] == sum(amounts)
    assert batch["fee_minor"] == sum(fee_of(a) for a in amounts)
    assert (batch["payout_minor"], batch["payout_status"]) == (net, "pending")
    assert sorted(i["amount_minor"] for i in batch["items"]) == sorted(amounts)
    assert batch["items_truncated"] is False

    error(client.get(f"/v1/merchants/{A}/settlements", headers=keys.b), 404, "not_found")
    error(client.get(f"/v1/settlements/{batch['batch_id']}", headers=keys.b), 404,
          "not_found")
    one = client.get(f"/v1/settlements/{batch['batch_id']}", headers=keys.a)
    assert one.status_code == 200 and len(one.json()["items"]) == 2
    assert client.get(f"/v1/merchants/{B}/settlements",
                      headers=keys.b).json()["settlements"] == []

    error(client.get("/v1/payouts", headers=keys.a), 403, "forbidden")
    [payout] = client.get("/v1/payouts", headers=keys.operator).json()["payouts"]
    assert (payout["merchant_id"], payout["amount_minor"]) == (A, net)
    payouts.export_payouts(ctx, date(2026, 9, 20))
    sent = assert_balances(ctx, {merchant_payable(A): net, PAYOUT_CLEARING: -net},
                           since=settled)
    pid = payout["payout_id"]
    error(client.post(f"/v1/payouts/{pid}/fail", json={"reason": "closed"}, headers=keys.a),
          403, "forbidden")
    failed = client.post(f"/v1/payouts/{pid}/fail", json={"reason": "account closed"},
                         headers=keys.operator)
    assert failed.status_code == 200 and failed.json()["status"] == "failed"
    returned = assert_balances(ctx, {merchant_payable(A): -net, PAYOUT_CLEARING: net},
                               since=sent)  # the money is owed to the merchant again
    error(client.post(f"/v1/payouts/{pid}/confirm", headers=keys.operator), 409,
          "invalid_state")

    own = client.get("/v1/alerts", headers=keys.a).json()["alerts"]
    assert [a["kind"] for a in own] == ["payout_failed"]
    assert client.get("/v1/alerts", headers=keys.b).json()["alerts"] == []
    error(client.get(f"/v1/alerts?merchant_id={A}", headers=keys.b), 404, "not_found")
    assert any(a["merchant_id"] == A for a in
               client.get("/v1/alerts", headers=keys.operator).json()["alerts"])
    alert_id = own[0]["alert_id"]
    error(client.post(f"/v1/alerts/{alert_id}/resolve", headers=keys.a), 403, "forbidden")
    resolved = client.post(f"/v1/alerts/{alert_id}/resolve", headers=keys.operator)
    assert resolved.status_code == 200 and resolved.json()["resolved_at"]

    retried = client.post(f"/v1/payouts/{pid}/retry", headers=keys.operator)
    assert retried.status_code == 200 and retried.json()["status"] == "pending"
    payouts.export_payouts(ctx, date(2026, 9, 20))
    confirmed = client.post(f"/v1/payouts/{pid}/confirm", headers=keys.operator)
    assert confirmed.json()["status"] == "confirmed"
    assert_balances(ctx, {merchant_payable(A): net, BANK: -net}, since=returned)
    again = client.get(f"/v1/settlements/{batch['batch_id']}", headers=keys.a).json()
    assert again["payout_status"] == "confirmed"
    error(client.get("/v1/payouts/x/confirm", headers=keys.operator), 405,
          "validation_failed")

    runs = client.get("/v1/settlement-runs?job=settle-manual", headers=keys.operator)
    assert [r["job_name"] for r in runs.json()["runs"]] == ["settle-manual"]
    error(client.get("/v1/settlement-runs", headers=keys.a), 403, "forbidden")


def test_fee_schedules_and_cycle_costs(client: TestClient, ctx: ServiceContext,
                                       keys: Keys) -> None:
    add_sales(ctx, A, FRIDAY, [100_000, 50_000])
    assert_balances(ctx, {CHANNEL_RECEIVABLE: 150_000, merchant_unsettled(A): -150_000})
    shown = client.get(f"/v1/merchants/{A}/fee-schedules", headers=keys.a)
    assert shown.status_code == 200, shown.text
    assert shown.json()["current"]["schedule_id"] == "default-discounted"
    assert shown.json()["versions"] == []
    error(client.get(f"/v1/merchants/{A}/fee-schedules", headers=keys.b), 404, "not_found")

    spec = {"effective_from": "2026-10-01", "rates": {"debit": {"rate": "0.0045",
                                                                "cap_minor": 1800}},
            "fallback": {"rate": "0.0055"},
            "same_day_surcharge": {"rate": "0", "fixed_minor": 300}}
    error(client.post(f"/v1/merchants/{A}/fee-schedules", json=spec, headers=keys.a), 403,
          "forbidden")
    error(client.post(f"/v1/merchants/{A}/fee-schedules",
                      json={**spec, "fallback": {"rate": "lots"}}, headers=keys.operator),
          422, "validation_failed")
    headers = {**keys.operator, "Idempotency-Key": "fees-a-v1"}
    created = client.post(f"/v1/merchants/{A}/fee-schedules", json=spec, headers=headers)
    assert created.status_code == 201, created.text
    assert (created.json()["version"], created.json()["rates"]["debit"]["rate"]) == (
        1, "0.0045")
    replay = client.post(f"/v1/merchants/{A}/fee-schedules", json=spec, headers=headers)
    assert replay.status_code == 201 and replay.headers.get("Idempotent-Replayed") == "true"
    later = client.get(f"/v1/merchants/{A}/fee-schedules?on=2026-10-02", headers=keys.a)
    assert later.json()["current"]["version"] == 1
    assert len(later.json()["versions"]) == 1

    costs = client.get(f"/v1/merchants/{A}/cycle-costs?date_from=2026-09-18"
                       "&date_to=2026-09-18", headers=keys.a)
    assert costs.status_code == 200, costs.text
    body = costs.json()
    by_cycle = {c["cycle"]: c for c in body["costs"]}
    assert set(by_cycle) == {"T0", "T1", "D0", "D1"}
    assert body["current_cycle"] == "T1" and by_cycle["T1"]["current"]
    assert by_cycle["D0"]["difference_minor"] > 0  # same-day payouts cost a surcharge
    assert body["cheapest_cycle"] == "T1"
    error(client.get(f"/v1/merchants/{A}/cycle-costs?date_from=2026-09-18"
                     "&date_to=2026-09-18", headers=keys.b), 404, "not_found")
    error(client.get(f"/v1/merchants/{A}/cycle-costs?date_from=2026-09-18&date_to=2025-01-01",
                     headers=keys.a), 422, "validation_failed")
    recent = client.get(f"/v1/merchants/{A}/cycle-costs", headers=keys.a).json()
    assert (recent["date_from"], recent["date_to"]) == ("2026-08-20", "2026-09-18")


def test_maintenance_notices_calendar_and_runs_inside_a_window(
        client: TestClient, ctx: ServiceContext, clock: ClockLike, keys: Keys) -> None:
    net = add_sales(ctx, A, FRIDAY, [60_000])  # T+1: due Sunday 2026-09-20
    captured = {CHANNEL_RECEIVABLE: 60_000, merchant_unsettled(A): -60_000}
    assert_balances(ctx, captured)
    before = client.get("/v1/calendar/settlement-date?date=2026-09-18&cycle=T1",
                        headers=keys.a)
    assert before.json()["settlement_date"] == "2026-09-20"
    closure = {"day": "2026-09-20", "is_workday": False, "note": "bank closure"}
    error(client.post("/v1/calendar/overrides", json=closure, headers=keys.a), 403,
          "forbidden")
    made = client.post("/v1/calendar/overrides", json=closure, headers=keys.operator)
    assert made.status_code == 201, made.text
    listed = client.get("/v1/calendar/overrides", headers=keys.operator).json()
    assert listed["overrides"] == [closure]
    error(client.get("/v1/calendar/overrides", headers=keys.b), 403, "forbidden")
    after = client.get("/v1/calendar/settlement-date?date=2026-09-18&cycle=T1",
                       headers=keys.a)
    assert after.json()["settlement_date"] == "2026-09-21"

    window = {"starts_at": "2026-09-20T01:00:00+08:00", "ends_at": "2026-09-21T00:30:00+08:00",
              "note": "core banking upgrade"}
    error(client.post("/v1/maintenance-windows", json=window, headers=keys.a), 403,
          "forbidden")
    error(client.post("/v1/maintenance-windows", json={**window, "ends_at": "2026-09-20"
                                                       "T00:30:00"}, headers=keys.operator),
          422, "validation_failed")
    posted = client.post("/v1/maintenance-windows", json=window, headers=keys.operator)
    assert posted.status_code == 201, posted.text
    [notice] = client.get("/v1/notices", headers=keys.a).json()["notices"]
    assert notice["window"]["note"] == "core banking upgrade"
    assert "settle-daily" in [r["job"] for r in notice["deferred_runs"]]
    changes = {(c["cycle"], c["expected_arrival"]): c for c in notice["arrivals"]}
    assert changes[("T1", "2026-09-20")]["new_expected_arrival"] == "2026-09-21"
    assert changes[("T1", "2026-09-20")]["amount_minor"] == net
    [theirs] = client.get("/v1/notices", headers=keys.b).json()["notices"]
    assert {c["cycle"] for c in theirs["arrivals"]} == {"D0"}  # only B's own cycle
    error(client.get(f"/v1/notices?merchant_id={A}", headers=keys.b), 404, "not_found")

    clock.now = clock.now.replace(year=2026, month=9, day=20) + timedelta(hours=-1)
    # 2026-09-20 01:00 UTC = 09:00 Shanghai: inside the window
    error(client.post("/v1/settlement-runs", json={"date": "2026-09-20"},
                      headers=keys.operator), 409, "invalid_state")
    assert_balances(ctx, captured)   # refused: nothing settled
