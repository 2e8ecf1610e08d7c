"""Over real sockets (issue 9, defects 1, 3 and 4): a terminal's own trace numbers move the
host's counter, follow-ups and reversals of odd records are answered (never a closed
connection or a 96 for them), a failure that moved nothing is answered 96, and a terminal
still starts its next batch by number after a settlement."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hosttools import DEBIT, MID, OPENING_MINOR, PIN, TID, UNTOUCHED, Money, money

from autosettle.api.app import create_app
from autosettle.services import apikeys, payments
from autosettle.services.context import SYSTEM, Role, ServiceContext
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.simulators.terminal_client import Answer, LocalTxn, NoAnswer, TerminalClient
from autosettle.terminal_host.messages import MessageKind
from autosettle.terminal_host.processor import Processor

K = MessageKind
SALE: dict[str, Any] = {"amount_minor": 100,
                        "card": {"pan": DEBIT, "expiry": "3012", "pin": PIN}}


def _ok(answer: Answer) -> LocalTxn:
    assert answer.code == "00", answer.fields
    assert answer.txn is not None
    return answer.txn


@pytest.fixture
def till(shop: ServiceContext) -> Any:
    """A REST cash register on the same terminal id as the POS."""
    key = apikeys.create_api_key(shop, SYSTEM, Role.TERMINAL, "till", MID, TID).key
    with TestClient(create_app(shop), raise_server_exceptions=False) as client:
        count = 0

        def sale(**body: Any) -> Any:
            nonlocal count
            count += 1
            return client.post("/v1/payments/sales", json={**SALE, **body}, headers={
                "Authorization": f"Bearer {key}", "Idempotency-Key": f"till-{count}"})

        yield sale


def test_rest_sales_after_iso_sales_never_collide(shop: ServiceContext, sim: IssuerSimulator,
                                                  terminal: TerminalClient, till: Any) -> None:
    terminal.trace = 0  # the sales carry traces 1, 2, 3
    for _ in range(3):
        _ok(terminal.sale(DEBIT, 1_000, PIN))
    for stan in ("000004", "000005"):
        response = till()
        assert response.status_code == 201, response.text  # was a 500, for ever
        assert response.json()["transaction"]["stan"] == stan
    assert money(shop, sim) == Money(OPENING_MINOR - 3_200, 0, 3_200, 0)


def test_a_reversal_tombstone_moves_the_counter_too(shop: ServiceContext, sim: IssuerSimulator,
                                                    terminal: TerminalClient,
                                                    till: Any) -> None:
    terminal.trace = 0
    _ok(terminal.sale(DEBIT, 1_000, PIN))  # trace 1 opens batch 1
    terminal.trace = 6
    unseen = terminal.prepare(K.SALE, pan=DEBIT, amount_minor=500, pin=PIN)  # trace 7
    assert terminal.send(terminal.prepare_reversal(unseen)).code == "00"  # overtakes it
    stans = [till().json()["transaction"]["stan"] for _ in range(2)]
    assert stans == ["000008", "000009"]
    assert money(shop, sim) == Money(OPENING_MINOR - 1_200, 0, 1_200, 0)


def test_follow_ups_and_reversals_of_odd_records(shop: ServiceContext, sim: IssuerSimulator,
                                                 terminal: TerminalClient) -> None:
    sale = _ok(terminal.sale(DEBIT, 1_000, PIN))
    nobody = LocalTxn(K.SALE, terminal.batch_no, 999, 1_000, DEBIT)
    void = terminal.prepare(K.VOID, amount_minor=1_000, original=nobody)
    assert terminal.send(void).code == "25"  # record X: a void without an original
    x = LocalTxn(K.VOID, terminal.batch_no, int(void.fields["11"]), 1_000, DEBIT)
    completion = terminal.prepare(K.COMPLETION, amount_minor=500, original=sale)
    assert terminal.send(completion).code == "12"  # record Z: a completion of a sale
    z = LocalTxn(K.COMPLETION, terminal.batch_no, int(completion.fields["11"]), 500, DEBIT)
    for odd in (x, z):  # follow-ups naming them: was a closed connection
        for kind in (K.VOID, K.REFUND, K.PREAUTH_VOID, K.COMPLETION, K.COMPLETION_VOID):
            answer = terminal.send(terminal.prepare(kind, amount_minor=odd.amount_minor,
                                                    original=odd))
            assert answer.code in ("12", "25"), (odd, kind, answer.fields)
    for message in (void, completion):  # their reversals: was 96
        answer = terminal.send(terminal.prepare_reversal(message))
        assert answer.code == "00", answer.fields
        assert answer.mac_ok is True
    assert money(shop, sim) == Money(OPENING_MINOR - 1_000, 0, 1_000, 0)
    _ok(terminal.void(sale))  # the sale itself is untouched
    assert money(shop, sim) == UNTOUCHED


def test_a_failure_that_moved_nothing_is_answered_96_and_logged(
        shop: ServiceContext, sim: IssuerSimulator, terminal: TerminalClient,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("bug before anything was stored")

    with monkeypatch.context() as patch:
        patch.setattr(payments, "authorize", broken)
        caplog.set_level(logging.ERROR, logger="autosettle.terminal_host")
        answer = terminal.sale(DEBIT, 1_500, PIN)
    assert answer.code == "96", answer.fields  # was a closed connection
    assert terminal.pending_reversal is None
    failures = [r for r in caplog.records if r.exc_info is not None]
    assert failures and "bug before anything was stored" in caplog.text
    assert money(shop, sim) == UNTOUCHED
    _ok(terminal.sale(DEBIT, 1_500, PIN))  # the connection and the terminal work on
    assert money(shop, sim) == Money(OPENING_MINOR - 1_500, 0, 1_500, 0)


def test_a_failure_after_a_record_still_closes_the_connection(
        shop: ServiceContext, sim: IssuerSimulator, terminal: TerminalClient,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken(*_args: object) -> dict[str, str]:
        raise RuntimeError("bug after the money moved")

    with monkeypatch.context() as patch:
        patch.setattr(Processor, "_result_fields", broken)
        caplog.set_level(logging.CRITICAL, logger="autosettle")
        with pytest.raises(NoAnswer):
            terminal.sale(DEBIT, 1_500, PIN)
    assert money(shop, sim).card_balance == OPENING_MINOR - 1_500  # it moved
    reversal = terminal.send_pending_reversal()
    assert reversal is not None and reversal.code == "00"
    assert money(shop, sim) == UNTOUCHED


def test_iso_terminals_still_start_their_next_batch_by_number(
        shop: ServiceContext, sim: IssuerSimulator, terminal: TerminalClient,
        till: Any) -> None:
    _ok(terminal.sale(DEBIT, 1_000, PIN))
    assert terminal.settle().approved  # balanced: batch 1 closes, the terminal moves on
    assert terminal.batch_no == 2
    second = _ok(terminal.sale(DEBIT, 2_000, PIN))
    assert second.batch_no == 2
    refused = till(batch_no="900000", stan="000001")  # REST may not open one of its own
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "batch_not_open"
    terminal.batch_no = 7  # nor may the POS jump while batch 2 is open
    assert terminal.sale(DEBIT, 1, PIN).code == "22"
    assert money(shop, sim) == Money(OPENING_MINOR - 3_000, 0, 3_000, 0)
