"""REST follow-ups to odd records, and the one answer to a fault (issue 9, defect 3).

A follow-up to a record a refusal left behind is answered like any refused follow-up
(``25``/``12``, HTTP 201), a reversal of it ``00`` (HTTP 200); an unexpected exception
anywhere answers ``500 internal_error`` with a fixed message, never the exception's text,
and logs its traceback.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from apitools import assert_error
from fastapi.testclient import TestClient

from autosettle.api.errors import HTTP_STATUS
from autosettle.domain.errors import AutosettleError, ErrorCode, InvariantViolation
from autosettle.domain.merchants import MerchantType
from autosettle.services import apikeys, merchants, payments
from autosettle.services.context import SYSTEM, Role, ServiceContext
from autosettle.simulators.issuer import IssuerSimulator

MID, TID = "898310054110001", "HL000001"
PAN = "6222020200112345679"
OPENING = 1_000_000
SALE: dict[str, Any] = {"amount_minor": 1_000,
                        "card": {"pan": PAN, "expiry": "3012", "pin": "123456"}}
FOLLOW_UPS = {"completions": {"amount_minor": 100}, "refunds": {"amount_minor": 100},
              "voids": {}, "cancellations": {}}
SECRET = "preauth_void X: original_id None is wrong"
FIXED = {ErrorCode.INTERNAL: "internal error; the details are in the server log",
         ErrorCode.UNAVAILABLE: "the service is unavailable; retry"}


@pytest.fixture
def key(ctx: ServiceContext, sim: IssuerSimulator) -> str:
    merchants.create_merchant(ctx, SYSTEM, merchants.NewMerchant(
        MID, "Hualian", MerchantType.ENTERPRISE, "5411"))
    merchants.add_terminal(ctx, SYSTEM, MID, merchants.NewTerminal(TID))
    sim.add_card(PAN, balance_minor=OPENING, pin="123456")
    return apikeys.create_api_key(ctx, SYSTEM, Role.TERMINAL, "till", MID, TID).key


class Till:
    """A REST cash register: every request with a fresh Idempotency-Key."""

    def __init__(self, client: TestClient, key: str) -> None:
        self.client, self.key, self.count = client, key, 0

    def post(self, path: str, body: dict[str, Any]) -> Any:
        self.count += 1
        return self.client.post(path, json=body, headers={
            "Authorization": f"Bearer {self.key}", "Idempotency-Key": f"k-{self.count}"})

    def follow(self, txn_id: str, what: str) -> Any:
        if what == "reversal":
            return self.post(f"/v1/payments/{txn_id}/reversal", {})
        return self.post(f"/v1/payments/{txn_id}/{what}", FOLLOW_UPS[what])


def _code(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    code: str = response.json()["response_code"]
    return code


def _money(ctx: ServiceContext, sim: IssuerSimulator) -> tuple[int, int, int, int]:
    with ctx.db.unit_of_work() as uow:
        assert all(v == 0 for v in uow.ledger.imbalance_by_currency().values())
        unsettled = -uow.ledger.balance(f"merchant_unsettled:{MID}", "CNY")
        receivable = uow.ledger.balance("channel_receivable", "CNY")
    card = sim.card(PAN)
    return unsettled, receivable, card.balance_minor, card.held_minor


def test_every_follow_up_of_a_record_with_an_unknown_original(
        client: TestClient, ctx: ServiceContext, sim: IssuerSimulator, key: str) -> None:
    till = Till(client, key)
    first = till.post("/v1/payments/doesnotexist/cancellations", {})
    assert _code(first, 201) == "25"
    x = first.json()["transaction"]["txn_id"]
    for what in FOLLOW_UPS:
        assert _code(till.follow(x, what), 201) in ("12", "25"), what  # was a 500
    for _ in range(2):
        reversal = till.follow(x, "reversal")
        assert _code(reversal, 200) == "00"
        assert reversal.json()["approved"] is True
    assert _money(ctx, sim) == (0, 0, OPENING, 0)


def test_reversal_of_a_refused_follow_up_of_a_sale(client: TestClient, ctx: ServiceContext,
                                                   sim: IssuerSimulator, key: str) -> None:
    till = Till(client, key)
    sale = till.post("/v1/payments/sales", SALE)
    assert _code(sale, 201) == "00"
    s = sale.json()["transaction"]["txn_id"]
    for what in ("cancellations", "completions"):
        refused = till.follow(s, what)
        assert _code(refused, 201) == "12", what
        y = refused.json()["transaction"]["txn_id"]
        assert _code(till.follow(y, "reversal"), 200) == "00"  # was a 500
        for again in FOLLOW_UPS:
            assert _code(till.follow(y, again), 201) in ("12", "25")
    assert _money(ctx, sim) == (1_000, 1_000, OPENING - 1_000, 0)
    assert _code(till.follow(s, "voids"), 201) == "00"  # the sale is untouched
    assert _money(ctx, sim) == (0, 0, OPENING, 0)


# -- the error boundary ----------------------------------------------------------------------

@pytest.mark.parametrize("fault", [
    InvariantViolation(SECRET), AutosettleError(SECRET, ErrorCode.INTERNAL),
    AutosettleError(SECRET, ErrorCode.UNAVAILABLE), RuntimeError(SECRET), KeyError(SECRET)])
def test_a_fault_answers_a_fixed_message_and_logs_the_traceback(
        client: TestClient, ctx: ServiceContext, sim: IssuerSimulator, key: str,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        fault: Exception) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise fault

    monkeypatch.setattr(payments, "authorize", broken)
    caplog.set_level(logging.ERROR, logger="autosettle.api")
    response = Till(client, key).post("/v1/payments/sales", SALE)
    unavailable = isinstance(fault, AutosettleError) and fault.code is ErrorCode.UNAVAILABLE
    code = ErrorCode.UNAVAILABLE if unavailable else ErrorCode.INTERNAL
    error = assert_error(response, 503 if unavailable else 500, code.value)
    assert error == {"code": code.value, "message": FIXED[code]}
    assert "original_id" not in response.text
    logged = [r for r in caplog.records if r.exc_info and r.exc_info[1] is fault]
    assert len(logged) == 1, caplog.records
    assert "Traceback" in caplog.text and SECRET in caplog.text
    assert _money(ctx, sim) == (0, 0, OPENING, 0)


def test_every_error_code_has_a_status() -> None:
    assert set(HTTP_STATUS) == set(ErrorCode)
    assert HTTP_STATUS[ErrorCode.BATCH_NOT_OPEN] == 422
