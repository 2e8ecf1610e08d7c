"""Every response code issue 3 names, produced end to end by a card, a fault or a rule.

Each scenario sets up what makes its code happen (a simulator card status, an injected fault,
a merchant rule, a closed batch, ...) and returns the answer of the last request. The common
checks then hold for all of them: the code has both texts in the table, a refusal moved no
money on either side, and the ledger balances.

A0 (MAC error) belongs to the ISO 8583 terminal host (issue 5), which checks the MAC before
the services run; here it comes from the simulator's ANSWER_CODE fault to show that the
services pass an issuer's A0 through, record it and move nothing.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from jobtools import (
    CARD_HOLDS,
    CHANNEL_RECEIVABLE,
    HOLDS_CONTRA,
    assert_balances,
    merchant_unsettled,
)
from paytools import (
    DEBIT,
    MID,
    PIN,
    SINGLE_LIMIT_MINOR,
    TID,
    assert_ledger_balanced,
    card,
    entry_count,
    make_pan,
    on_original,
    preauth,
    sale,
    seed_shop,
    txn_id,
    unsettled,
)

from autosettle.domain import transactions as tm
from autosettle.domain.merchants import MerchantStatus, TerminalStatus
from autosettle.domain.money import Money, currency
from autosettle.domain.payment_records import PaymentRules
from autosettle.domain.response_codes import RESPONSE_TABLE, ResponseCode, describe
from autosettle.domain.transactions import TxnType
from autosettle.services import merchants, payments
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.services.payments import OriginalRef, PaymentRequest, PaymentResult
from autosettle.simulators import issuer as simulator
from autosettle.simulators.issuer import CardStatus, FaultKind, IssuerSimulator

RC = ResponseCode

ISSUE_3_CODES = ["00", "03", "05", "12", "13", "14", "22", "25", "30", "41", "43", "51", "54",
                 "55", "57", "58", "61", "62", "64", "65", "75", "91", "94", "96", "A0"]

OTHER = make_pan(2)
"""A second card, set up per scenario with the status the scenario needs."""


@dataclass
class World:
    ctx: ServiceContext
    sim: IssuerSimulator
    clock: object


Scenario = Callable[[World], list[PaymentResult]]
"""Returns the answers whose code is the scenario's (several ways to one code)."""


def _card(w: World, status: CardStatus = CardStatus.ACTIVE, **kw: object) -> str:
    w.sim.add_card(OTHER, balance_minor=50_000, pin=PIN, status=status, **kw)  # type: ignore[arg-type]
    return OTHER


def approved(w: World) -> list[PaymentResult]:
    result = sale(w.ctx, 1_000)
    assert w.sim.card(DEBIT).balance_minor == 99_000
    assert unsettled(w.ctx) == 1_000
    return [result]


def merchant_suspended(w: World) -> list[PaymentResult]:
    merchants.set_merchant_status(w.ctx, SYSTEM, MID, MerchantStatus.SUSPENDED)
    return [sale(w.ctx, 1_000)]


def do_not_honour(w: World) -> list[PaymentResult]:
    return [sale(w.ctx, 1_000, pan=_card(w, CardStatus.DO_NOT_HONOUR))]


def invalid_transaction(w: World) -> list[PaymentResult]:
    first = sale(w.ctx, 1_000)
    assert on_original(w.ctx, TxnType.VOID, txn_id(first)).approved
    second_void = on_original(w.ctx, TxnType.VOID, txn_id(first))
    pre = preauth(w.ctx, 2_000)
    refund_of_preauth = on_original(w.ctx, TxnType.REFUND, txn_id(pre), 100)
    return [second_void, refund_of_preauth]


def invalid_amount(w: World) -> list[PaymentResult]:
    zero = payments.authorize(w.ctx, PaymentRequest(TxnType.SALE, MID, TID, Money(0), card()))
    dollars = payments.authorize(w.ctx, PaymentRequest(
        TxnType.SALE, MID, TID, Money(100, currency("USD")), card()))
    no_amount = payments.authorize(w.ctx, PaymentRequest(TxnType.SALE, MID, TID, None, card()))
    return [zero, dollars, no_amount]


