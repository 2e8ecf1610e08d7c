"""The documented settlement rules, one test each, on both databases.

docs/settlement.md ("Rules and the tests that guard them") lists every rule with the test
that fails when the rule is taken out of the code; the rules no other test pinned down are
here. Everything is made through the services: merchants, card payments against the issuer
simulator, settlement runs, payouts; every test checks the balance of each account it moves
(and that no other account moved).

The merchants of ``jobtools.add_merchant`` are supermarkets (MCC 5411) on the built-in
discounted price list: debit 0.41 % capped at 18.00, credit 0.51 %, foreign cards 1.50 %,
other cards 0.60 %, 2.00 per same-day (T+0/D+0) payout, fees returned pro rata on refunds.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from jobtools import (
    CHANNEL_RECEIVABLE,
    FEE_INCOME,
    PAYOUT_CLEARING,
    SAME_DAY_SURCHARGE_MINOR,
    ClockLike,
    add_merchant,
    add_sales,
    advance_clock_to,
    assert_balances,
    batches,
    fee_of,
    merchant_payable,
    merchant_receivable,
    merchant_unsettled,
    mid,
    pay,
    shanghai,
    tid,
)

from autosettle.domain.cards import luhn_check_digit
from autosettle.domain.errors import ConflictError
from autosettle.domain.ledger import Account, AccountType, transfer
from autosettle.domain.merchants import AccountType as BankAccountType
from autosettle.domain.merchants import CycleCode, MerchantStatus, MerchantType
from autosettle.domain.money import Money
from autosettle.domain.transactions import TxnType
from autosettle.services import (
    alerts,
    fee_schedules,
    ledger,
    maintenance,
    merchants,
    payouts,
    reversals,
)
from autosettle.services import settlement as settlement_service
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.services.payments import OriginalRef
from autosettle.services.settlement import NEXT_DAY, SAME_DAY

WED = date(2026, 9, 16)   # an ordinary workday
THU, FRI = WED + timedelta(days=1), WED + timedelta(days=2)
CREDIT_PAN = "6258020000000000004"   # BIN 625802: a credit card
FOREIGN_PAN = "4111111111111111"     # a Visa card: foreign
OTHER_PAN = "621234000000000" + luhn_check_digit("621234000000000")  # UnionPay, BIN unknown
SURCHARGE = SAME_DAY_SURCHARGE_MINOR


def settle(ctx: ServiceContext, day: date, cycles: tuple[str, ...],
           key: str | None = None) -> settlement_service.RunSummary:
    advance_clock_to(ctx, day)  # a run may not be dated after the current business date
    summary = settlement_service.settle(ctx, day, cycles, key)
    assert summary.errors == [], summary.errors
    return summary


def at_noon(clock: ClockLike, day: date) -> None:
    clock.now = shanghai(day.year, day.month, day.day, 12)


def merchant_with_account(ctx: ServiceContext, merchant_id: str, holder: str,
                          cycle: str = "D0") -> None:
    """Like ``add_merchant``, but its only account is held by ``holder``."""
    merchants.create_merchant(ctx, SYSTEM, merchants.NewMerchant(
        merchant_id, f"Shop {merchant_id} Co., Ltd.", MerchantType.ENTERPRISE, "5411",
        settlement_cycle=CycleCode(cycle)))
    merchants.add_settlement_account(ctx, SYSTEM, merchant_id, merchants.NewSettlementAccount(
        "ICBC", f"62122602{merchant_id[-8:]}7", holder, BankAccountType.CORPORATE))
    merchants.add_terminal(ctx, SYSTEM, merchant_id, merchants.NewTerminal(tid(merchant_id)))


# -- the same-day surcharge ------------------------------------------------------------------

def test_same_day_cycles_pay_the_surcharge_and_next_day_cycles_do_not(
        ctx: ServiceContext) -> None:
    shops = {cycle: mid(n) for n, cycle in enumerate(("T0", "T1", "D0", "D1"), start=1)}
    for cycle, merchant_id in shops.items():
        add_merchant(ctx, merchant_id, cycle)
        add_sales(ctx, merchant_id, WED, [100_000])
    settle(ctx, WED, SAME_DAY)
    settle(ctx, THU, NEXT_DAY)
    fee, net = fee_of(100_000), 100_000 - fee_of(100_000)
    assert {cycle: [(b["surcharge_minor"], b["payout_minor"]) for b in batches(ctx, m)]
            for cycle, m in shops.items()} == {
        "T0": [(SURCHARGE, net - SURCHARGE)], "D0": [(SURCHARGE, net - SURCHARGE)],
        "T1": [(0, net)], "D1": [(0, net)]}
    assert_balances(ctx, {
        CHANNEL_RECEIVABLE: 400_000, FEE_INCOME: -(4 * fee + 2 * SURCHARGE),
        merchant_payable(shops["T0"]): -(net - SURCHARGE),
        merchant_payable(shops["D0"]): -(net - SURCHARGE),
        merchant_payable(shops["T1"]): -net, merchant_payable(shops["D1"]): -net})


def test_no_surcharge_on_a_payout_that_would_not_cover_it(ctx: ServiceContext) -> None:
    shop = mid(1)
    add_merchant(ctx, shop, "D0")
    add_sales(ctx, shop, WED, [150])   # fee 0.615 → 1: the batch nets 1.49 < 2.00
    summary = settle(ctx, WED, SAME_DAY)
    assert (summary.batches, summary.payout_minor) == (1, 149)
    assert [b["surcharge_minor"] for b in batches(ctx, shop)] == [0]
    assert_balances(ctx, {CHANNEL_RECEIVABLE: 150, FEE_INCOME: -1,
                          merchant_payable(shop): -149})


def test_a_batch_that_recovers_debt_is_not_charged_the_surcharge(
        ctx: ServiceContext, clock: ClockLike) -> None:
    shop = mid(1)
    add_merchant(ctx, shop, "D0")
    at_noon(clock, WED)
    sale = pay(ctx, shop, TxnType.SALE, 10_000)                  # fee 41
    settle(ctx, WED, SAME_DAY, "paid")                            # pays 100.00 − 0.41 − 2.00
    paid = assert_balances(ctx, {CHANNEL_RECEIVABLE: 10_000, FEE_INCOME: -(41 + SURCHARGE),
                                 merchant_payable(shop): -(10_000 - 41 - SURCHARGE)})
    pay(ctx, shop, TxnType.REFUND, 10_000, original=sale)         # the fee comes back
    settle(ctx, WED, SAME_DAY, "refund")                          # pays nothing: debt
    debt = 10_000 - 41
    owed = assert_balances(ctx, {CHANNEL_RECEIVABLE: -10_000, FEE_INCOME: 41,
                                 merchant_receivable(shop): debt}, since=paid)
    pay(ctx, shop, TxnType.SALE, 10_050)                          # fee 41.205 → 41
    settle(ctx, WED, SAME_DAY, "recover")
    # 10,009 net: the debt (9,959) first, 50 left: less than the surcharge, so no charge
    assert_balances(ctx, {CHANNEL_RECEIVABLE: 10_050, FEE_INCOME: -41,
                          merchant_receivable(shop): -debt, merchant_payable(shop): -50},
                    since=owed)
    assert [(b["run_key"][:7], b["surcharge_minor"], b["debt_recovered_minor"],
             b["payout_minor"]) for b in batches(ctx, shop)] == [
        ("paid:D0", SURCHARGE, 0, 10_000 - 41 - SURCHARGE), ("refund:", 0, 0, 0),
        ("recover", 0, debt, 50)]


# -- fees --------------------------------------------------------------------------------------

def test_fee_rate_cap_minimum_and_fixed_fee_per_card_kind_and_the_surcharge_rate(
        ctx: ServiceContext) -> None:
    shop = mid(1)
    add_merchant(ctx, shop, "D0")
    fee_schedules.set_schedule(ctx, SYSTEM, shop, {
        "effective_from": FRI.isoformat(),
        "rates": {"debit": {"rate": "0.0050", "cap_minor": 500, "minimum_minor": 100},
                  "credit": {"rate": "0.0060"},
                  "foreign": {"rate": "0.0150", "minimum_minor": 300}},
        "fallback": {"rate": "0.0100"}, "fixed_fee_minor": 10,
        "same_day_surcharge": {"rate": "0.0010", "fixed_minor": 100}})
    sales = [  # (card, amount, fee: the rule's rate, raised to its minimum, capped, + 0.10)
        (None, 10_000, 100 + 10),          # 0.50 % = 50 → the debit minimum 1.00
        (None, 200_000, 500 + 10),         # 0.50 % = 1,000 → the debit cap 5.00
        (CREDIT_PAN, 10_001, 60 + 10),     # 0.60 % = 60.006 → 60
        (FOREIGN_PAN, 10_000, 300 + 10),   # 1.50 % = 150 → the foreign minimum 3.00
        (OTHER_PAN, 10_050, 101 + 10),     # no rule for "other": the fallback, 100.5 → 101
    ]
    for pan, amount, _ in sales:
        pay(ctx, shop, TxnType.SALE, amount, **({"pan": pan} if pan else {}))
    gross, fees = sum(a for _, a, _ in sales), sum(f for _, _, f in sales)
    surcharge = 239 + 100   # 0.10 % of the payout before it (238,940 → 238.94 → 239) + 1.00
    settle(ctx, FRI, SAME_DAY)
    [batch] = batches(ctx, shop)
    assert (batch["gross_minor"], batch["fee_minor"], batch["surcharge_minor"]) == (
        gross, fees, surcharge)
    assert_balances(ctx, {CHANNEL_RECEIVABLE: gross, FEE_INCOME: -(fees + surcharge),
                          merchant_payable(shop): -(gross - fees - surcharge)})


def test_partial_refunds_return_the_fee_pro_rata_with_cumulative_rounding(
        ctx: ServiceContext, clock: ClockLike) -> None:
    shop = mid(1)
    add_merchant(ctx, shop, "D1")
    at_noon(clock, WED)
    whole = pay(ctx, shop, TxnType.SALE, 10_001, pan=CREDIT_PAN)   # 0.51 % = 51.0051 → 51
    half = pay(ctx, shop, TxnType.SALE, 10_001, pan=CREDIT_PAN)
    credits = []
    for amount in (100, 100, 9_801):   # refunded in full, in three parts
        refund = pay(ctx, shop, TxnType.REFUND, amount, original=whole)
        with ctx.db.unit_of_work() as uow:
            [item] = uow.settlement.items_of_txn(shop, refund)
        credits.append(-item.fee_minor)
    # each credit is round(51 × refunded so far / 10,001) less what was credited before:
    # round(0.51) = 1, round(1.02) = 1, 51: the whole fee once, never more
    assert credits == [1, 0, 50]
    pay(ctx, shop, TxnType.REFUND, 5_000, original=half)   # round(25.4975) = 25 back
    at_noon(clock, THU)   # a run may not be dated after the current business date
    settle(ctx, THU, NEXT_DAY)
    gross, fees = 10_001 - 5_000, 51 - 25
    assert_balances(ctx, {CHANNEL_RECEIVABLE: gross, FEE_INCOME: -fees,
                          merchant_payable(shop): -(gross - fees)})


def test_a_reversal_takes_the_sale_and_its_fee_back(ctx: ServiceContext,
                                                    clock: ClockLike) -> None:
    shop = mid(1)
    add_merchant(ctx, shop, "D1")
    at_noon(clock, WED)
    pay(ctx, shop, TxnType.SALE, 20_000)
    gone = pay(ctx, shop, TxnType.SALE, 10_000)
    assert reversals.reverse(ctx, shop, tid(shop), OriginalRef(txn_id=gone)).approved
    at_noon(clock, THU)
    settle(ctx, THU, NEXT_DAY)
    assert [(b["item_count"], b["gross_minor"], b["fee_minor"]) for b in batches(ctx, shop)] \
        == [(3, 20_000, fee_of(20_000))]
    assert_balances(ctx, {CHANNEL_RECEIVABLE: 20_000, FEE_INCOME: -fee_of(20_000),
                          merchant_payable(shop): -(20_000 - fee_of(20_000))})


# -- what a run leaves out ---------------------------------------------------------------------

def test_a_run_settles_what_is_due_by_its_date_and_nothing_later(
        ctx: ServiceContext) -> None:
    shop = mid(1)
    add_merchant(ctx, shop, "D1")
    net = add_sales(ctx, shop, WED, [10_000])   # due Thursday
    add_sales(ctx, shop, THU, [20_000])         # due Friday
    assert settle(ctx, THU, NEXT_DAY).items == 1
    thursday = assert_balances(ctx, {CHANNEL_RECEIVABLE: 30_000,
                                     merchant_unsettled(shop): -20_000,
                                     FEE_INCOME: -(10_000 - net), merchant_payable(shop): -net})
    assert settle(ctx, FRI, NEXT_DAY).items == 1
    assert_balances(ctx, {merchant_unsettled(shop): 20_000, FEE_INCOME: -fee_of(20_000),
                          merchant_payable(shop): -(20_000 - fee_of(20_000))}, since=thursday)


def test_a_held_transaction_is_carried_and_settled_once_released(
        ctx: ServiceContext, clock: ClockLike) -> None:
    shop = mid(1)
    add_merchant(ctx, shop, "T1")
    at_noon(clock, WED)
    held = pay(ctx, shop, TxnType.SALE, 10_000)
    pay(ctx, shop, TxnType.SALE, 20_000)
    assert settlement_service.hold_transaction(ctx, shop, held) == 1
    at_noon(clock, THU)
    assert settle(ctx, THU, NEXT_DAY).items == 1
    first = assert_balances(ctx, {
        CHANNEL_RECEIVABLE: 30_000, merchant_unsettled(shop): -10_000,
        FEE_INCOME: -fee_of(20_000), merchant_payable(shop): -(20_000 - fee_of(20_000))})
    at_noon(clock, FRI)
    assert settle(ctx, FRI, NEXT_DAY).batches == 0   # still held: carried, not lost
    assert settlement_service.hold_transaction(ctx, shop, held, held=False) == 1
    assert settle(ctx, FRI, NEXT_DAY, "after-release").items == 1
    assert_balances(ctx, {merchant_unsettled(shop): 10_000, FEE_INCOME: -fee_of(10_000),
                          merchant_payable(shop): -(10_000 - fee_of(10_000))}, since=first)


def test_a_merchant_that_is_not_active_is_carried_until_it_is(ctx: ServiceContext) -> None:
    shop = mid(1)
    add_merchant(ctx, shop, "D1")
    add_sales(ctx, shop, WED, [10_000])
    merchants.set_merchant_status(ctx, SYSTEM, shop, MerchantStatus.SUSPENDED)
    run = settle(ctx, THU, NEXT_DAY)
    assert (run.batches, run.carried_merchants) == (0, [shop])
    captured = assert_balances(ctx, {CHANNEL_RECEIVABLE: 10_000,
                                     merchant_unsettled(shop): -10_000})
    merchants.set_merchant_status(ctx, SYSTEM, shop, MerchantStatus.ACTIVE)
    assert settle(ctx, FRI, NEXT_DAY).batches == 1
    assert_balances(ctx, {merchant_unsettled(shop): 10_000, FEE_INCOME: -fee_of(10_000),
                          merchant_payable(shop): -(10_000 - fee_of(10_000))}, since=captured)


def test_one_merchant_failing_does_not_stop_the_others(ctx: ServiceContext) -> None:
    good, bad = mid(1), mid(2)
    for shop in (good, bad):
        add_merchant(ctx, shop, "D0")
        add_sales(ctx, shop, WED, [10_000])
    with ctx.db.unit_of_work() as uow:   # a damaged fee schedule row: its settlement raises
        uow.config.add_fee_schedule(bad, 1, WED, {"schedule_id": "damaged"}, ctx.now())
    run = settlement_service.settle(ctx, WED, SAME_DAY)
    assert run.batches == 1 and len(run.errors) == 1 and run.errors[0].startswith(bad)
    assert [(a.kind, a.severity) for a in alerts.list_alerts(ctx, SYSTEM, bad)] == [
        ("settlement_failed", "error")]
    assert alerts.list_alerts(ctx, SYSTEM, good) == []
    paid = 10_000 - fee_of(10_000) - SURCHARGE
    assert_balances(ctx, {CHANNEL_RECEIVABLE: 20_000, merchant_unsettled(bad): -10_000,
                          FEE_INCOME: -(10_000 - paid), merchant_payable(good): -paid})


def test_a_t_cycle_batch_dated_on_a_closed_day_arrives_the_next_workday(
        ctx: ServiceContext, clock: ClockLike) -> None:
    shop = mid(1)
    add_merchant(ctx, shop, "T1")
    thursday, monday = date(2026, 9, 10), date(2026, 9, 14)
    at_noon(clock, thursday)
    pay(ctx, shop, TxnType.SALE, 10_000)                       # T+1: Friday 09-11
    at_noon(clock, monday)
    settle(ctx, monday, NEXT_DAY)                              # the merchant's cursor: 09-14
    maintenance.set_calendar_override(ctx, SYSTEM, monday, False, "bank closure")
    at_noon(clock, thursday)
    pay(ctx, shop, TxnType.SALE, 20_000)                       # late, due Friday 09-11
    at_noon(clock, monday)
    settle(ctx, date(2026, 9, 11), NEXT_DAY)                   # a catch-up run
    assert [(b["settlement_date"], b["expected_arrival"]) for b in batches(ctx, shop)] == [
        (monday, monday), (monday, date(2026, 9, 15))]   # dated at the cursor, now closed
    assert_balances(ctx, {CHANNEL_RECEIVABLE: 30_000,
                          FEE_INCOME: -(fee_of(10_000) + fee_of(20_000)),
                          merchant_payable(shop): -(30_000 - fee_of(10_000) - fee_of(20_000))})


# -- payouts -------------------------------------------------------------------------------------

def test_yiqing_blocks_only_the_payout_of_the_merchant_without_its_own_account(
        ctx: ServiceContext) -> None:
    good, bad = mid(1), mid(2)
    add_merchant(ctx, good, "D0")
    merchant_with_account(ctx, bad, "Somebody Else Trading Co., Ltd.")
    for shop in (good, bad):
        add_sales(ctx, shop, WED, [10_000])
    run = settle(ctx, WED, SAME_DAY)
    assert (run.batches, run.blocked_payouts) == (2, 1)
    paid = 10_000 - fee_of(10_000) - SURCHARGE
    settled = assert_balances(ctx, {CHANNEL_RECEIVABLE: 20_000, FEE_INCOME: -2 * (10_000 - paid),
                                    merchant_payable(good): -paid, merchant_payable(bad): -paid})
    with ctx.db.unit_of_work() as uow:
        status = {p.merchant_id: p.status for p in uow.settlement.payouts()}
        [blocked] = uow.settlement.payouts(merchant_id=bad)
        assert uow.settlement.batch(blocked.batch_id).status == "payout_blocked"  # type: ignore[union-attr]
    assert status == {good: "pending", bad: "blocked"}
    assert [(a.kind, a.severity) for a in alerts.list_alerts(ctx, SYSTEM, bad)] == [
        ("payout_blocked", "critical")]
    assert alerts.list_alerts(ctx, SYSTEM, good) == []
    assert payouts.export_payouts(ctx, WED).count == 1   # the other merchant is paid
    sent = assert_balances(ctx, {merchant_payable(good): paid, PAYOUT_CLEARING: -paid},
                           since=settled)
    with pytest.raises(ConflictError, match="no verified account"):
        payouts.retry_payout(ctx, SYSTEM, blocked.payout_id)   # not before it is fixed
    merchants.add_settlement_account(ctx, SYSTEM, bad, merchants.NewSettlementAccount(
        "ICBC", "6212260200007654321", f"Shop {bad} Co., Ltd.", BankAccountType.CORPORATE))
    assert payouts.retry_payout(ctx, SYSTEM, blocked.payout_id).status == "pending"
    assert payouts.export_payouts(ctx, WED).count == 2
    assert_balances(ctx, {merchant_payable(bad): paid, PAYOUT_CLEARING: -paid}, since=sent)


def test_a_retry_never_pays_more_than_the_merchant_is_owed(ctx: ServiceContext) -> None:
    shop = mid(1)
    add_merchant(ctx, shop, "D0")
    add_sales(ctx, shop, WED, [10_000])
    settle(ctx, WED, SAME_DAY)
    payouts.export_payouts(ctx, WED)
    with ctx.db.unit_of_work() as uow:
        [payout] = uow.settlement.payouts(merchant_id=shop)
    payouts.fail_payout(ctx, payout.payout_id, "account closed")
    failed = assert_balances(ctx, {CHANNEL_RECEIVABLE: 10_000,
                                   FEE_INCOME: -(10_000 - payout.amount_minor),
                                   merchant_payable(shop): -payout.amount_minor})
    correction = Account(AccountType.ADJUSTMENTS)   # an operator takes 1.00 back meanwhile
    ledger.post(ctx, transfer("correction-1", "adjustment",
                              Account(AccountType.MERCHANT_PAYABLE, shop), correction,
                              Money(100), merchant_id=shop))
    with pytest.raises(ConflictError, match="exceeds the payable"):
        payouts.retry_payout(ctx, SYSTEM, payout.payout_id)
    assert_balances(ctx, {merchant_payable(shop): 100, correction.code: -100}, since=failed)
