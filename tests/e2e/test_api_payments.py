"""REST payments for cash registers: terminal keys, idempotency, search, CSV, scopes."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from jobtools import CHANNEL_RECEIVABLE, assert_balances, merchant_unsettled

from autosettle.domain.merchants import MerchantType
from autosettle.services import apikeys, merchants
from autosettle.services.context import SYSTEM, Role, ServiceContext
from autosettle.simulators.issuer import IssuerSimulator

M1, M2 = "898310054110001", "898310058120001"
T1, T2 = "HL000001", "LW000001"
PAN = "6222020200112345679"


@pytest.fixture
def keys(ctx: ServiceContext, sim: IssuerSimulator) -> dict[str, str]:
    for mid, tid, name in ((M1, T1, "Hualian"), (M2, T2, "Lao Wang")):
        merchants.create_merchant(ctx, SYSTEM, merchants.NewMerchant(
            mid, name, MerchantType.ENTERPRISE, "5411"))
        merchants.add_terminal(ctx, SYSTEM, mid, merchants.NewTerminal(tid))
    sim.add_card(PAN, balance_minor=1_000_000, pin="123456")

    def key(role: Role, mid: str | None = None, tid: str | None = None) -> str:
        return apikeys.create_api_key(ctx, SYSTEM, role, "t", mid, tid).key

    return {"op": key(Role.OPERATOR), "t1": key(Role.TERMINAL, M1, T1),
            "t2": key(Role.TERMINAL, M2, T2), "m1": key(Role.MERCHANT, M1),
            "m2": key(Role.MERCHANT, M2)}


def h(key: str, idem: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}"}
    if idem:
        headers["Idempotency-Key"] = idem
    return headers


SALE = {"amount": "88.88", "card": {"pan": PAN, "expiry": "3012", "pin": "123456"}}


def test_sale_search_void_and_scopes(client: TestClient, keys: dict[str, str],
                                     sim: IssuerSimulator, ctx: ServiceContext) -> None:
    r = client.post("/v1/payments/sales", json=SALE, headers=h(keys["t1"], "s-1"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["approved"] is True
    assert body["response_code"] == "00"
    txn = body["transaction"]
    assert txn["pan_masked"] == "622202*********5679"
    assert PAN not in r.text
    assert txn["amount_minor"] == 8888
    assert txn["merchant_name"] == "Hualian"
    again = client.post("/v1/payments/sales", json=SALE, headers=h(keys["t1"], "s-1"))
    assert again.status_code == 200
    assert again.json()["replayed"] is True
    assert again.json()["transaction"]["txn_id"] == txn["txn_id"]
    clash = client.post("/v1/payments/sales", json={**SALE, "amount": "1.00"},
                        headers=h(keys["t1"], "s-1"))
    assert clash.status_code == 409
    assert sim.card(PAN).balance_minor == 1_000_000 - 8888
    assert_balances(ctx, {CHANNEL_RECEIVABLE: 8888, merchant_unsettled(M1): -8888})
    found = client.get("/v1/transactions", params={"last4": "5679", "amount_minor": 8888},
                       headers=h(keys["m1"]))
    assert [t["txn_id"] for t in found.json()["items"]] == [txn["txn_id"]]
    assert client.get("/v1/transactions", headers=h(keys["m2"])).json()["items"] == []
    assert client.get(f"/v1/transactions/{txn['txn_id']}", headers=h(keys["m2"])
                      ).status_code == 404
    assert client.get(f"/v1/transactions/{txn['txn_id']}", headers=h(keys["op"])
                      ).status_code == 200
    other_void = client.post(f"/v1/payments/{txn['txn_id']}/voids", json={},
                             headers=h(keys["t2"], "v-x"))
    assert other_void.json()["response_code"] == "25"
    assert_balances(ctx, {CHANNEL_RECEIVABLE: 8888, merchant_unsettled(M1): -8888})
    void = client.post(f"/v1/payments/{txn['txn_id']}/voids", json={},
                       headers=h(keys["t1"], "v-1"))
    assert void.json()["approved"] is True, void.text
    assert sim.card(PAN).balance_minor == 1_000_000
    assert_balances(ctx, {})
    csv = client.get("/v1/transactions.csv", headers=h(keys["m1"]))
    assert csv.status_code == 200
    lines = csv.text.strip().splitlines()
    assert len(lines) == 3
    assert PAN not in csv.text


def test_payment_needs_terminal_key_and_idempotency(client: TestClient,
                                                    keys: dict[str, str]) -> None:
    assert client.post("/v1/payments/sales", json=SALE, headers=h(keys["m1"], "k")
                       ).status_code == 403
    r = client.post("/v1/payments/sales", json=SALE, headers=h(keys["t1"]))
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_failed"


def test_bad_card_is_rejected_and_nothing_stored(client: TestClient, keys: dict[str, str],
                                                ctx: ServiceContext) -> None:
    bad = {**SALE, "card": {**SALE["card"], "pan": "6222020200112345670"}}  # type: ignore[dict-item]
    r = client.post("/v1/payments/sales", json=bad, headers=h(keys["t1"], "b-1"))
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_pan"
    assert r.json()["error"]["response_code"] == "14"
    three_decimals = client.post("/v1/payments/sales", json={**SALE, "amount": "1.234"},
                                 headers=h(keys["t1"], "b-2"))
    assert three_decimals.status_code == 422
    assert three_decimals.json()["error"]["code"] == "amount_too_precise"
    with ctx.db.unit_of_work() as uow:
        assert uow.transactions.count() == 0
    assert_balances(ctx, {})


def test_terminal_keys_do_not_read_bank_accounts_or_balances(client: TestClient,
                                                            keys: dict[str, str]) -> None:
    for path in (f"/v1/merchants/{M1}/settlement-accounts", f"/v1/merchants/{M1}/balances"):
        assert client.get(path, headers=h(keys["t1"])).status_code == 404
        assert client.get(path, headers=h(keys["m1"])).status_code == 200
