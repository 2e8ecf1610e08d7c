"""Payments through the service layer against the issuer simulator, on both databases."""

from __future__ import annotations

import pytest
from jobtools import (
    CARD_HOLDS,
    CHANNEL_RECEIVABLE,
    HOLDS_CONTRA,
    ClockLike,
    assert_balances,
    merchant_unsettled,
)

from autosettle.domain.merchants import AccountType, CycleCode, MerchantType
from autosettle.domain.money import Money
from autosettle.domain.response_codes import ResponseCode as RC
from autosettle.domain.transactions import TxnType
from autosettle.services import merchants, payments, reversal_queue, reversals
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.services.payments import CardInput, OriginalRef, PaymentRequest
from autosettle.simulators.issuer import CardStatus, FaultKind, IssuerSimulator

MID = "898310054110001"
TID = "HL000001"
DEBIT = "6222020200112345679"
PIN = "123456"


@pytest.fixture
def shop(ctx: ServiceContext, sim: IssuerSimulator) -> ServiceContext:
    merchants.create_merchant(ctx, SYSTEM, merchants.NewMerchant(
        MID, "Hualian Supermarket Co., Ltd.", MerchantType.ENTERPRISE, "5411",
        settlement_cycle=CycleCode.T1, single_limit_minor=5_000_000))
    merchants.add_settlement_account(ctx, SYSTEM, MID, merchants.NewSettlementAccount(
        "ICBC", "6212260200001234567", "Hualian Supermarket Co., Ltd.", AccountType.CORPORATE))
    merchants.add_terminal(ctx, SYSTEM, MID, merchants.NewTerminal(TID))
    sim.add_card(DEBIT, balance_minor=100_000, pin=PIN)
    return ctx


def card(pan: str = DEBIT, pin: str | None = PIN) -> CardInput:
    return CardInput(pan, "3012", pin)


def sale(ctx: ServiceContext, fen: int, key: str | None = None,
         pan: str = DEBIT, pin: str | None = PIN) -> payments.PaymentResult:
    return payments.authorize(ctx, PaymentRequest(TxnType.SALE, MID, TID, Money(fen),
                                                  card(pan, pin), idempotency_key=key))


def captured(fen: int) -> dict[str, int]:
    """The books after ``fen`` were captured, net, and nothing else moved."""
    return {CHANNEL_RECEIVABLE: fen, merchant_unsettled(MID): -fen}


def ledger_ok(ctx: ServiceContext) -> None:
    with ctx.db.unit_of_work() as uow:
        assert all(v == 0 for v in uow.ledger.imbalance_by_currency().values())


def unsettled(ctx: ServiceContext) -> int:
    with ctx.db.unit_of_work() as uow:
        return -uow.ledger.balance(f"merchant_unsettled:{MID}", "CNY")


def test_sale_approved_posts_and_charges(shop: ServiceContext, sim: IssuerSimulator) -> None:
    result = sale(shop, 12_345)
    assert result.response_code is RC.APPROVED
    assert result.record is not None
    assert result.record.status == "approved"
    assert result.record.pan_masked == "622202*********5679"
    assert result.record.auth_code and len(result.record.rrn) == 12
    assert sim.card(DEBIT).balance_minor == 100_000 - 12_345
    assert unsettled(shop) == 12_345
    assert_balances(shop, captured(12_345))
    ledger_ok(shop)


def test_idempotent_replay_charges_once(shop: ServiceContext, sim: IssuerSimulator) -> None:
    first = sale(shop, 500, key="k1")
    again = sale(shop, 500, key="k1")
    assert again.replayed
    assert again.record is not None and first.record is not None
    assert again.record.txn_id == first.record.txn_id
    assert sim.card(DEBIT).balance_minor == 99_500
    other = sale(shop, 501, key="k1")
    assert other.response_code is RC.DUPLICATE_TRANSMISSION
    assert_balances(shop, captured(500))


