"""Risk control through ``services.payments.authorize`` (the REST and ISO 8583 path alike):
every rule kind and decision, the counters giving room back, the 23:00 cut-off, pre-
registration, review holds, versions fired. Both databases; balances checked where money
moves."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from paytools import (
    DEBIT,
    MID,
    PIN,
    TID,
    assert_ledger_balanced,
    make_pan,
    on_original,
    sale,
    seed_shop,
    txn_id,
    unsettled,
)

from autosettle.domain.merchants import CycleCode, MerchantType
from autosettle.domain.money import Money
from autosettle.domain.response_codes import ResponseCode as RC
from autosettle.domain.transactions import TxnType
from autosettle.services import merchants, payments, reversals, risk
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.services.payments import CardInput, OriginalRef, PaymentRequest
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.store.tables import settlement_items

CREDIT = make_pan(7, "625802")
VISA = "4111111111111111"
SHOP_TIME = datetime(2026, 9, 18, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
BIG = 10**10


@pytest.fixture
def shop(ctx: ServiceContext, sim: IssuerSimulator) -> ServiceContext:
    seed_shop(ctx, sim, balance_minor=BIG)
    sim.add_card(CREDIT, kind="credit", credit_limit_minor=BIG, pin=PIN)
    sim.add_card(VISA, balance_minor=BIG, pin=PIN)
    return ctx


def rule(ctx: ServiceContext, rule_id: str, kind: str, params: dict[str, Any],
         scope: str = "merchant", scope_value: str | None = MID, action: str = "decline",
         card_kind: str | None = None) -> None:
    risk.put_rule(ctx, SYSTEM, rule_id, risk.RuleInput(kind, scope, action, params,
                                                       scope_value, card_kind))


def decision(ctx: ServiceContext, txn: str) -> Any:
    with ctx.db.unit_of_work() as uow:
        return uow.risk.decision(MID, txn)


def held_flags(ctx: ServiceContext, txn: str) -> list[bool]:
    with ctx.db.unit_of_work() as uow:
        rows = uow.connection.execute(settlement_items.select().where(
            settlement_items.c.source_txn_id == txn))
        return [bool(r.held) for r in rows]


def pay(ctx: ServiceContext, fen: int, pan: str = DEBIT, entry_mode: str | None = None,
        txn_type: TxnType = TxnType.SALE, terminal_id: str = TID) -> payments.PaymentResult:
    return payments.authorize(ctx, PaymentRequest(
        txn_type, MID, terminal_id, Money(fen), CardInput(pan, "3012", PIN, entry_mode)))


# -- single limits --------------------------------------------------------------------------

def test_the_merchants_own_limit_is_a_rule_and_declines_61_with_reasons(
        shop: ServiceContext) -> None:
    at_limit = sale(shop, 5_000_000)
    over = sale(shop, 5_000_001)
    assert at_limit.response_code is RC.APPROVED
    assert over.response_code is RC.EXCEEDS_AMOUNT_LIMIT
    assert over.record is not None and over.record.refusal_reason == "over_single_limit"
    assert "50,000.00" in over.message and "单笔" in over.message
    found = decision(shop, txn_id(over))
    assert found.decision == "decline" and found.response_code == "61"
    assert found.fired == ["merchant-limit@1"]
    assert decision(shop, txn_id(at_limit)) is None  # a plain approval writes no row
    assert unsettled(shop) == 5_000_000
    assert_ledger_balanced(shop)


def test_defaults_by_merchant_type_are_lower_for_micro_merchants(
        ctx: ServiceContext, sim: IssuerSimulator) -> None:
    merchants.create_merchant(ctx, SYSTEM, merchants.NewMerchant(
        MID, "Xiao Li Fruit Stall", MerchantType.MICRO, "5411",
        settlement_cycle=CycleCode.T1))
    merchants.add_terminal(ctx, SYSTEM, MID, merchants.NewTerminal(TID))
    sim.add_card(DEBIT, balance_minor=BIG, pin=PIN)
    assert sale(ctx, 2_000_000).response_code is RC.APPROVED
    over = sale(ctx, 2_000_001)
    assert over.response_code is RC.EXCEEDS_AMOUNT_LIMIT
    assert decision(ctx, txn_id(over)).fired == ["default:micro:single_max@0"]
    # the operator raises it for this merchant: the merchant scope wins over the type's
    rule(ctx, "lift-xiaoli", "single_max", {"amount_minor": 3_000_000})
    assert sale(ctx, 2_000_001).response_code is RC.APPROVED
    assert unsettled(ctx) == 4_000_001


def test_single_minimum_and_card_kind_specific_maximum(shop: ServiceContext) -> None:
    rule(shop, "min", "single_min", {"amount_minor": 100})
    rule(shop, "credit-max", "single_max", {"amount_minor": 50_000}, card_kind="credit")
    assert sale(shop, 99).response_code is RC.EXCEEDS_AMOUNT_LIMIT
    assert sale(shop, 100).response_code is RC.APPROVED
    assert sale(shop, 60_000, pan=CREDIT).response_code is RC.EXCEEDS_AMOUNT_LIMIT
    assert sale(shop, 60_000).response_code is RC.APPROVED  # debit: the generic limit


# -- cumulative counters ----------------------------------------------------------------------

def test_daily_amount_and_count_limits_decline_61_and_65(shop: ServiceContext) -> None:
    rule(shop, "day-amount", "cumulative", {"subject": "merchant", "period": "day",
                                            "amount_minor": 10_000})
    assert sale(shop, 6_000).response_code is RC.APPROVED
    assert sale(shop, 4_000).response_code is RC.APPROVED  # exactly at the limit
    over = sale(shop, 1)
    assert over.response_code is RC.EXCEEDS_AMOUNT_LIMIT
    assert over.record is not None and over.record.refusal_reason == "over_day_amount"
    rule(shop, "day-amount", "cumulative", {"subject": "merchant", "period": "day",
                                            "amount_minor": 100_000, "count": 3})
    assert sale(shop, 1).response_code is RC.APPROVED
    too_many = sale(shop, 1)
    assert too_many.response_code is RC.EXCEEDS_FREQUENCY_LIMIT
    assert decision(shop, txn_id(too_many)).fired == ["day-amount@2"]
    assert unsettled(shop) == 10_001
    assert_ledger_balanced(shop)


@pytest.mark.parametrize(("subject", "period"), [
    ("merchant", "day"), ("merchant", "month"), ("terminal", "day"), ("card", "month")])
def test_the_first_sale_over_a_counters_limit_is_declined_and_takes_nothing(
        shop: ServiceContext, subject: str, period: str) -> None:
    """A counter's first sale of the day or month inserts its row, and an insert is not
    checked by the upsert's WHERE: the check before the reservation must refuse it."""
    rule(shop, "limit", "cumulative", {"subject": subject, "period": period,
                                       "amount_minor": 5_000})
    first = sale(shop, 5_001)
    assert first.response_code is RC.EXCEEDS_AMOUNT_LIMIT
    assert first.record is not None and first.record.refusal_reason == f"over_{period}_amount"
    with shop.db.unit_of_work() as uow:
        keys = risk.rk.counter_keys(MID, TID, first.record.card_token, shop.now().date())
        assert uow.risk.usage(keys) == {}
    assert sale(shop, 5_000).response_code is RC.APPROVED  # exactly at the limit
    assert unsettled(shop) == 5_000
    assert_ledger_balanced(shop)


