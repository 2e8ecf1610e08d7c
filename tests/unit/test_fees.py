"""Fee schedules: per-transaction fees, same-day surcharges, refunds, versions, defaults."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autosettle.domain.calendar import Cycle, CycleKind, SettlementCycle
from autosettle.domain.cards import CardKind
from autosettle.domain.errors import ErrorCode, NotFoundError, ValidationError
from autosettle.domain.fees import (
    DISCOUNTED_MCCS,
    FeeSchedule,
    FeeScheduleHistory,
    PayoutSurcharge,
    RateRule,
    RefundFeePolicy,
    compare_cycles,
    default_schedule_for,
    payout_surcharge,
    refund_fee_credit,
    schedule_for,
    transaction_fee,
)
from autosettle.domain.money import AMOUNT_MINOR_MAX, Money, currency

M = Money.parse
USD = currency("USD")
DEBIT, CREDIT, FOREIGN, OTHER = CardKind.DEBIT, CardKind.CREDIT, CardKind.FOREIGN, CardKind.OTHER


def make_schedule(
    *,
    version: int = 1,
    effective_from: date = date(2026, 1, 1),
    debit: RateRule | None = None,
    fixed: str = "0.00",
    surcharge: PayoutSurcharge | None = None,
    policy: RefundFeePolicy = RefundFeePolicy.PRO_RATA,
) -> FeeSchedule:
    return FeeSchedule(
        schedule_id="m-1",
        version=version,
        effective_from=effective_from,
        rates={
            DEBIT: debit or RateRule(Decimal("0.0050"), cap=M("20.00")),
            CREDIT: RateRule(Decimal("0.0060")),
        },
        fallback=RateRule(Decimal("0.0100")),
        fixed_fee=M(fixed),
        same_day_surcharge=surcharge or PayoutSurcharge(Decimal("0.0005"), M("2.00")),
        refund_fee_policy=policy,
    )


STD = make_schedule()


# -- per-transaction fees ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("amount", "kind", "fee"),
    [
        ("5000.00", DEBIT, "20.00"),  # 25.00 capped at 20.00
        ("100.00", DEBIT, "0.50"),
        ("4000.00", DEBIT, "20.00"),  # exactly at the cap
        ("3999.00", DEBIT, "20.00"),  # 19.995 rounds half up to the cap
        ("3998.00", DEBIT, "19.99"),
        ("5000.00", CREDIT, "30.00"),  # credit is not capped
        ("100.00", OTHER, "1.00"),  # not listed: the fallback rule
        ("100.00", FOREIGN, "1.00"),
    ],
)
def test_transaction_fee(amount: str, kind: CardKind, fee: str) -> None:
    assert transaction_fee(STD, M(amount), kind) == M(fee)


@pytest.mark.parametrize(
    ("minor", "fee_minor"),
    [(101, 1), (100, 1), (99, 0), (300, 2), (301, 2), (299, 1)],  # 0.505, 0.5, 0.495, 1.5 ...
)
def test_halves_round_up_once(minor: int, fee_minor: int) -> None:
    assert transaction_fee(STD, Money(minor), DEBIT) == Money(fee_minor)


def test_minimum_and_fixed_fee() -> None:
    schedule = make_schedule(debit=RateRule(Decimal("0.0050"), M("20.00"), M("0.10")),
                             fixed="0.30")
    assert transaction_fee(schedule, M("10.00"), DEBIT) == M("0.40")  # 0.05 → min 0.10 + 0.30
    assert transaction_fee(schedule, M("100.00"), DEBIT) == M("0.80")
    assert transaction_fee(schedule, M("5000.00"), DEBIT) == M("20.30")
    assert transaction_fee(schedule, M("0.00"), DEBIT) == M("0.00")  # nothing, nothing owed


def test_fee_refuses_other_currency_and_negative() -> None:
    with pytest.raises(ValidationError) as excinfo:
        transaction_fee(STD, Money(100, USD), DEBIT)
    assert excinfo.value.code is ErrorCode.CURRENCY_MISMATCH
    with pytest.raises(ValidationError):
        transaction_fee(STD, Money(-100), DEBIT)


# -- schedule validation ------------------------------------------------------------------
@pytest.mark.parametrize(
    "build",
    [
        lambda: RateRule(Decimal(1)),
        lambda: RateRule(Decimal("-0.001")),
        lambda: RateRule(Decimal("NaN")),
        lambda: RateRule(0.005),  # type: ignore[arg-type]
        lambda: RateRule(Decimal("0.005"), cap=M("1.00"), minimum=M("2.00")),
        lambda: RateRule(Decimal("0.005"), cap=Money(100, USD), minimum=M("0.10")),
        lambda: RateRule(Decimal("0.005"), cap=Money(-1)),
        lambda: PayoutSurcharge(Decimal("1.5")),
        lambda: PayoutSurcharge(fixed=Money(-200)),
        lambda: make_schedule(version=0),
        lambda: FeeSchedule(" ", 1, date(2026, 1, 1), {}, RateRule(Decimal(0))),
        lambda: make_schedule(debit=RateRule(Decimal("0.005"), cap=Money(2000, USD))),
        lambda: FeeSchedule("m", 1, date(2026, 1, 1), {}, RateRule(Decimal(0)),
                            fixed_fee=Money(30, USD)),
        lambda: FeeSchedule("m", 1, date(2026, 1, 1),
                            {"debit": RateRule(Decimal(0))},  # type: ignore[dict-item]
                            RateRule(Decimal(0))),
    ],
)
def test_invalid_schedules_are_refused(build: Callable[[], object]) -> None:
    with pytest.raises(ValidationError):
        build()


def test_schedule_is_immutable_and_copies_its_rates() -> None:
    rates = {DEBIT: RateRule(Decimal("0.005"))}
    schedule = FeeSchedule("m", 1, date(2026, 1, 1), rates, RateRule(Decimal("0.006")))
    rates[CREDIT] = RateRule(Decimal("0.5"))
    assert schedule.rule_for(CREDIT) == RateRule(Decimal("0.006"))
    with pytest.raises(TypeError):
        schedule.rates[CREDIT] = RateRule(Decimal(0))  # type: ignore[index]
    assert hash(schedule) == hash(FeeSchedule("m", 1, date(2026, 1, 1), rates,
                                              RateRule(Decimal("0.006"))))


# -- same-day surcharge ---------------------------------------------------------------------
def test_payout_surcharge_only_for_same_day_cycles() -> None:
    payout = M("1000.00")
    assert payout_surcharge(STD, SettlementCycle.D0, payout) == M("2.50")  # 0.50 + 2.00
    assert payout_surcharge(STD, SettlementCycle.T0, payout) == M("2.50")
    assert payout_surcharge(STD, "T+0", payout) == M("2.50")
    assert payout_surcharge(STD, SettlementCycle.T1, payout) == M("0.00")
    assert payout_surcharge(STD, SettlementCycle.D1, payout) == M("0.00")
    assert payout_surcharge(STD, Cycle(CycleKind.T, 2), payout) == M("0.00")
    assert payout_surcharge(STD, SettlementCycle.D0, M("0.00")) == M("0.00")


def test_fixed_only_surcharge() -> None:
    schedule = make_schedule(surcharge=PayoutSurcharge(fixed=M("3.00")))
    assert payout_surcharge(schedule, SettlementCycle.D0, M("12345.67")) == M("3.00")


# -- versions ------------------------------------------------------------------------------
V1 = make_schedule(version=1, effective_from=date(2026, 1, 1))
V2 = make_schedule(version=2, effective_from=date(2026, 3, 15),
                   debit=RateRule(Decimal("0.0045"), cap=M("18.00")))


def test_fee_change_mid_period_applies_from_its_effective_date() -> None:
    history = FeeScheduleHistory((V2, V1))
    amount = M("1000.00")
    fees = {d: transaction_fee(history.for_date(d), amount, DEBIT)
            for d in (date(2026, 3, 13), date(2026, 3, 14), date(2026, 3, 15), date(2026, 3, 16))}
    assert fees == {date(2026, 3, 13): M("5.00"), date(2026, 3, 14): M("5.00"),
                    date(2026, 3, 15): M("4.50"), date(2026, 3, 16): M("4.50")}
    assert transaction_fee(history.for_date(date(2026, 4, 1)), M("5000.00"), DEBIT) == M("18.00")
    assert schedule_for([V1, V2], date(2026, 1, 1)) is V1
    assert list(history) == [V1, V2]


def test_no_schedule_before_the_first_version() -> None:
    with pytest.raises(NotFoundError):
        schedule_for([V1, V2], date(2025, 12, 31))
    with pytest.raises(NotFoundError):
        schedule_for([], date(2026, 1, 1))


def test_history_refuses_ambiguous_versions() -> None:
    with pytest.raises(ValidationError):
        FeeScheduleHistory((V1, make_schedule(version=2, effective_from=V1.effective_from)))
    with pytest.raises(ValidationError):
        FeeScheduleHistory((V1, make_schedule(version=1, effective_from=date(2026, 5, 1))))
    assert FeeScheduleHistory((V1,)).with_version(V2).for_date(date(2026, 6, 1)) is V2


# -- refunds ---------------------------------------------------------------------------------
def test_full_refund_returns_the_whole_fee() -> None:
    fee = transaction_fee(STD, M("101.00"), DEBIT)
    assert refund_fee_credit(STD, M("101.00"), fee, M("101.00")) == fee


def test_partial_refunds_return_the_fee_exactly_once() -> None:
    original, fee = M("102.00"), M("0.51")
    first = refund_fee_credit(STD, original, fee, M("51.00"))
    assert first == M("0.26")  # 0.255 rounds up
    second = refund_fee_credit(STD, original, fee, M("51.00"),
                               already_refunded_amount=M("51.00"), already_refunded_fee=first)
    assert second == M("0.25")
    assert first + second == fee


def test_tiny_partial_refunds_still_return_the_whole_fee() -> None:
    original, fee = Money(3), Money(1)
    credits: list[Money] = []
    for i in range(3):
        done = sum((c.amount_minor for c in credits), 0)
        credits.append(refund_fee_credit(STD, original, fee, Money(1),
                                         already_refunded_amount=Money(i),
                                         already_refunded_fee=Money(done)))
    assert [c.amount_minor for c in credits] == [0, 1, 0]


def test_refund_policy_none_keeps_the_fee() -> None:
    keep = make_schedule(policy=RefundFeePolicy.NONE)
    assert refund_fee_credit(keep, M("100.00"), M("0.50"), M("100.00")) == M("0.00")


def test_refund_beyond_the_original_is_refused() -> None:
    with pytest.raises(ValidationError):
        refund_fee_credit(STD, M("100.00"), M("0.50"), M("100.01"))
    with pytest.raises(ValidationError):
        refund_fee_credit(STD, M("100.00"), M("0.50"), M("60.00"),
                          already_refunded_amount=M("50.00"), already_refunded_fee=M("0.25"))
    with pytest.raises(ValidationError):
        refund_fee_credit(STD, M("100.00"), M("0.50"), M("10.00"),
                          already_refunded_amount=M("50.00"), already_refunded_fee=M("0.60"))


# -- defaults ------------------------------------------------------------------------------
def test_default_standard_schedule() -> None:
    s = default_schedule_for("enterprise", "5812")
    assert transaction_fee(s, M("5000.00"), DEBIT) == M("20.00")
    assert transaction_fee(s, M("100.00"), DEBIT) == M("0.50")
    assert transaction_fee(s, M("100.00"), CREDIT) == M("0.60")
    assert transaction_fee(s, M("100.00"), FOREIGN) == M("1.50")
    assert transaction_fee(s, M("100.00"), OTHER) == M("0.60")
    assert payout_surcharge(s, SettlementCycle.D0, M("100.00")) == M("2.00")
    assert s.refund_fee_policy is RefundFeePolicy.PRO_RATA


def test_default_discounted_mcc() -> None:
    assert "5411" in DISCOUNTED_MCCS
    s = default_schedule_for("Sole_Trader", "5411")
    assert transaction_fee(s, M("100.00"), DEBIT) == M("0.41")
    assert transaction_fee(s, M("10000.00"), DEBIT) == M("18.00")
    assert transaction_fee(s, M("100.00"), CREDIT) == M("0.51")
    assert default_schedule_for("micro", "5411") == s


@pytest.mark.parametrize(("merchant_type", "mcc"),
                         [("bank", "5411"), ("", "5411"), ("micro", "541"), ("micro", "54a1")])
def test_default_schedule_refuses_unknown_input(merchant_type: str, mcc: str) -> None:
    with pytest.raises(ValidationError):
        default_schedule_for(merchant_type, mcc)


# -- the settlement-mode mismatch view ---------------------------------------------------------
def test_compare_cycles() -> None:
    txns = [(M("100.00"), DEBIT), (M("5000.00"), DEBIT), (M("200.00"), CREDIT)]
    fees = M("0.50") + M("20.00") + M("1.20")
    net = M("5300.00") - fees  # 5278.30
    costs = compare_cycles(STD, iter(txns), {SettlementCycle.T1: 20, SettlementCycle.D1: 30,
                                             SettlementCycle.T0: 20, SettlementCycle.D0: 30})
    assert costs[SettlementCycle.T1] == fees
    assert costs[SettlementCycle.D1] == fees
    # same-day: 2.00 per payout plus 0.05% of each payout, the net split evenly and each
    # payout's surcharge rounded on its own: D0 30 × 175.94 → 0.09 each, T0 20 × 263.92 → 0.13
    assert costs[SettlementCycle.D0] == fees + M("60.00") + M("2.70")
    assert costs[SettlementCycle.T0] == fees + M("40.00") + M("2.60")
    assert net == M("5278.30")
    assert list(costs) == [SettlementCycle.T1, SettlementCycle.D1, SettlementCycle.T0,
                           SettlementCycle.D0]


def test_compare_cycles_edge_cases() -> None:
    assert compare_cycles(STD, [], {SettlementCycle.D0: 5}) == {SettlementCycle.D0: M("0.00")}
    one = [(M("100.00"), DEBIT)]
    assert compare_cycles(STD, one, {SettlementCycle.D0: 0}) == {SettlementCycle.D0: M("0.50")}
    with pytest.raises(ValidationError):
        compare_cycles(STD, one, {SettlementCycle.D0: -1})


# -- properties -------------------------------------------------------------------------------
amounts = st.integers(min_value=0, max_value=AMOUNT_MINOR_MAX).map(Money)
rates = st.decimals(min_value=0, max_value=Decimal("0.05"), places=5)


@st.composite
def rules(draw: st.DrawFn) -> RateRule:
    cap = draw(st.none() | st.integers(0, 100_00))
    minimum = draw(st.none() | st.integers(0, cap if cap is not None else 100_00))
    return RateRule(draw(rates), None if cap is None else Money(cap),
                    None if minimum is None else Money(minimum))


@given(rules(), st.integers(0, 5_00).map(Money), amounts, st.sampled_from(list(CardKind)))
def test_fee_is_bounded(rule: RateRule, fixed: Money, amount: Money, kind: CardKind) -> None:
    schedule = FeeSchedule("p", 1, date(2026, 1, 1), {kind: rule}, rule, fixed_fee=fixed)
    fee = transaction_fee(schedule, amount, kind)
    assert fee.amount_minor >= 0
    if rule.cap is not None:
        assert fee <= rule.cap + fixed
    if rule.minimum is not None and not amount.is_zero:
        assert fee >= rule.minimum + fixed


@given(rules(), amounts, amounts)
def test_fee_grows_with_the_amount(rule: RateRule, a: Money, b: Money) -> None:
    low, high = sorted((a, b), key=lambda m: m.amount_minor)
    assert rule.fee(low) <= rule.fee(high) or low.is_zero


@st.composite
def refund_plans(draw: st.DrawFn) -> tuple[Money, Money, list[Money]]:
    original = draw(st.integers(1, 10**9))
    fee = draw(st.integers(0, min(original, 2_000_00)))
    cuts = sorted(draw(st.lists(st.integers(1, original), max_size=8, unique=True)))
    if draw(st.booleans()):  # refund everything
        cuts = sorted({*cuts, original})
    bounds = [0, *cuts]
    parts = [Money(b - a) for a, b in itertools.pairwise(bounds)]
    return Money(original), Money(fee), parts


@given(refund_plans())
def test_refund_credits_never_exceed_the_fee(plan: tuple[Money, Money, list[Money]]) -> None:
    original, fee, parts = plan
    done_amount, done_fee = Money(0), Money(0)
    for part in parts:
        credit = refund_fee_credit(STD, original, fee, part, already_refunded_amount=done_amount,
                                   already_refunded_fee=done_fee)
        assert credit.amount_minor >= 0
        done_amount, done_fee = done_amount + part, done_fee + credit
        assert done_fee <= fee
    if done_amount == original:
        assert done_fee == fee