def test_void_refund_and_reversal(shop: ServiceContext, sim: IssuerSimulator) -> None:
    s1 = sale(shop, 1000)
    assert s1.record is not None
    void = payments.authorize(shop, PaymentRequest(
        TxnType.VOID, MID, TID, None, None, OriginalRef(txn_id=s1.record.txn_id)))
    assert void.response_code is RC.APPROVED, void.message
    assert sim.card(DEBIT).balance_minor == 100_000
    assert_balances(shop, {})
    again = payments.authorize(shop, PaymentRequest(
        TxnType.VOID, MID, TID, None, None, OriginalRef(txn_id=s1.record.txn_id)))
    assert again.response_code is RC.INVALID_TRANSACTION
    s2 = sale(shop, 2000)
    assert s2.record is not None
    r1 = payments.authorize(shop, PaymentRequest(
        TxnType.REFUND, MID, TID, Money(1500), None, OriginalRef(txn_id=s2.record.txn_id)))
    assert r1.response_code is RC.APPROVED
    r2 = payments.authorize(shop, PaymentRequest(
        TxnType.REFUND, MID, TID, Money(501), None, OriginalRef(txn_id=s2.record.txn_id)))
    assert r2.response_code is RC.EXCEEDS_AMOUNT_LIMIT
    assert unsettled(shop) == 500
    assert_balances(shop, captured(500))
    assert sim.card(DEBIT).balance_minor == 100_000 - 500
    rev = reversals.reverse(shop, MID, TID, OriginalRef(txn_id=r1.record.txn_id))  # type: ignore[union-attr]
    assert rev.response_code is RC.APPROVED
    assert unsettled(shop) == 2000
    assert sim.card(DEBIT).balance_minor == 100_000 - 2000
    assert_balances(shop, captured(2000))
    again_rev = reversals.reverse(shop, MID, TID, OriginalRef(txn_id=r1.record.txn_id))  # type: ignore[union-attr]
    assert again_rev.response_code is RC.APPROVED
    assert reversals.reverse(shop, MID, TID, OriginalRef(txn_id="nope")).response_code is \
        RC.APPROVED
    assert_balances(shop, captured(2000))
    ledger_ok(shop)


def test_preauth_and_completion(shop: ServiceContext, sim: IssuerSimulator) -> None:
    pre = payments.authorize(shop, PaymentRequest(TxnType.PREAUTH, MID, TID, Money(10_000),
                                                  card()))
    assert pre.response_code is RC.APPROVED and pre.record is not None
    assert sim.card(DEBIT).held_minor == 10_000
    held = assert_balances(shop, {CARD_HOLDS: 10_000, HOLDS_CONTRA: -10_000})
    too_much = payments.authorize(shop, PaymentRequest(
        TxnType.COMPLETION, MID, TID, Money(11_501), None, OriginalRef(txn_id=pre.record.txn_id)))
    assert too_much.response_code is RC.EXCEEDS_AMOUNT_LIMIT
    done = payments.authorize(shop, PaymentRequest(
        TxnType.COMPLETION, MID, TID, Money(11_500), None, OriginalRef(txn_id=pre.record.txn_id)))
    assert done.response_code is RC.APPROVED, done.message
    card_state = sim.card(DEBIT)
    assert card_state.held_minor == 0
    assert card_state.balance_minor == 100_000 - 11_500
    assert unsettled(shop) == 11_500
    # the whole 100.00 hold is released, whatever the completed amount; 115.00 is captured
    assert_balances(shop, {CARD_HOLDS: -10_000, HOLDS_CONTRA: 10_000, **captured(11_500)},
                    since=held)
    ledger_ok(shop)


def test_cancel_releases_the_hold(shop: ServiceContext, sim: IssuerSimulator) -> None:
    pre = payments.authorize(shop, PaymentRequest(TxnType.PREAUTH, MID, TID, Money(4_000),
                                                  card()))
    assert pre.approved and pre.record is not None
    assert_balances(shop, {CARD_HOLDS: 4_000, HOLDS_CONTRA: -4_000})
    cancel = payments.authorize(shop, PaymentRequest(
        TxnType.PREAUTH_VOID, MID, TID, None, None, OriginalRef(txn_id=pre.record.txn_id)))
    assert cancel.approved, cancel.message
    assert sim.card(DEBIT).held_minor == 0
    assert_balances(shop, {})


