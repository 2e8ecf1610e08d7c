"""REST payments and the numbers a terminal owns: trace numbers (stan), batch numbers and
the Idempotency-Key (issue 9, defects 1, 4 and 9)."""

from __future__ import annotations

from typing import Any

import pytest
from apitools import assert_error, row_counts
from fastapi.testclient import TestClient
from sqlalchemy import select

from autosettle.domain.merchants import MerchantType
from autosettle.services import apikeys, merchants
from autosettle.services.context import SYSTEM, Role, ServiceContext
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.store.tables import terminal_batches

MID, TID = "898310054110001", "HL000001"
PAN = "6222020200112345679"
OPENING = 1_000_000
SALE: dict[str, Any] = {"amount_minor": 100,
                        "card": {"pan": PAN, "expiry": "3012", "pin": "123456"}}


@pytest.fixture
def key(ctx: ServiceContext, sim: IssuerSimulator) -> str:
    """A terminal key of a new terminal (no batch yet) and a card with money."""
    merchants.create_merchant(ctx, SYSTEM, merchants.NewMerchant(
        MID, "Hualian", MerchantType.ENTERPRISE, "5411"))
    merchants.add_terminal(ctx, SYSTEM, MID, merchants.NewTerminal(TID))
    sim.add_card(PAN, balance_minor=OPENING, pin="123456")
    return apikeys.create_api_key(ctx, SYSTEM, Role.TERMINAL, "till", MID, TID).key


def _h(key: str, idem: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}"}
    if idem is not None:
        headers["Idempotency-Key"] = idem
    return headers


def _sale(client: TestClient, key: str, idem: str | None, **body: Any) -> Any:
    return client.post("/v1/payments/sales", json={**SALE, **body}, headers=_h(key, idem))


def _unsettled(ctx: ServiceContext) -> int:
    with ctx.db.unit_of_work() as uow:
        assert all(v == 0 for v in uow.ledger.imbalance_by_currency().values())
        return -uow.ledger.balance(f"merchant_unsettled:{MID}", "CNY")


