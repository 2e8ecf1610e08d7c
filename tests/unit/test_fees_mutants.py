"""Fees: the behaviour mutation testing found unchecked (see docs/testing.md).

Refusals name the field at fault with a machine-readable code; stored schedules survive a
round trip; the cumulative pro-rata refund rule holds after every refund, not only at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autosettle.domain.calendar import SettlementCycle
from autosettle.domain.cards import CardKind
from autosettle.domain.errors import ErrorCode, NotFoundError, ValidationError
from autosettle.domain.fees import (
    COMPARE_PAYOUTS_MAX,
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
    schedule_from_dict,
    schedule_to_dict,
    transaction_fee,
)
from autosettle.domain.money import CNY, Currency, Money, currency

USD = currency("USD")
DEBIT, CREDIT = CardKind.DEBIT, CardKind.CREDIT
DAY = date(2026, 1, 1)


def _schedule(**changes: object) -> FeeSchedule:
    fields: dict[str, object] = {
        "schedule_id": "m-1", "version": 1, "effective_from": DAY,
        "rates": {DEBIT: RateRule(Decimal("0.0050"), cap=Money(20_00))},
        "fallback": RateRule(Decimal("0.0100")),
        "same_day_surcharge": PayoutSurcharge(Decimal("0.0005"), Money(2_00)),
    }
    fields.update(changes)
    return FeeSchedule(**fields)  # type: ignore[arg-type]


def _usd_schedule(policy: RefundFeePolicy = RefundFeePolicy.PRO_RATA) -> FeeSchedule:
    return _schedule(rates={}, fallback=RateRule(Decimal("0.01"), cap=Money(5_00, USD)),
                     fixed_fee=Money(10, USD),
                     same_day_surcharge=PayoutSurcharge(Decimal("0.001"), Money(1_00, USD)),
                     refund_fee_policy=policy, currency=USD)


def _refusal(action: Callable[[], object]) -> ValidationError:
    with pytest.raises(ValidationError) as excinfo:
        action()
    return excinfo.value


STD = _schedule()


# -- every refusal names what is wrong --------------------------------------------------------
@pytest.mark.parametrize(
    ("action", "code", "message"),
    [
        (lambda: RateRule(Decimal(2)), ErrorCode.VALIDATION_FAILED,
         "rate must be a Decimal fraction in [0, 1), got Decimal('2')"),
        (lambda: RateRule(Decimal(0), cap=Money(-1)), ErrorCode.AMOUNT_NEGATIVE,
         "cap must not be negative, got -0.01 CNY"),
        (lambda: RateRule(Decimal(0), minimum=5),  # type: ignore[arg-type]
         ErrorCode.VALIDATION_FAILED,
         "minimum must be Money, got 5"),
        (lambda: RateRule(Decimal(0), cap=Money(5), minimum=Money(1, USD)),
         ErrorCode.CURRENCY_MISMATCH, "minimum is in USD, expected CNY"),
        (lambda: RateRule(Decimal(0), cap=Money(5), minimum=Money(6)),
         ErrorCode.VALIDATION_FAILED, "minimum 0.06 CNY is above cap 0.05 CNY"),
        (lambda: RateRule(Decimal(0), cap=Money(20_00)).fee(Money(1_00, USD)),
         ErrorCode.CURRENCY_MISMATCH, "amount is in USD, expected CNY"),
        (lambda: PayoutSurcharge(Decimal("-0.1")), ErrorCode.VALIDATION_FAILED,
         "surcharge rate must be a Decimal fraction in [0, 1), got Decimal('-0.1')"),
        (lambda: PayoutSurcharge(fixed=Money(-2)), ErrorCode.AMOUNT_NEGATIVE,
         "surcharge fixed amount must not be negative, got -0.02 CNY"),
        (lambda: _schedule(schedule_id=" "), ErrorCode.VALIDATION_FAILED,
         "schedule id must be a non-blank string"),
        (lambda: _schedule(version=True), ErrorCode.VALIDATION_FAILED,
         "version must be an int >= 1, got True"),
        (lambda: _schedule(version="2"), ErrorCode.VALIDATION_FAILED,
         "version must be an int >= 1, got '2'"),
        (lambda: _schedule(effective_from=datetime(2026, 1, 1)), ErrorCode.VALIDATION_FAILED,
         "effective_from must be a date, got datetime.datetime(2026, 1, 1, 0, 0)"),
        (lambda: _schedule(effective_from="2026-01-01"), ErrorCode.VALIDATION_FAILED,
         "effective_from must be a date, got '2026-01-01'"),
        (lambda: _schedule(rates={"debit": RateRule(Decimal(0))}), ErrorCode.VALIDATION_FAILED,
         "rates must map CardKind to RateRule, got 'debit'"),
        (lambda: _schedule(fallback=None), ErrorCode.VALIDATION_FAILED,
         "fallback must be a RateRule"),
        (lambda: _schedule(fallback=RateRule(Decimal(0), cap=Money(1, USD))),
         ErrorCode.CURRENCY_MISMATCH, "a cap or minimum is not in the schedule's CNY"),
        (lambda: _schedule(fixed_fee=Money(1, USD)), ErrorCode.CURRENCY_MISMATCH,
         "fixed fee is in USD, expected CNY"),
        (lambda: _schedule(same_day_surcharge=PayoutSurcharge(fixed=Money(2_00, USD))),
         ErrorCode.CURRENCY_MISMATCH, "surcharge fixed amount is in USD, expected CNY"),
        (lambda: transaction_fee(STD, Money(1_00, USD), DEBIT), ErrorCode.CURRENCY_MISMATCH,
         "amount is in USD, expected CNY"),
        (lambda: transaction_fee(STD, Money(1_00, USD), CREDIT), ErrorCode.CURRENCY_MISMATCH,
         "amount is in USD, expected CNY"),
        (lambda: payout_surcharge(STD, SettlementCycle.D0, Money(1_00, USD)),
         ErrorCode.CURRENCY_MISMATCH, "payout amount is in USD, expected CNY"),
        (lambda: FeeScheduleHistory((STD, _schedule(version=2))), ErrorCode.VALIDATION_FAILED,
         "two fee schedule versions share an effective date"),
        (lambda: FeeScheduleHistory((STD, _schedule(effective_from=date(2026, 2, 1)))),
         ErrorCode.VALIDATION_FAILED, "two fee schedule versions share a version number"),
        (lambda: default_schedule_for("bank", "5411"), ErrorCode.VALIDATION_FAILED,
         "unknown merchant type 'bank': one of enterprise, individual, micro, sole_trader"),
        (lambda: default_schedule_for(None, "5411"),  # type: ignore[arg-type]
         ErrorCode.VALIDATION_FAILED,
         "unknown merchant type None: one of enterprise, individual, micro, sole_trader"),
        (lambda: default_schedule_for("micro", "541"), ErrorCode.VALIDATION_FAILED,
         "MCC must be 4 digits, got '541'"),
        (lambda: compare_cycles(STD, [], {SettlementCycle.D0: COMPARE_PAYOUTS_MAX + 1}),
         ErrorCode.VALIDATION_FAILED,
         f"payouts for D0 must be 0..{COMPARE_PAYOUTS_MAX}, got {COMPARE_PAYOUTS_MAX + 1}"),
        (lambda: compare_cycles(STD, [], {SettlementCycle.D0: True}),
         ErrorCode.VALIDATION_FAILED, f"payouts for D0 must be 0..{COMPARE_PAYOUTS_MAX}, got True"),
        (lambda: compare_cycles(STD, [], {SettlementCycle.D0: "3"}),  # type: ignore[dict-item]
         ErrorCode.VALIDATION_FAILED, f"payouts for D0 must be 0..{COMPARE_PAYOUTS_MAX}, got '3'"),
    ],
)
def test_refusals_carry_a_code_and_name_the_field(
        action: Callable[[], object], code: ErrorCode, message: str) -> None:
    error = _refusal(action)
    assert error.code is code
    assert error.message == message


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [("original amount", {"original_amount": Money(1, USD)}),
     ("original fee", {"original_fee": Money(1, USD)}),
     ("refund amount", {"refund_amount": Money(1, USD)}),
     ("already refunded amount", {"already_refunded_amount": Money(1, USD)}),
     ("already refunded fee", {"already_refunded_fee": Money(1, USD)})],
)
def test_refund_credit_refuses_money_in_another_currency(
        field: str, kwargs: dict[str, Money]) -> None:
    args: dict[str, Money] = {"original_amount": Money(100_00), "original_fee": Money(50),
                              "refund_amount": Money(10_00)}
    args.update(kwargs)
    error = _refusal(lambda: refund_fee_credit(STD, **args))
    assert error.code is ErrorCode.CURRENCY_MISMATCH
    assert error.message == f"{field} is in USD, expected CNY"


def test_refund_credit_refusals_say_which_limit() -> None:
    error = _refusal(lambda: refund_fee_credit(
        STD, Money(100_00), Money(50), Money(60_00), already_refunded_amount=Money(50_00)))
    assert error.code is ErrorCode.INVALID_AMOUNT
    assert error.message == "refunds 110.00 CNY would exceed the original amount 100.00 CNY"
    error = _refusal(lambda: refund_fee_credit(
        STD, Money(100_00), Money(50), Money(1_00), already_refunded_fee=Money(51)))
    assert error.message == "already refunded fee 0.51 CNY exceeds the fee 0.50 CNY"


# -- fee rules ---------------------------------------------------------------------------------
def test_fee_at_exactly_the_minimum_or_the_cap() -> None:
    rule = RateRule(Decimal("0.01"), cap=Money(5_00), minimum=Money(1_00))
    assert rule.fee(Money(100_00)) == Money(1_00)  # exactly the minimum
    assert rule.fee(Money(500_00)) == Money(5_00)  # exactly the cap
    assert rule.fee(Money(99_00)) == Money(1_00)
    assert rule.fee(Money(501_00)) == Money(5_00)
    assert rule.fee(Money(250_00)) == Money(2_50)


# -- refunds: the cumulative rounding rule after every refund -------------------------------
def test_refunds_in_thirds_return_a_third_of_the_fee_each() -> None:
    original, fee = Money(3_00), Money(3)
    credits: list[Money] = []
    for i in range(3):
        credits.append(refund_fee_credit(STD, original, fee, Money(1_00),
                                         already_refunded_amount=Money(i * 1_00),
                                         already_refunded_fee=Money(sum(credits, Money(0))
                                                                    .amount_minor)))
    assert credits == [Money(1), Money(1), Money(1)]


def test_refund_credit_is_in_the_schedule_currency() -> None:
    usd = _usd_schedule()
    assert refund_fee_credit(usd, Money(100_00, USD), Money(1_00, USD), Money(50_00, USD)) \
        == Money(50, USD)
    assert refund_fee_credit(_usd_schedule(RefundFeePolicy.NONE), Money(100_00, USD),
                             Money(1_00, USD), Money(50_00, USD)) == Money(0, USD)


def test_refund_credit_is_never_negative_when_more_was_credited_before() -> None:
    # An earlier credit above the pro-rata share (e.g. a manual adjustment): nothing more.
    assert refund_fee_credit(STD, Money(100_00), Money(50), Money(10_00),
                             already_refunded_amount=Money(10_00),
                             already_refunded_fee=Money(30)) == Money(0)


@given(st.integers(1, 10**9), st.data())
def test_credits_so_far_are_the_rounded_share_of_the_refunds_so_far(
        original: int, data: st.DataObject) -> None:
    fee = data.draw(st.integers(0, min(original, 2_000_00)))
    cuts = sorted(data.draw(st.lists(st.integers(1, original), max_size=6, unique=True)))
    done_amount, done_fee = 0, 0
    for cut in cuts:
        credit = refund_fee_credit(STD, Money(original), Money(fee), Money(cut - done_amount),
                                   already_refunded_amount=Money(done_amount),
                                   already_refunded_fee=Money(done_fee))
        done_amount, done_fee = cut, done_fee + credit.amount_minor
        exact = Fraction(fee * cut, original)
        assert done_fee == int(exact + Fraction(1, 2))  # half up, on the total so far


# -- versions ---------------------------------------------------------------------------------
def test_schedule_for_prefers_the_later_version_of_the_same_date() -> None:
    v1, v2 = _schedule(version=1), _schedule(version=2)
    assert schedule_for([v1, v2], DAY) is v2
    assert schedule_for([v2, v1], DAY) is v2
    with pytest.raises(NotFoundError, match=r"^no fee schedule effective on 2025-12-31$"):
        schedule_for([v1], date(2025, 12, 31))


def test_default_schedule_is_version_one_of_its_tier() -> None:
    standard = default_schedule_for(" Enterprise ", "5812")
    assert (standard.schedule_id, standard.version) == ("default-standard", 1)
    discounted = default_schedule_for("individual", "5411")
    assert (discounted.schedule_id, discounted.version) == ("default-discounted", 1)


# -- the settlement-mode comparison ------------------------------------------------------------
def test_compare_cycles_surcharges_the_net_not_the_gross() -> None:
    # 1% surcharge on each same-day payout: 10000.00 of sales, 100.00 of fees, 9900.00 net.
    schedule = _schedule(rates={}, same_day_surcharge=PayoutSurcharge(Decimal("0.01")))
    costs = compare_cycles(schedule, [(Money(10_000_00), DEBIT)], {SettlementCycle.D0: 1})
    assert costs == {SettlementCycle.D0: Money(100_00) + Money(99_00)}


def test_compare_cycles_when_fees_eat_the_sales() -> None:
    # A fixed fee above the sale: no net to pay out, so no surcharge; the fees are the cost.
    schedule = _schedule(fixed_fee=Money(5_00))
    costs = compare_cycles(schedule, [(Money(1_00), DEBIT)],
                           {SettlementCycle.D0: 3, SettlementCycle.T1: 3})
    assert costs == {SettlementCycle.D0: Money(5_01), SettlementCycle.T1: Money(5_01)}
    fees_equal_sales = _schedule(rates={}, fallback=RateRule(Decimal(0)), fixed_fee=Money(1_00))
    assert compare_cycles(fees_equal_sales, [(Money(1_00), DEBIT)], {SettlementCycle.D0: 2}) \
        == {SettlementCycle.D0: Money(1_00)}


def test_compare_cycles_takes_the_largest_payout_count() -> None:
    costs = compare_cycles(STD, [(Money(100_00), DEBIT)],
                           {SettlementCycle.D0: COMPARE_PAYOUTS_MAX})
    # 99.50 net over 10000 payouts: 9950 of 1 fen (2.00 fixed each, the 0.05% rounds to 0)
    # and 50 empty ones, which are not charged.
    assert costs[SettlementCycle.D0] == Money(50) + Money(2_00).times(9950)


# -- storage form ------------------------------------------------------------------------------
def _stored_schedules() -> st.SearchStrategy[FeeSchedule]:
    @st.composite
    def build(draw: st.DrawFn) -> FeeSchedule:
        cur: Currency = draw(st.sampled_from([CNY, USD, currency("JPY")]))
        bounded = st.none() | st.integers(0, 100_00)

        def rule() -> RateRule:
            cap = draw(bounded)
            minimum = draw(st.none() | st.integers(0, cap if cap is not None else 100_00))
            rate = draw(st.decimals(min_value=0, max_value=Decimal("0.05"), places=5))
            return RateRule(rate, None if cap is None else Money(cap, cur),
                            None if minimum is None else Money(minimum, cur))

        kinds = draw(st.lists(st.sampled_from(list(CardKind)), unique=True))
        return FeeSchedule(
            schedule_id=draw(st.sampled_from(["m-1", "default-standard", "x"])),
            version=draw(st.integers(1, 50)),
            effective_from=draw(st.dates(date(2016, 1, 1), date(2040, 12, 31))),
            rates={kind: rule() for kind in kinds},
            fallback=rule(),
            fixed_fee=Money(draw(st.integers(0, 5_00)), cur),
            same_day_surcharge=PayoutSurcharge(
                draw(st.decimals(min_value=0, max_value=Decimal("0.01"), places=4)),
                Money(draw(st.integers(0, 5_00)), cur)),
            refund_fee_policy=draw(st.sampled_from(list(RefundFeePolicy))),
            currency=cur,
        )
    return build()


@given(_stored_schedules())
def test_stored_form_round_trips(schedule: FeeSchedule) -> None:
    stored = schedule_to_dict(schedule)
    assert schedule_from_dict(stored) == schedule
    assert stored["currency"] == schedule.currency.code
    assert stored["effective_from"] == schedule.effective_from.isoformat()


def test_stored_form_is_plain_json() -> None:
    rule = RateRule(Decimal("0.0050"), cap=Money(20_00, USD), minimum=Money(10, USD))
    schedule = _schedule(rates={DEBIT: rule}, fallback=RateRule(Decimal("0.01")),
                         fixed_fee=Money(5, USD), currency=USD,
                         same_day_surcharge=PayoutSurcharge(Decimal("0.0005"), Money(2_00, USD)),
                         refund_fee_policy=RefundFeePolicy.NONE)
    assert schedule_to_dict(schedule) == {
        "schedule_id": "m-1", "version": 1, "effective_from": "2026-01-01", "currency": "USD",
        "rates": {"debit": {"rate": "0.0050", "cap_minor": 2000, "minimum_minor": 10}},
        "fallback": {"rate": "0.01", "cap_minor": None, "minimum_minor": None},
        "fixed_fee_minor": 5,
        "same_day_surcharge": {"rate": "0.0005", "fixed_minor": 200},
        "refund_fee_policy": "none",
    }


def test_stored_form_defaults_for_missing_keys() -> None:
    schedule = schedule_from_dict({"schedule_id": "m-1", "version": 3,
                                   "effective_from": "2026-01-01",
                                   "fallback": {"rate": "0.006"}})
    assert schedule == FeeSchedule("m-1", 3, DAY, {}, RateRule(Decimal("0.006")))
    assert schedule.currency is CNY
    assert schedule.fixed_fee == Money(0)
    assert schedule.same_day_surcharge == PayoutSurcharge(Decimal(0), Money(0))
    assert schedule.refund_fee_policy is RefundFeePolicy.PRO_RATA


@pytest.mark.parametrize(
    ("change", "message"),
    [({"rates": []}, "rates and same_day_surcharge must be objects"),
     ({"same_day_surcharge": "2.00"}, "rates and same_day_surcharge must be objects"),
     ({"fallback": "0.006"}, "fallback must be an object"),
     ({"fallback": None}, "fallback must be an object"),
     ({"version": "one"}, "fee schedule is not valid: invalid literal for int() with base 10: "
                          "'one'"),
     ({"effective_from": None}, "fee schedule is not valid: Invalid isoformat string: 'None'"),
     ({"rates": {"debit": {"rate": "x"}}}, "fee schedule is not valid: "
                                           "[<class 'decimal.ConversionSyntax'>]"),
     ({"rates": {"gold": {"rate": "0.01"}}}, "fee schedule is not valid: "
                                             "'gold' is not a valid CardKind"),
     ({"currency": "XXX"}, "unknown currency 'XXX'"),
     ({"fallback": {"rate": "0.5", "cap_minor": -1}},
      "cap must not be negative, got -0.01 CNY")],
)
def test_stored_form_refusals(change: dict[str, object], message: str) -> None:
    stored = schedule_to_dict(STD)
    stored.update(change)
    assert _refusal(lambda: schedule_from_dict(stored)).message == message


def test_stored_form_refuses_a_missing_key() -> None:
    for key in ("schedule_id", "version", "effective_from", "fallback"):
        stored = schedule_to_dict(STD)
        del stored[key]
        with pytest.raises(ValidationError) as excinfo:
            schedule_from_dict(stored)
        assert excinfo.value.message == f"fee schedule is not valid: {key!r}"