def test_a_refused_counter_takes_nothing_from_the_others(shop: ServiceContext) -> None:
    rule(shop, "term-day", "cumulative", {"subject": "terminal", "period": "day",
                                          "amount_minor": 5_000})
    rule(shop, "card-day", "cumulative", {"subject": "card", "period": "day", "count": 5})
    assert sale(shop, 5_000).response_code is RC.APPROVED
    assert sale(shop, 1).response_code is RC.EXCEEDS_AMOUNT_LIMIT
    with shop.db.unit_of_work() as uow:
        keys = [k for k in risk.rk.counter_keys(MID, TID, None, shop.now().date())]
        used = uow.risk.usage(keys)
    assert set(used.values()) == {(5_000, 1)}  # merchant and terminal, day and month


def test_void_refund_reversal_and_issuer_decline_give_room_back(
        shop: ServiceContext, sim: IssuerSimulator) -> None:
    rule(shop, "day", "cumulative", {"subject": "merchant", "period": "day",
                                     "amount_minor": 10_000, "count": 2})
    first = sale(shop, 10_000)
    assert sale(shop, 1).response_code is RC.EXCEEDS_AMOUNT_LIMIT
    assert on_original(shop, TxnType.VOID, txn_id(first)).response_code is RC.APPROVED
    second = sale(shop, 10_000)
    assert second.response_code is RC.APPROVED
    assert on_original(shop, TxnType.REFUND, txn_id(second), 4_000).response_code \
        is RC.APPROVED
    third = sale(shop, 4_000)  # the refunded amount is room again; the count is not
    assert third.response_code is RC.APPROVED
    assert sale(shop, 1).response_code is RC.EXCEEDS_AMOUNT_LIMIT  # 10,000 in 2 sales
    reversed_ = reversals.reverse(shop, MID, TID, OriginalRef(txn_id=txn_id(third)))
    assert reversed_.response_code is RC.APPROVED
    sim.add_card(DEBIT, balance_minor=10, pin=PIN)  # the issuer now declines (51)
    assert sale(shop, 4_000).response_code is RC.INSUFFICIENT_FUNDS
    sim.add_card(DEBIT, balance_minor=BIG, pin=PIN)
    assert sale(shop, 4_000).response_code is RC.APPROVED
    assert unsettled(shop) == 10_000 - 4_000 + 4_000
    assert_ledger_balanced(shop)