def invalid_card_number(w: World) -> list[PaymentResult]:
    bad_luhn = DEBIT[:-1] + str((int(DEBIT[-1]) + 1) % 10)
    unknown_at_issuer = make_pan(999)
    return [sale(w.ctx, 1_000, pan=bad_luhn), sale(w.ctx, 1_000, pan=unknown_at_issuer)]


def void_after_batch_closed(w: World) -> list[PaymentResult]:
    first = sale(w.ctx, 1_000)
    assert first.record is not None
    with w.ctx.db.unit_of_work() as uow:
        uow.batches.close(MID, TID, first.record.batch_no, w.ctx.now())
    void = on_original(w.ctx, TxnType.VOID, txn_id(first))
    refund = on_original(w.ctx, TxnType.REFUND, txn_id(first), 1_000)
    assert refund.approved, "after settlement the cashier refunds instead"
    return [void]


def original_not_found(w: World) -> list[PaymentResult]:
    unknown = on_original(w.ctx, TxnType.VOID, "f" * 32)
    declined = sale(w.ctx, 500_000)  # insufficient funds: nothing to void
    void_of_declined = on_original(w.ctx, TxnType.VOID, txn_id(declined))
    return [unknown, void_of_declined]


def format_error(w: World) -> list[PaymentResult]:
    no_original = payments.authorize(w.ctx, PaymentRequest(TxnType.VOID, MID, TID))
    empty_original = payments.authorize(w.ctx, PaymentRequest(
        TxnType.VOID, MID, TID, original=OriginalRef(batch_no="000001")))
    sale_without_card = payments.authorize(w.ctx, PaymentRequest(
        TxnType.SALE, MID, TID, Money(100)))
    bad_trace = payments.authorize(w.ctx, PaymentRequest(
        TxnType.SALE, MID, TID, Money(100), card(), stan="12x"))
    return [no_original, empty_original, sale_without_card, bad_trace]


def lost(w: World) -> list[PaymentResult]:
    first = sale(w.ctx, 1_000, pan=_card(w))
    w.sim.add_card(OTHER, balance_minor=49_000, status=CardStatus.LOST)
    # The issuer refuses the void too: the record stays approved, nothing moves.
    void = on_original(w.ctx, TxnType.VOID, txn_id(first))
    assert unsettled(w.ctx) == 1_000
    return [sale(w.ctx, 1_000, pan=OTHER), void]


def stolen(w: World) -> list[PaymentResult]:
    return [sale(w.ctx, 1_000, pan=_card(w, CardStatus.STOLEN))]


def insufficient_funds(w: World) -> list[PaymentResult]:
    too_big = sale(w.ctx, 100_001)
    w.sim.add_card(OTHER, balance_minor=10_000, pin=PIN)
    pre = preauth(w.ctx, 10_000, pan=OTHER)
    assert pre.approved
    # 115% of the hold is allowed by the rules but not covered by the account.
    completion = on_original(w.ctx, TxnType.COMPLETION, txn_id(pre), 11_500)
    assert w.sim.card(OTHER).held_minor == 10_000
    return [too_big, completion]


def expired(w: World) -> list[PaymentResult]:
    by_rule = sale(w.ctx, 1_000, expiry="2001")
    assert by_rule.record is not None and by_rule.record.refusal_reason == "card_expired"
    by_issuer = sale(w.ctx, 1_000, pan=_card(w, expiry="2001"), expiry=None)
    return [by_rule, by_issuer]


def incorrect_pin(w: World) -> list[PaymentResult]:
    return [sale(w.ctx, 1_000, pin="654321"), sale(w.ctx, 1_000, pin=None)]


def not_permitted_to_card(w: World) -> list[PaymentResult]:
    by_issuer = sale(w.ctx, 1_000, pan=_card(w, CardStatus.NOT_PERMITTED))
    with w.ctx.db.unit_of_work() as uow:
        uow.payment_rules.put(MID, PaymentRules(None, frozenset({"credit"}), "1.15"),
                              w.ctx.now())
    by_rule = sale(w.ctx, 1_000)
    return [by_issuer, by_rule]