def test_unacknowledged_reversal_stays_queued_until_the_issuer_takes_it(
        shop: ServiceContext, sim: IssuerSimulator, clock: ClockLike) -> None:
    first = sale(shop, 3_000)
    assert first.record is not None
    sim.inject(FaultKind.REVERSAL_UNAVAILABLE)
    rev = reversals.reverse(shop, MID, TID, OriginalRef(txn_id=first.record.txn_id))
    assert rev.response_code is RC.APPROVED
    assert_balances(shop, {})  # our side is undone at once
    with shop.db.unit_of_work() as uow:
        queued = uow.reversals.get(MID, first.record.txn_id)
    assert queued is not None and (queued.state, queued.attempts) == ("pending", 1)
    assert sim.card(DEBIT).balance_minor == 100_000 - 3_000  # the issuer has not heard
    assert sim.auth_state(first.record.txn_id) == "applied"
    assert reversal_queue.process_reversals(shop).acknowledged == 0  # not due yet
    clock.advance(seconds=reversal_queue.REVERSAL_RETRY_MAX_S)
    assert reversal_queue.process_reversals(shop) == reversal_queue.ReversalRun(1, 0)
    with shop.db.unit_of_work() as uow:
        done = uow.reversals.get(MID, first.record.txn_id)
        assert uow.reversals.pending_count() == 0
    assert done is not None and done.state != "pending"
    assert sim.card(DEBIT).balance_minor == 100_000
    assert sim.auth_state(first.record.txn_id) == "reversed"
    assert_balances(shop, {})


def test_declines(shop: ServiceContext, sim: IssuerSimulator) -> None:
    assert sale(shop, 200_000).response_code is RC.INSUFFICIENT_FUNDS
    assert sale(shop, 100, pin="000000").response_code is RC.INCORRECT_PIN
    assert sale(shop, 100, pin="000000").response_code is RC.INCORRECT_PIN
    assert sale(shop, 100, pin="000000").response_code is RC.PIN_TRIES_EXCEEDED
    assert sale(shop, 100).response_code is RC.PIN_TRIES_EXCEEDED
    lost = "6222020200112345687"
    sim.add_card(lost, balance_minor=10_000, status=CardStatus.LOST)
    assert sale(shop, 100, pan=lost).response_code is RC.LOST_CARD
    assert sale(shop, 6_000_000).response_code is RC.EXCEEDS_AMOUNT_LIMIT
    bad = sale(shop, 100, pan="6222020200112345670")
    assert bad.response_code is RC.INVALID_CARD_NUMBER and bad.record is None
    assert unsettled(shop) == 0
    assert_balances(shop, {})
    ledger_ok(shop)


def test_timeout_reverses_at_channel(shop: ServiceContext, sim: IssuerSimulator) -> None:
    shop.settings.channel_timeout_s = 0.2
    sim.inject(FaultKind.LATE_ANSWER, latency_ms=600)
    result = sale(shop, 700)
    assert result.response_code is RC.ISSUER_TIMEOUT
    assert result.record is not None and result.record.status == "reversed"
    import time
    time.sleep(0.8)  # the late answer lands at the simulator
    reversals.process_reversals(shop)
    assert sim.card(DEBIT).balance_minor == 100_000
    assert sim.auth_state(result.record.txn_id) == "reversed"
    assert unsettled(shop) == 0
    assert_balances(shop, {})
    ledger_ok(shop)


def test_reversal_that_overtakes_its_original_refuses_the_original(
        shop: ServiceContext, sim: IssuerSimulator) -> None:
    ack = reversals.reverse(shop, MID, TID, OriginalRef(batch_no="000001", stan="000042"), "98")
    assert ack.response_code is RC.APPROVED
    again = reversals.reverse(shop, MID, TID, OriginalRef(batch_no="000001", stan="000042"))
    assert again.response_code is RC.APPROVED
    late = payments.authorize(shop, PaymentRequest(TxnType.SALE, MID, TID, Money(900), card(),
                                                   batch_no="000001", stan="000042"))
    assert late.response_code is RC.DUPLICATE_TRANSMISSION
    assert sim.card(DEBIT).balance_minor == 100_000
    assert unsettled(shop) == 0
    assert_balances(shop, {})
    ledger_ok(shop)