def test_a_reversed_void_takes_the_room_again(shop: ServiceContext) -> None:
    rule(shop, "day", "cumulative", {"subject": "merchant", "period": "day",
                                     "amount_minor": 10_000})
    first = sale(shop, 10_000)
    void = on_original(shop, TxnType.VOID, txn_id(first))
    assert reversals.reverse(shop, MID, TID, OriginalRef(txn_id=txn_id(void)),
                             txn_type=TxnType.VOID).response_code is RC.APPROVED
    assert sale(shop, 1).response_code is RC.EXCEEDS_AMOUNT_LIMIT
    assert unsettled(shop) == 10_000


def test_counters_follow_the_business_date_and_the_2300_cutoff(
        shop: ServiceContext, clock: Any) -> None:
    rule(shop, "day", "cumulative", {"subject": "merchant", "period": "day",
                                     "amount_minor": 10_000})
    clock.now = datetime(2026, 9, 18, 14, 59, 59, tzinfo=UTC)  # 22:59:59 Shanghai
    assert sale(shop, 8_000).response_code is RC.APPROVED
    assert sale(shop, 8_000).response_code is RC.EXCEEDS_AMOUNT_LIMIT
    clock.now = datetime(2026, 9, 18, 15, 0, tzinfo=UTC)  # 23:00: business day 19 Sep
    late = sale(shop, 8_000)
    assert late.response_code is RC.APPROVED
    assert late.record is not None and str(late.record.business_date) == "2026-09-19"
    assert sale(shop, 8_000).response_code is RC.EXCEEDS_AMOUNT_LIMIT


def test_monthly_limit_spans_business_days(shop: ServiceContext, clock: Any) -> None:
    rule(shop, "month", "cumulative", {"subject": "merchant", "period": "month", "count": 2})
    assert sale(shop, 100).response_code is RC.APPROVED
    clock.advance(days=1)
    assert sale(shop, 100).response_code is RC.APPROVED
    clock.advance(days=1)
    assert sale(shop, 100).response_code is RC.EXCEEDS_FREQUENCY_LIMIT
    clock.now = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)  # a new month
    assert sale(shop, 100).response_code is RC.APPROVED


# -- velocity, time windows, allowed methods, block lists -----------------------------------

def test_velocity_per_card_in_minutes(shop: ServiceContext, clock: Any) -> None:
    rule(shop, "vel", "velocity", {"count": 2, "minutes": 10})
    assert sale(shop, 100).response_code is RC.APPROVED
    clock.advance(minutes=5)
    assert sale(shop, 100).response_code is RC.APPROVED
    too_fast = sale(shop, 100)
    assert too_fast.response_code is RC.EXCEEDS_FREQUENCY_LIMIT
    assert too_fast.record is not None and too_fast.record.refusal_reason == "velocity"
    assert sale(shop, 100, pan=CREDIT).response_code is RC.APPROVED  # another card
    clock.advance(minutes=5, seconds=1)  # the first sale left the window
    assert sale(shop, 100).response_code is RC.APPROVED


