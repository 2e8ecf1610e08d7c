"""The risk API: the rule editor and review queue for operators, the merchant's view and
pre-registrations, on both databases; other merchants and terminals see nothing (404)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from apitools import MID_A, MID_B, TID_A1, World, assert_error
from fastapi.testclient import TestClient

from autosettle.services.context import ServiceContext
from autosettle.simulators.issuer import IssuerSimulator

PAN, PIN = "6222020200112345679", "123456"
CARD = {"pan": PAN, "expiry": "3012", "pin": PIN}


def sell(client: TestClient, world: World, fen: int) -> dict[str, Any]:
    response = client.post("/v1/payments/sales",
                           headers={**world.terminal_a1, "Idempotency-Key": uuid.uuid4().hex},
                           json={"amount_minor": fen, "card": CARD})
    assert response.status_code == 201, response.text
    return dict(response.json())


def put_rule(client: TestClient, world: World, rule_id: str, body: dict[str, Any]) -> Any:
    return client.put(f"/v1/risk/rules/{rule_id}", headers=world.operator, json=body)


def test_rule_editor_is_for_operators_and_versions_every_edit(
        client: TestClient, world: World) -> None:
    body = {"kind": "single_max", "scope": "merchant", "scope_value": MID_A,
            "params": {"amount_minor": 10_000}}
    assert_error(put_rule(client, world, "cap", {**body, "params": {}}), 422,
                 "validation_failed")
    first = put_rule(client, world, "cap", body)
    assert first.status_code == 200 and first.json()["version"] == 1
    second = put_rule(client, world, "cap", {**body, "params": {"amount_minor": 20_000},
                                             "expected_version": 1})
    assert second.json()["version"] == 2
    assert_error(put_rule(client, world, "cap", {**body, "expected_version": 1}), 409,
                 "invalid_state")
    versions = client.get("/v1/risk/rules/cap/versions", headers=world.operator).json()
    assert [v["params"]["amount_minor"] for v in versions] == [10_000, 20_000]
    listed = client.get("/v1/risk/rules", headers=world.operator).json()
    assert {"cap", "default:micro:single_max"} <= {r["rule_id"] for r in listed}
    for who in (world.merchant_a, world.terminal_a1):
        assert_error(client.put("/v1/risk/rules/cap", headers=who, json=body), 403,
                     "forbidden")
    assert client.delete("/v1/risk/rules/cap", headers=world.operator).json()["active"] \
        is False


def test_merchant_sees_limits_usage_and_why_a_sale_was_declined(
        client: TestClient, world: World, sim: IssuerSimulator) -> None:
    sim.add_card(PAN, balance_minor=10**9, pin=PIN)
    put_rule(client, world, "day", {"kind": "cumulative", "scope": "merchant",
                                    "scope_value": MID_A,
                                    "params": {"subject": "merchant", "period": "day",
                                               "amount_minor": 10_000}})
    assert sell(client, world, 8_000)["response_code"] == "00"
    declined = sell(client, world, 8_000)
    assert declined["response_code"] == "61"
    view = client.get(f"/v1/merchants/{MID_A}/risk", headers=world.merchant_a).json()
    day = next(x for x in view["limits"] if x["rule"] == "day@1")
    assert (day["limit_amount_minor"], day["used_amount_minor"]) == (10_000, 8_000)
    [why] = view["decisions"]
    assert why["response_code"] == "61" and why["fired"] == ["day@1"]
    assert "限额" in why["reason_zh"] and "limit" in why["reason_en"]
    assert_error(client.get(f"/v1/merchants/{MID_A}/risk", headers=world.merchant_b), 404,
                 "not_found")
    assert_error(client.get(f"/v1/merchants/{MID_A}/risk", headers=world.terminal_a1), 404,
                 "not_found")
    assert client.get(f"/v1/merchants/{MID_B}/risk", headers=world.merchant_b).json()[
        "decisions"] == []


def test_merchant_preregisters_a_large_sale(client: TestClient, world: World,
                                            sim: IssuerSimulator,
                                            ctx: ServiceContext) -> None:
    sim.add_card(PAN, balance_minor=10**9, pin=PIN)
    put_rule(client, world, "cap", {"kind": "single_max", "scope": "merchant",
                                    "scope_value": MID_A, "params": {"amount_minor": 10_000}})
    now = ctx.now()
    window = {"valid_from": (now - timedelta(minutes=5)).isoformat(),
              "valid_to": (now + timedelta(hours=1)).isoformat()}
    url = f"/v1/merchants/{MID_A}/risk/preregistrations"
    assert_error(client.post(url, headers=world.merchant_b,
                             json={"amount_minor": 50_000, **window}), 404, "not_found")
    made = client.post(url, headers=world.merchant_a, json={"amount_minor": 50_000,
                                                            "card_last4": PAN[-4:], **window})
    assert made.status_code == 201 and made.json()["state"] == "open"
    other = client.post(url, headers=world.merchant_a, json={"amount_minor": 60_000,
                                                             **window}).json()
    cancel = f"/v1/risk/preregistrations/{other['prereg_id']}"
    assert_error(client.delete(cancel, headers=world.merchant_b), 404, "not_found")
    assert client.delete(cancel, headers=world.merchant_a).json()["state"] == "cancelled"
    assert sell(client, world, 40_000)["response_code"] == "00"
    assert sell(client, world, 40_000)["response_code"] == "61"
    listed = client.get(url, headers=world.merchant_a).json()
    assert sorted(p["state"] for p in listed) == ["cancelled", "used"]


def test_review_queue_hold_release_and_refund(client: TestClient, world: World,
                                              sim: IssuerSimulator, clock: Any) -> None:
    sim.add_card(PAN, balance_minor=10**9, pin=PIN)
    put_rule(client, world, "watch", {"kind": "single_max", "scope": "merchant",
                                      "scope_value": MID_A, "action": "review",
                                      "params": {"amount_minor": 10_000}})
    first = sell(client, world, 20_000)
    clock.advance(seconds=1)
    second = sell(client, world, 30_000)
    assert first["response_code"] == second["response_code"] == "00"
    queue = client.get("/v1/risk/review-queue", headers=world.operator).json()
    assert [(q["amount_minor"], q["held"]) for q in queue] == [(30_000, True), (20_000, True)]
    assert_error(client.get("/v1/risk/review-queue", headers=world.merchant_a), 403,
                 "forbidden")
    base = "/v1/risk/review"
    released = client.post(f"{base}/{queue[1]['txn_id']}/release", headers=world.operator)
    assert released.json()["items_changed"] == 1
    refund = client.post(f"{base}/{queue[0]['txn_id']}/refund", headers=world.operator)
    assert refund.json()["approved"] is True
    assert sim.card(PAN).balance_minor == 10**9 - 20_000
    after = client.get("/v1/risk/review-queue", headers=world.operator).json()
    assert [q["held"] for q in after] == [True, False]


def test_scoring_run_and_flagged_list(client: TestClient, world: World,
                                      ctx: ServiceContext) -> None:
    day = ctx.now().date().isoformat()
    ran = client.post("/v1/risk/scores/run", headers=world.operator,
                      json={"business_date": day})
    assert ran.status_code == 200 and ran.json() == []
    assert client.get("/v1/risk/flagged", headers=world.operator).json() == []
    assert_error(client.post("/v1/risk/flagged/release", headers=world.operator,
                             json={"merchant_id": MID_A, "business_date": day}), 404,
                 "not_found")
    assert client.get(f"/v1/merchants/{MID_A}/risk/scores",
                      headers=world.merchant_a).json() == []
    assert TID_A1