def not_permitted_to_terminal(w: World) -> list[PaymentResult]:
    with w.ctx.db.unit_of_work() as uow:
        uow.payment_rules.put(MID, PaymentRules(frozenset({"sale"}), None, "1.15"), w.ctx.now())
    type_not_allowed = preauth(w.ctx, 1_000)
    merchants.set_terminal_status(w.ctx, SYSTEM, MID, TID, TerminalStatus.SUSPENDED)
    terminal_suspended = sale(w.ctx, 1_000)
    return [type_not_allowed, terminal_suspended]


def exceeds_amount_limit(w: World) -> list[PaymentResult]:
    w.sim.add_card(DEBIT, balance_minor=10 * SINGLE_LIMIT_MINOR, pin=PIN)
    over_limit = sale(w.ctx, SINGLE_LIMIT_MINOR + 1)
    first = sale(w.ctx, 1_000)
    assert on_original(w.ctx, TxnType.REFUND, txn_id(first), 600).approved
    over_refund = on_original(w.ctx, TxnType.REFUND, txn_id(first), 401)
    return [over_limit, over_refund]


def restricted(w: World) -> list[PaymentResult]:
    return [sale(w.ctx, 1_000, pan=_card(w, CardStatus.RESTRICTED))]


def amount_mismatch(w: World) -> list[PaymentResult]:
    first = sale(w.ctx, 1_000)
    return [on_original(w.ctx, TxnType.VOID, txn_id(first), 999)]


def exceeds_frequency(w: World) -> list[PaymentResult]:
    pan = _card(w, daily_count_max=2)
    assert sale(w.ctx, 100, pan=pan).approved
    assert preauth(w.ctx, 100, pan=pan).approved
    third = sale(w.ctx, 100, pan=pan)
    w.clock.advance(days=1)  # type: ignore[attr-defined]
    assert sale(w.ctx, 100, pan=pan).approved, "the count starts again the next day"
    return [third]


def pin_tries_exceeded(w: World) -> list[PaymentResult]:
    for _ in range(2):
        assert sale(w.ctx, 100, pin="000000").response_code is RC.INCORRECT_PIN
    third = sale(w.ctx, 100, pin="000000")
    right_pin_too_late = sale(w.ctx, 100)
    return [third, right_pin_too_late]


def issuer_unavailable(w: World) -> list[PaymentResult]:
    w.sim.inject(FaultKind.UNAVAILABLE)
    refused = sale(w.ctx, 1_000)
    assert refused.record is not None and refused.record.status == "reversed"
    with w.ctx.db.unit_of_work() as uow:
        assert uow.reversals.pending_count() == 0, "nothing happened upstream to reverse"
    w.sim.inject(FaultKind.ANSWER_CODE, code="91")
    answered = sale(w.ctx, 1_000)
    return [refused, answered]


def duplicate(w: World) -> list[PaymentResult]:
    assert sale(w.ctx, 1_000, key="order-1").approved
    return [sale(w.ctx, 1_001, key="order-1")]


def system_malfunction(w: World) -> list[PaymentResult]:
    w.sim.inject(FaultKind.ANSWER_CODE, code="96")
    return [sale(w.ctx, 1_000)]


def mac_error(w: World) -> list[PaymentResult]:
    w.sim.inject(FaultKind.ANSWER_CODE, code="A0")
    return [sale(w.ctx, 1_000)]


SCENARIOS: dict[str, Scenario] = {
    "00": approved, "03": merchant_suspended, "05": do_not_honour, "12": invalid_transaction,
    "13": invalid_amount, "14": invalid_card_number, "22": void_after_batch_closed,
    "25": original_not_found, "30": format_error, "41": lost, "43": stolen,
    "51": insufficient_funds, "54": expired, "55": incorrect_pin, "57": not_permitted_to_card,
    "58": not_permitted_to_terminal, "61": exceeds_amount_limit, "62": restricted,
    "64": amount_mismatch, "65": exceeds_frequency, "75": pin_tries_exceeded,
    "91": issuer_unavailable, "94": duplicate, "96": system_malfunction, "A0": mac_error,
}

def _captured(fen: int) -> dict[str, int]:
    return {CHANNEL_RECEIVABLE: fen, merchant_unsettled(MID): -fen}