def test_velocity_counts_only_the_cards_live_sales(shop: ServiceContext, clock: Any) -> None:
    """Velocity reads the card's own transactions: a voided sale, an issuer decline and a
    velocity decline do not count; a refunded sale still does (money went through). The
    card first pays three times, further apart than the window, so its month count is past
    the rule's and the count is read (no shortcut)."""
    rule(shop, "vel", "velocity", {"count": 2, "minutes": 10})
    for _ in range(3):
        assert sale(shop, 100).response_code is RC.APPROVED
        clock.advance(minutes=11)
    voided = sale(shop, 100)
    assert on_original(shop, TxnType.VOID, txn_id(voided)).response_code is RC.APPROVED
    wrong_pin = sale(shop, 100, pin="000000" if PIN != "000000" else "111111")
    assert wrong_pin.response_code is not RC.APPROVED  # the issuer declines
    refunded = sale(shop, 100)
    assert on_original(shop, TxnType.REFUND, txn_id(refunded), 100).response_code \
        is RC.APPROVED
    assert sale(shop, 100).response_code is RC.APPROVED  # second live sale of the card
    refused = sale(shop, 100)
    assert refused.response_code is RC.EXCEEDS_FREQUENCY_LIMIT
    assert sale(shop, 100).response_code is RC.EXCEEDS_FREQUENCY_LIMIT  # still two live
    clock.advance(minutes=10, seconds=1)
    assert sale(shop, 100).response_code is RC.APPROVED


@pytest.mark.parametrize(("local", "allowed"), [
    ("00:00", False), ("05:59", False), ("06:00", True), ("23:59", True)])
def test_time_window_per_mcc_edges(shop: ServiceContext, clock: Any, local: str,
                                   allowed: bool) -> None:
    rule(shop, "night", "time_window", {"start": "00:00", "end": "06:00"}, scope="mcc",
         scope_value="5411")
    hours, minutes = map(int, local.split(":"))
    clock.now = datetime(2026, 9, 18, hours, minutes, tzinfo=UTC) - timedelta(hours=8) \
        + timedelta(days=1)
    result = sale(shop, 100)
    expected = RC.APPROVED if allowed else RC.NOT_PERMITTED_TO_TERMINAL
    assert result.response_code is expected, result.message


def test_allowed_methods_refuse_the_unauthorised(shop: ServiceContext) -> None:
    rule(shop, "methods", "allowed", {"card_kinds": ["debit"], "entry_modes": ["chip"],
                                      "foreign_cards": False,
                                      "txn_types": ["sale", "void", "refund"]})
    assert pay(shop, 100, CREDIT, "051").response_code is RC.NOT_PERMITTED_TO_CARDHOLDER
    assert pay(shop, 100, DEBIT, "012").response_code is RC.NOT_PERMITTED_TO_TERMINAL
    assert pay(shop, 100, VISA, "051").response_code is RC.RESTRICTED_CARD
    assert pay(shop, 100, DEBIT, "051", TxnType.PREAUTH).response_code \
        is RC.NOT_PERMITTED_TO_TERMINAL
    assert pay(shop, 100, DEBIT, "051").response_code is RC.APPROVED
    assert unsettled(shop) == 100


@pytest.mark.parametrize("params", [
    {"card_tokens": ["TOKEN"]}, {"bin_ranges": [["622200", "622299"]]},
    {"terminals": [f"{MID}/{TID}"]}, {"merchants": [MID]}])
def test_block_lists_decline_05(shop: ServiceContext, params: dict[str, Any]) -> None:
    if "card_tokens" in params:
        params = {"card_tokens": [shop.tokenizer.describe(DEBIT).token]}
    rule(shop, "blocked", "block", params, scope="all", scope_value=None)
    result = sale(shop, 100)
    assert result.response_code is RC.DO_NOT_HONOUR
    assert result.record is not None and result.record.refusal_reason.startswith("blocked_")
    assert unsettled(shop) == 0


# -- review, alert, versions, risk off --------------------------------------------------------

def test_review_approves_and_holds_the_settlement_item_until_released(
        shop: ServiceContext) -> None:
    rule(shop, "big", "single_max", {"amount_minor": 100_000}, action="review")
    small, big = sale(shop, 100_000), sale(shop, 100_001)
    assert big.response_code is RC.APPROVED
    assert held_flags(shop, txn_id(big)) == [True]
    assert held_flags(shop, txn_id(small)) == [False]
    queue = risk.review_queue(shop, SYSTEM)
    assert [(q.decision.txn_id, q.held) for q in queue] == [(txn_id(big), True)]
    assert queue[0].decision.fired == ["big@1"]
    assert risk.set_review_hold(shop, SYSTEM, MID, txn_id(big), False) == 1
    assert held_flags(shop, txn_id(big)) == [False]
    assert unsettled(shop) == 200_001
    assert_ledger_balanced(shop)


