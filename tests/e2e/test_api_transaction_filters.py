"""Transaction search filters are the state machine's enums: a known type or status filters,
an unknown one is a typed 422 (it used to search for the string and answer an empty page)."""

from __future__ import annotations

import pytest
from apitools import assert_error, bearer
from fastapi.testclient import TestClient

from autosettle.domain.merchants import MerchantType
from autosettle.services import apikeys, merchants
from autosettle.services.context import SYSTEM, Role, ServiceContext
from autosettle.simulators.issuer import IssuerSimulator

MID, TID = "898310054110001", "HL000001"
PAN = "6222020200112345679"
SALE = {"amount": "12.34", "card": {"pan": PAN, "expiry": "3012", "pin": "123456"}}


@pytest.fixture
def keys(ctx: ServiceContext, sim: IssuerSimulator) -> dict[str, dict[str, str]]:
    merchants.create_merchant(ctx, SYSTEM, merchants.NewMerchant(
        MID, "Hualian", MerchantType.ENTERPRISE, "5411"))
    merchants.add_terminal(ctx, SYSTEM, MID, merchants.NewTerminal(TID))
    sim.add_card(PAN, balance_minor=1_000_000, pin="123456")
    return {"terminal": bearer(apikeys.create_api_key(ctx, SYSTEM, Role.TERMINAL, "t", MID,
                                                      TID).key),
            "merchant": bearer(apikeys.create_api_key(ctx, SYSTEM, Role.MERCHANT, "m",
                                                      MID).key)}


def test_type_and_status_filters(client: TestClient, keys: dict[str, dict[str, str]]) -> None:
    paid = client.post("/v1/payments/sales", json=SALE,
                       headers={**keys["terminal"], "Idempotency-Key": "f-1"})
    assert paid.status_code == 201, paid.text
    txn_id = paid.json()["transaction"]["txn_id"]
    found = client.get("/v1/transactions?type=sale&status=approved",
                       headers=keys["merchant"]).json()["items"]
    assert [t["txn_id"] for t in found] == [txn_id]
    assert found[0]["txn_type"] == "sale" and found[0]["status"] == "approved"
    assert client.get("/v1/transactions?status=declined",
                      headers=keys["merchant"]).json()["items"] == []
    assert_error(client.get("/v1/transactions?status=approvd", headers=keys["merchant"]),
                 422, "validation_failed")
    assert_error(client.get("/v1/transactions.csv?type=reversal", headers=keys["merchant"]),
                 422, "validation_failed")


def test_only_a_terminal_key_pays(client: TestClient, keys: dict[str, dict[str, str]]) -> None:
    refused = client.post("/v1/payments/sales", json=SALE,
                          headers={**keys["merchant"], "Idempotency-Key": "f-2"})
    assert_error(refused, 403, "forbidden")