def _held(fen: int) -> dict[str, int]:
    return {CARD_HOLDS: fen, HOLDS_CONTRA: -fen}


BOOKS: dict[str, dict[str, int]] = {
    "00": _captured(1_000),
    "12": _held(2_000),                   # the sale was voided; the pre-authorization holds
    "41": _captured(1_000),               # the void the issuer refused moved nothing
    "51": _held(10_000),                  # the completion was refused: the hold stays
    "61": _captured(1_000 - 600),
    "64": _captured(1_000),
    "65": {**_captured(200), **_held(100)},
    "94": _captured(1_000),
}
"""Every ledger account each scenario leaves non-zero (any other account must be zero)."""

REJECTED_WITHOUT_RECORD = frozenset({"13", "30", "94"})
"""Bad input is rejected before anything is stored (14 too when the Luhn check fails)."""

NOTHING_APPROVED = frozenset({"03", "05", "13", "14", "25", "30", "43", "54", "55", "57",
                              "58", "62", "75", "91", "96", "A0"})
"""Scenarios without a single approved step: no money may have moved anywhere."""


def test_every_issue_code_has_a_scenario() -> None:
    assert sorted(SCENARIOS) == sorted(ISSUE_3_CODES)


@pytest.mark.parametrize("code", ISSUE_3_CODES)
def test_code_is_produced(code: str, ctx: ServiceContext, sim: IssuerSimulator,
                          clock: object) -> None:
    seed_shop(ctx, sim)
    world = World(ctx, sim, clock)
    expected = RC(code)
    results = SCENARIOS[code](world)
    assert results
    for result in results:
        assert result.response_code is expected, (result.response_code, result.message)
        assert result.message
        text = describe(expected)
        assert text.english and text.chinese
        if code in REJECTED_WITHOUT_RECORD:
            assert result.record is None
        if result.record is not None and result.record.txn_type in ("sale", "preauth") \
                and not result.approved:
            assert result.record.response_code == code
            assert result.record.status in ("declined", "reversed")
            _assert_nothing_posted_for(ctx, result.record.txn_id)
    assert_ledger_balanced(ctx)
    assert_balances(ctx, BOOKS.get(code, {}))
    if code in NOTHING_APPROVED:
        assert unsettled(ctx) == 0
        assert entry_count(ctx) == 0
        assert sim.card(DEBIT).balance_minor == 100_000
        assert sim.card(DEBIT).held_minor == 0


def _assert_nothing_posted_for(ctx: ServiceContext, txn: str) -> None:
    with ctx.db.unit_of_work() as uow:
        assert uow.ledger.net_lines_for_reference(txn) == []


def test_refused_request_replays_its_refusal(ctx: ServiceContext, sim: IssuerSimulator) -> None:
    seed_shop(ctx, sim)
    first = sale(ctx, 200_000, key="big")
    again = sale(ctx, 200_000, key="big")
    assert first.response_code is again.response_code is RC.INSUFFICIENT_FUNDS
    assert again.replayed and again.record is not None
    assert again.record.txn_id == txn_id(first)


# -- every code the services can produce is in the table ---------------------------------------

def _codes_named_in(module: object) -> set[ResponseCode]:
    """Every ``RC.X`` / ``ResponseCode.X`` a module's source mentions."""
    tree = ast.parse(inspect.getsource(module))  # type: ignore[arg-type]
    names = {node.attr for node in ast.walk(tree)
             if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
             and node.value.id in ("RC", "ResponseCode", "_RC")}
    return {ResponseCode[name] for name in names}


def test_every_code_the_services_produce_is_in_the_table() -> None:
    produced = (_codes_named_in(payments) | _codes_named_in(simulator)
                | _codes_named_in(tm) | set(tm.REFUSAL_CODES.values()))
    assert {RC.APPROVED, RC.ISSUER_TIMEOUT, RC.DO_NOT_HONOUR, RC.EXCEEDS_FREQUENCY_LIMIT} \
        <= produced
    missing = produced - set(RESPONSE_TABLE)
    assert not missing
    for code in produced:
        row = RESPONSE_TABLE[code]
        assert row.english and row.chinese
    assert {RC(code) for code in ISSUE_3_CODES} <= set(RESPONSE_TABLE)