def _approved(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body["approved"] is True, body
    txn: dict[str, Any] = body["transaction"]
    return txn


# -- defect 1: a terminal's own trace number advances the counter ----------------------------

def test_a_stan_from_the_client_never_collides_with_a_later_one(
        client: TestClient, ctx: ServiceContext, sim: IssuerSimulator, key: str) -> None:
    assert _approved(_sale(client, key, "k-1"))["stan"] == "000001"
    assert _approved(_sale(client, key, None, stan="000002"))["stan"] == "000002"
    assert _approved(_sale(client, key, "k-3"))["stan"] == "000003"  # was a 500, for ever
    assert _approved(_sale(client, key, None, stan="000007"))["stan"] == "000007"
    assert _approved(_sale(client, key, "k-5"))["stan"] == "000008"
    assert _approved(_sale(client, key, None, stan="000004"))["stan"] == "000004"  # a gap
    assert _approved(_sale(client, key, "k-7"))["stan"] == "000009"
    assert sim.card(PAN).balance_minor == OPENING - 700
    assert _unsettled(ctx) == 700


def test_a_used_stan_is_replayed_or_answered_94_never_500(
        client: TestClient, ctx: ServiceContext, sim: IssuerSimulator, key: str) -> None:
    first = _approved(_sale(client, key, "k-1"))
    again = _sale(client, key, None, stan=first["stan"], amount_minor=5)  # other content
    error = assert_error(again, 409, "idempotency_conflict")
    assert error["response_code"] == "94"
    same = client.post("/v1/payments/sales", json={**SALE, "stan": "000002"},
                       headers=_h(key))
    replay = client.post("/v1/payments/sales", json={**SALE, "stan": "000002"},
                         headers=_h(key))
    assert (same.status_code, replay.status_code) == (201, 200)
    assert replay.json()["replayed"] is True
    assert sim.card(PAN).balance_minor == OPENING - 200
    assert _unsettled(ctx) == 200


def test_a_terminal_stuck_by_the_old_counter_heals(
        client: TestClient, ctx: ServiceContext, sim: IssuerSimulator, key: str) -> None:
    """A database written before the fix: the counter lags behind used traces."""
    _approved(_sale(client, key, None, stan="000001"))
    _approved(_sale(client, key, None, stan="000002"))
    with ctx.db.unit_of_work() as uow:  # as the old code left it: the counter never moved
        uow.connection.exec_driver_sql("UPDATE terminal_batches SET next_stan = 1")
    assert _approved(_sale(client, key, "k-3"))["stan"] == "000003"
    assert _approved(_sale(client, key, "k-4"))["stan"] == "000004"
    assert sim.card(PAN).balance_minor == OPENING - 400
    assert _unsettled(ctx) == 400


# -- defect 4: a REST client names only its open batch ---------------------------------------

def test_rest_cannot_open_a_batch_of_its_choosing(
        client: TestClient, ctx: ServiceContext, sim: IssuerSimulator, key: str) -> None:
    before = row_counts(ctx)
    for batch in ("900000", "000001"):  # no batch is open yet: none may be named
        error = assert_error(_sale(client, key, None, batch_no=batch, stan="000001"), 422,
                             "batch_not_open")
        assert error["response_code"] == "22"
    assert row_counts(ctx) == before
    opened = _approved(_sale(client, key, "k-1"))
    assert opened["batch_no"] == "000001"
    assert_error(_sale(client, key, None, batch_no="900000", stan="000001"), 422,
                 "batch_not_open")
    assert_error(_sale(client, key, "k-2", batch_no="000002"), 422, "batch_not_open")
    named = _approved(_sale(client, key, None, batch_no="000001", stan="000005"))
    assert (named["batch_no"], named["stan"]) == ("000001", "000005")
    with ctx.db.unit_of_work() as uow:
        assert [b.batch_no for b in _batches(uow)] == ["000001"]
        uow.batches.close(MID, TID, "000001", ctx.now())
    assert_error(_sale(client, key, None, batch_no="000001", stan="000009"), 422,
                 "batch_not_open")
    nxt = _approved(_sale(client, key, "k-3"))
    assert (nxt["batch_no"], nxt["stan"]) == ("000002", "000001")
    assert sim.card(PAN).balance_minor == OPENING - 300
    assert _unsettled(ctx) == 300


def _batches(uow: Any) -> list[Any]:
    return list(uow.connection.execute(select(terminal_batches)
                                       .order_by(terminal_batches.c.batch_no)))


# -- defect 9: the Idempotency-Key of a payment is checked like every other -----------------

@pytest.mark.parametrize("bad", ["", "tab\there", "bell\x07", "ключ", "é",
                                 "a" * 201])
def test_bad_idempotency_keys_on_payments_are_refused(
        client: TestClient, ctx: ServiceContext, sim: IssuerSimulator, key: str,
        bad: str) -> None:
    before = row_counts(ctx)
    for path, body in (("/v1/payments/sales", SALE),
                       ("/v1/payments/deadbeef/refunds", {"amount_minor": 1}),
                       ("/v1/payments/deadbeef/voids", {})):
        response = client.post(path, json=body, headers=[
            ("Authorization", f"Bearer {key}"), ("Idempotency-Key", bad.encode("utf-8"))])
        assert_error(response, 422, "validation_failed")
    assert row_counts(ctx) == before
    assert sim.card(PAN).balance_minor == OPENING


def test_the_longest_printable_key_is_accepted(client: TestClient, ctx: ServiceContext,
                                               sim: IssuerSimulator, key: str) -> None:
    long_key = "~" * 200
    _approved(_sale(client, key, long_key))
    assert _sale(client, key, long_key).json()["replayed"] is True
    assert sim.card(PAN).balance_minor == OPENING - 100
    assert _unsettled(ctx) == 100