def test_alert_approves_and_raises_an_alert(shop: ServiceContext) -> None:
    rule(shop, "watch", "single_max", {"amount_minor": 1_000}, action="alert")
    result = sale(shop, 2_000)
    assert result.response_code is RC.APPROVED
    assert decision(shop, txn_id(result)).decision == "alert"
    with shop.db.unit_of_work() as uow:
        alerts = uow.alerts.open_alerts(MID)
    assert [a.kind for a in alerts] == ["risk_alert"]
    assert held_flags(shop, txn_id(result)) == [False]


def test_edits_are_versions_and_decisions_name_the_version_that_fired(
        shop: ServiceContext) -> None:
    rule(shop, "cap", "single_max", {"amount_minor": 1_000})
    rule(shop, "cap", "single_max", {"amount_minor": 2_000})
    assert sale(shop, 1_500).response_code is RC.APPROVED
    refused = sale(shop, 2_500)
    assert decision(shop, txn_id(refused)).fired == ["cap@2"]
    assert [v.rule.version for v in risk.rule_versions(shop, SYSTEM, "cap")] == [1, 2]
    risk.deactivate_rule(shop, SYSTEM, "cap")
    assert sale(shop, 2_500).response_code is RC.APPROVED


def test_risk_off_checks_nothing(shop: ServiceContext) -> None:
    off = replace(shop, settings=shop.settings.model_copy(update={"risk_enabled": False}))
    assert sale(off, 6_000_000).response_code is RC.APPROVED


# -- pre-registration (报备) -------------------------------------------------------------------

def test_a_preregistered_large_sale_passes_once(shop: ServiceContext,
                                                clock: Any) -> None:
    rule(shop, "day", "cumulative", {"subject": "merchant", "period": "day",
                                     "amount_minor": 6_000_000})
    now = clock.now
    reg = risk.preregister(shop, SYSTEM, MID, risk.NewPreregistration(
        8_000_000, now - timedelta(minutes=1), now + timedelta(hours=2), card_last4=DEBIT[-4:]))
    assert sale(shop, 7_000_000, pan=CREDIT).response_code is RC.EXCEEDS_AMOUNT_LIMIT
    first = sale(shop, 7_000_000)
    assert first.response_code is RC.APPROVED
    assert decision(shop, txn_id(first)).preregistration_id == reg.prereg_id
    assert sale(shop, 7_000_000).response_code is RC.EXCEEDS_AMOUNT_LIMIT  # once
    [used] = risk.list_preregistrations(shop, SYSTEM, MID)
    assert used.status == "used" and used.used_txn_id == txn_id(first)
    assert unsettled(shop) == 7_000_000


def test_an_expired_preregistration_lets_nothing_through(shop: ServiceContext,
                                                         clock: Any) -> None:
    now = clock.now
    reg = risk.preregister(shop, SYSTEM, MID, risk.NewPreregistration(
        8_000_000, now, now + timedelta(hours=1)))
    clock.advance(hours=1)
    assert sale(shop, 7_000_000).response_code is RC.EXCEEDS_AMOUNT_LIMIT
    [found] = risk.list_preregistrations(shop, SYSTEM, MID)
    assert risk.preregistration_state(found, clock.now) == "expired"
    assert found.prereg_id == reg.prereg_id


def test_merchant_view_shows_limits_usage_and_reasons(shop: ServiceContext) -> None:
    rule(shop, "day", "cumulative", {"subject": "merchant", "period": "day",
                                     "amount_minor": 10_000})
    sale(shop, 7_000)
    refused = sale(shop, 7_000)
    view = risk.merchant_view(shop, SYSTEM, MID)
    day = next(item for item in view.limits if item.rule == "day@1")
    assert (day.limit_amount_minor, day.used_amount_minor, day.used_count) == (10_000, 7_000, 1)
    assert any(item.rule == "merchant-limit@1" for item in view.limits)
    [why] = view.decisions
    assert why.decision.txn_id == txn_id(refused) and "限额" in why.decision.reason_zh
