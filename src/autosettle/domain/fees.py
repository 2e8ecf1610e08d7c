"""Fee schedules: what a merchant pays per transaction, per same-day payout, and on refunds.

A :class:`FeeSchedule` is one version of a merchant's price list, effective from a date:

* a :class:`RateRule` per :class:`~autosettle.domain.cards.CardKind` (rate, optional cap
  and minimum per transaction), with a fallback rule for kinds not listed;
* a fixed fee per transaction;
* a :class:`PayoutSurcharge` for same-day cycles (T+0 / D+0): a rate and/or a fixed amount
  per payout;
* a :class:`RefundFeePolicy`: return the fee pro rata on refunds, or keep it.

Every percentage becomes money through :func:`~autosettle.domain.money.apply_rate` (or
:func:`~autosettle.domain.money.round_minor` for a pro-rata share): one rounding,
ROUND_HALF_UP, to the minor unit, per transaction.

Versions: :func:`schedule_for` picks, for a transaction's business date, the version with
the greatest ``effective_from`` on or before it, so a new version applies from its
effective date and settled history keeps the fees it was settled with.

>>> s = default_schedule_for("enterprise", "5812")
>>> transaction_fee(s, Money.parse("5000.00"), CardKind.DEBIT).format()
'20.00'
>>> transaction_fee(s, Money.parse("100.00"), CardKind.CREDIT).format()
'0.60'

Pure: no I/O; imports only the standard library and ``autosettle.domain``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from autosettle.domain.calendar import Cycle, SettlementCycle, as_cycle
from autosettle.domain.cards import CardKind
from autosettle.domain.errors import ErrorCode, NotFoundError, ValidationError
from autosettle.domain.money import (
    CNY,
    Currency,
    Money,
    allocate,
    apply_rate,
    currency,
    round_minor,
)

COMPARE_PAYOUTS_MAX = 10_000
"""The most payouts per cycle :func:`compare_cycles` will price (about 27 years of days)."""

RATE_MAX = Decimal(1)
"""Rates are fractions in ``[0, RATE_MAX)``: ``Decimal("0.0060")`` is 0.60%."""


def _check_rate(rate: Decimal, what: str) -> Decimal:
    if not isinstance(rate, Decimal) or not rate.is_finite() or not 0 <= rate < RATE_MAX:
        raise ValidationError(f"{what} must be a Decimal fraction in [0, 1), got {rate!r}")
    return rate


def _check_money(value: Money, what: str, cur: Currency | None = None) -> Money:
    if not isinstance(value, Money):
        raise ValidationError(f"{what} must be Money, got {value!r}")
    if value.amount_minor < 0:
        raise ValidationError(f"{what} must not be negative, got {value}",
                              ErrorCode.AMOUNT_NEGATIVE)
    if cur is not None and value.currency != cur:
        raise ValidationError(f"{what} is in {value.currency.code}, expected {cur.code}",
                              ErrorCode.CURRENCY_MISMATCH)
    return value


class RefundFeePolicy(StrEnum):
    """What happens to a transaction's fee when it is refunded."""

    PRO_RATA = "pro_rata"
    """Return the fee in proportion to the amount refunded."""
    NONE = "none"
    """Keep the fee."""


@dataclass(frozen=True, slots=True)
class RateRule:
    """A percentage per transaction, with an optional cap and minimum (same currency)."""

    rate: Decimal
    cap: Money | None = None
    minimum: Money | None = None

    def __post_init__(self) -> None:
        _check_rate(self.rate, "rate")
        if self.cap is not None:
            _check_money(self.cap, "cap")
        if self.minimum is not None:
            _check_money(self.minimum, "minimum")
        if self.cap is not None and self.minimum is not None:
            _check_money(self.minimum, "minimum", self.cap.currency)
            if self.minimum > self.cap:
                raise ValidationError(f"minimum {self.minimum} is above cap {self.cap}")

    @property
    def currency(self) -> Currency | None:
        """The currency of the cap/minimum, if the rule has one."""
        bound = self.cap or self.minimum
        return bound.currency if bound is not None else None

    def fee(self, amount: Money) -> Money:
        """``amount × rate`` rounded once, then raised to the minimum and cut to the cap.

        A zero amount costs nothing (no minimum applies to it).
        """
        _check_money(amount, "amount", self.currency)
        if amount.is_zero:
            return amount
        fee = apply_rate(amount, self.rate)
        if self.minimum is not None:
            fee = max(fee, self.minimum)
        if self.cap is not None:
            fee = min(fee, self.cap)
        return fee


@dataclass(frozen=True, slots=True)
class PayoutSurcharge:
    """The extra charge per same-day (T+0 / D+0) payout: a rate and/or a fixed amount."""

    rate: Decimal = Decimal(0)
    fixed: Money = field(default_factory=Money.zero)

    def __post_init__(self) -> None:
        _check_rate(self.rate, "surcharge rate")
        _check_money(self.fixed, "surcharge fixed amount")


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """One version of a merchant's price list, effective from ``effective_from``.

    ``rates`` maps card kinds to rules; kinds not listed use ``fallback``. All money in the
    schedule is in ``currency``. Validated at construction (:class:`ValidationError`).
    """

    schedule_id: str
    version: int
    effective_from: date
    rates: Mapping[CardKind, RateRule]
    fallback: RateRule
    fixed_fee: Money = field(default_factory=Money.zero)
    same_day_surcharge: PayoutSurcharge = field(default_factory=PayoutSurcharge)
    refund_fee_policy: RefundFeePolicy = RefundFeePolicy.PRO_RATA
    currency: Currency = CNY

    def __post_init__(self) -> None:
        if not isinstance(self.schedule_id, str) or not self.schedule_id.strip():
            raise ValidationError("schedule id must be a non-blank string")
        if isinstance(self.version, bool) or not isinstance(self.version, int) \
                or self.version < 1:
            raise ValidationError(f"version must be an int >= 1, got {self.version!r}")
        if isinstance(self.effective_from, datetime) or not isinstance(self.effective_from, date):
            raise ValidationError(f"effective_from must be a date, got {self.effective_from!r}")
        rates: dict[CardKind, RateRule] = {}
        for kind, rule in self.rates.items():
            if not isinstance(kind, CardKind) or not isinstance(rule, RateRule):
                raise ValidationError(f"rates must map CardKind to RateRule, got {kind!r}")
            rates[kind] = rule
        if not isinstance(self.fallback, RateRule):
            raise ValidationError("fallback must be a RateRule")
        for rule in (*rates.values(), self.fallback):
            if rule.currency not in (None, self.currency):
                raise ValidationError(
                    f"a cap or minimum is not in the schedule's {self.currency.code}",
                    ErrorCode.CURRENCY_MISMATCH)
        _check_money(self.fixed_fee, "fixed fee", self.currency)
        _check_money(self.same_day_surcharge.fixed, "surcharge fixed amount", self.currency)
        RefundFeePolicy(self.refund_fee_policy)
        object.__setattr__(self, "rates", MappingProxyType(rates))

    def __hash__(self) -> int:
        return hash((self.schedule_id, self.version, self.effective_from))

    def rule_for(self, kind: CardKind) -> RateRule:
        """The rule for ``kind``, or the fallback rule."""
        return self.rates.get(kind, self.fallback)


def transaction_fee(schedule: FeeSchedule, amount: Money, kind: CardKind) -> Money:
    """The fee for one transaction: the rule's rate (capped / raised to the minimum) + fixed.

    A zero amount costs nothing.
    """
    _check_money(amount, "amount", schedule.currency)
    if amount.is_zero:
        return amount
    return schedule.rule_for(CardKind(kind)).fee(amount) + schedule.fixed_fee


def refund_fee_credit(
    schedule: FeeSchedule,
    original_amount: Money,
    original_fee: Money,
    refund_amount: Money,
    *,
    already_refunded_amount: Money | None = None,
    already_refunded_fee: Money | None = None,
) -> Money:
    """The part of ``original_fee`` returned to the merchant for one (partial) refund.

    Cumulative rounding: the credit is ``round(fee × refunded_so_far / original) −
    already_refunded_fee``, so over any sequence of partial refunds the credits sum to the
    rounded pro-rata share of everything refunded: never more than the fee, and exactly the
    fee once the whole amount has been refunded. Pass the amount and fee credited by the
    earlier refunds of the same transaction. Zero under :attr:`RefundFeePolicy.NONE`.
    """
    cur = schedule.currency
    _check_money(original_amount, "original amount", cur)
    _check_money(original_fee, "original fee", cur)
    _check_money(refund_amount, "refund amount", cur)
    zero = Money.zero(cur)
    done_amount = _check_money(
        zero if already_refunded_amount is None else already_refunded_amount,
        "already refunded amount", cur)
    done_fee = _check_money(zero if already_refunded_fee is None else already_refunded_fee,
                            "already refunded fee", cur)
    refunded = done_amount + refund_amount
    if refunded > original_amount:
        raise ValidationError(
            f"refunds {refunded} would exceed the original amount {original_amount}",
            ErrorCode.INVALID_AMOUNT)
    if done_fee > original_fee:
        raise ValidationError(f"already refunded fee {done_fee} exceeds the fee {original_fee}")
    if schedule.refund_fee_policy is RefundFeePolicy.NONE or original_amount.is_zero:
        return Money.zero(cur)
    # One rounding of an exact integer ratio: both operands are integers below 10**13, so
    # the 28-digit Decimal quotient is never close enough to a half to round the wrong way.
    share = round_minor(Decimal(original_fee.amount_minor * refunded.amount_minor)
                        / Decimal(original_amount.amount_minor))
    # refunded <= original_amount, so share <= original_fee: the credit never passes the fee.
    return Money(max(share - done_fee.amount_minor, 0), cur)


def payout_surcharge(
    schedule: FeeSchedule, cycle: SettlementCycle | Cycle | str, payout_amount: Money
) -> Money:
    """The extra charge for one payout: only for same-day cycles (T+0 / D+0), else zero.

    An empty payout is not charged.
    """
    _check_money(payout_amount, "payout amount", schedule.currency)
    if not as_cycle(cycle).is_same_day or payout_amount.is_zero:
        return Money.zero(schedule.currency)
    surcharge = schedule.same_day_surcharge
    return apply_rate(payout_amount, surcharge.rate) + surcharge.fixed


# -- versions --------------------------------------------------------------------------------
def schedule_for(schedules: Iterable[FeeSchedule], on: date) -> FeeSchedule:
    """The schedule in force on ``on``: the greatest ``effective_from`` on or before it.

    Of two versions effective from the same date (a :class:`FeeScheduleHistory` refuses
    them) the greater version number wins. Raises :class:`NotFoundError` if none is
    effective yet.
    """
    effective = [s for s in schedules if s.effective_from <= on]
    if not effective:
        raise NotFoundError(f"no fee schedule effective on {on.isoformat()}")
    return max(effective, key=lambda s: (s.effective_from, s.version))


@dataclass(frozen=True, slots=True)
class FeeScheduleHistory:
    """The versions of one merchant's schedule, ordered by ``effective_from``.

    Refuses two versions with the same effective date or the same version number.
    """

    versions: tuple[FeeSchedule, ...]

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.versions, key=lambda s: s.effective_from))
        if len({s.effective_from for s in ordered}) != len(ordered):
            raise ValidationError("two fee schedule versions share an effective date")
        if len({s.version for s in ordered}) != len(ordered):
            raise ValidationError("two fee schedule versions share a version number")
        object.__setattr__(self, "versions", ordered)

    def __iter__(self) -> Iterator[FeeSchedule]:
        return iter(self.versions)

    def for_date(self, on: date) -> FeeSchedule:
        """The version in force on ``on`` (see :func:`schedule_for`)."""
        return schedule_for(self.versions, on)

    def with_version(self, schedule: FeeSchedule) -> FeeScheduleHistory:
        """A new history with ``schedule`` added."""
        return FeeScheduleHistory((*self.versions, schedule))


# -- defaults ------------------------------------------------------------------------------
MERCHANT_TYPES = frozenset({"enterprise", "individual", "sole_trader", "micro"})
"""企业, 个体户 ("individual", alias "sole_trader"), 小微 (see domain.md §4)."""

DEFAULTS_EFFECTIVE_FROM = date(2016, 9, 6)
"""The 2016 card-fee reform's effective date."""

_STANDARD_CAP = Money(20_00)
_DISCOUNTED_CAP = Money(18_00)

DISCOUNTED_MCCS = frozenset({"5411", "5300", "5331", "5499", "4900", "5541", "5542"})
"""Supermarkets, wholesale clubs, variety/convenience stores, utilities, fuel."""

_DEFAULT_RATES: dict[str, dict[CardKind, RateRule]] = {
    # Standard: debit 0.50% capped at 20.00, credit 0.60%, foreign cards 1.50%, other 0.60%.
    "standard": {
        CardKind.DEBIT: RateRule(Decimal("0.0050"), cap=_STANDARD_CAP),
        CardKind.CREDIT: RateRule(Decimal("0.0060")),
        CardKind.FOREIGN: RateRule(Decimal("0.0150")),
    },
    # Discounted MCCs: the published price list's floor, debit 0.41% capped at 18.00 and
    # credit 0.51%; both stay above the 2016 interchange + network ceilings (0.3825% capped
    # at 16.25 for debit, 0.4825% for credit).
    "discounted": {
        CardKind.DEBIT: RateRule(Decimal("0.0041"), cap=_DISCOUNTED_CAP),
        CardKind.CREDIT: RateRule(Decimal("0.0051")),
        CardKind.FOREIGN: RateRule(Decimal("0.0150")),
    },
}
_DEFAULT_FALLBACK = RateRule(Decimal("0.0060"))
_DEFAULT_SURCHARGE = PayoutSurcharge(fixed=Money(2_00))
"""Same-day payouts: 2.00 CNY each (domain.md §3: commonly 2–3 CNY per payout)."""


def default_schedule_for(merchant_type: str, mcc: str) -> FeeSchedule:
    """The built-in price list for a merchant without its own schedule.

    ============  =========================  ==============  ===========  ========
    tier          debit                      credit          foreign      other
    ============  =========================  ==============  ===========  ========
    standard      0.50% capped at 20.00      0.60%           1.50%        0.60%
    discounted    0.41% capped at 18.00      0.51%           1.50%        0.60%
    ============  =========================  ==============  ===========  ========

    Discounted MCCs are :data:`DISCOUNTED_MCCS`. Every tier: no fixed fee per transaction,
    2.00 CNY per same-day (T+0/D+0) payout, fees returned pro rata on refunds. All three
    merchant types share the tiers for now; the type is validated so that they can diverge.
    """
    if not isinstance(merchant_type, str) or merchant_type.strip().lower() not in MERCHANT_TYPES:
        raise ValidationError(f"unknown merchant type {merchant_type!r}: one of "
                              f"{', '.join(sorted(MERCHANT_TYPES))}")
    if not isinstance(mcc, str) or len(mcc) != 4 or not mcc.isdigit() or not mcc.isascii():
        raise ValidationError(f"MCC must be 4 digits, got {mcc!r}")
    tier = "discounted" if mcc in DISCOUNTED_MCCS else "standard"
    return FeeSchedule(
        schedule_id=f"default-{tier}",
        version=1,
        effective_from=DEFAULTS_EFFECTIVE_FROM,
        rates=_DEFAULT_RATES[tier],
        fallback=_DEFAULT_FALLBACK,
        same_day_surcharge=_DEFAULT_SURCHARGE,
    )


# -- the "settlement mode mismatch" view --------------------------------------------------------
def compare_cycles(
    schedule: FeeSchedule,
    transactions: Iterable[tuple[Money, CardKind]],
    payouts_per_cycle: Mapping[SettlementCycle, int],
) -> dict[SettlementCycle, Money]:
    """What the same transactions would have cost under each cycle in ``payouts_per_cycle``.

    Each cycle costs the transaction fees (the same for all) plus, for same-day cycles, the
    surcharge on each of its payouts. ``payouts_per_cycle`` says how many payouts the
    merchant would have received (e.g. D0 on every day with sales, T0 only on workdays);
    the net amount (sales − fees) is split evenly over them to price a rate surcharge.
    """
    fees = Money.zero(schedule.currency)
    volume = Money.zero(schedule.currency)
    for amount, kind in transactions:
        fees += transaction_fee(schedule, amount, kind)
        volume += amount
    net = max(volume - fees, Money.zero(schedule.currency))
    result: dict[SettlementCycle, Money] = {}
    for cycle, payouts in payouts_per_cycle.items():
        if isinstance(payouts, bool) or not isinstance(payouts, int) \
                or not 0 <= payouts <= COMPARE_PAYOUTS_MAX:
            raise ValidationError(
                f"payouts for {cycle} must be 0..{COMPARE_PAYOUTS_MAX}, got {payouts!r}")
        cost = fees
        if payouts and not net.is_zero:
            for part in allocate(net, [1] * payouts):
                cost += payout_surcharge(schedule, cycle, part)
        result[SettlementCycle(cycle)] = cost
    return result


# -- storage form ------------------------------------------------------------------------------
def _rule_to_dict(rule: RateRule) -> dict[str, object]:
    return {"rate": str(rule.rate),
            "cap_minor": rule.cap.amount_minor if rule.cap else None,
            "minimum_minor": rule.minimum.amount_minor if rule.minimum else None}


def _rule_from_dict(data: Mapping[str, object], cur: Currency) -> RateRule:
    cap, minimum = data.get("cap_minor"), data.get("minimum_minor")
    return RateRule(Decimal(str(data["rate"])),
                    cap=Money(int(str(cap)), cur) if cap is not None else None,
                    minimum=Money(int(str(minimum)), cur) if minimum is not None else None)


def schedule_to_dict(schedule: FeeSchedule) -> dict[str, object]:
    """A JSON-ready form of ``schedule`` (rates as decimal strings, money in minor units)."""
    return {
        "schedule_id": schedule.schedule_id, "version": schedule.version,
        "effective_from": schedule.effective_from.isoformat(),
        "currency": schedule.currency.code,
        "rates": {kind.value: _rule_to_dict(rule) for kind, rule in schedule.rates.items()},
        "fallback": _rule_to_dict(schedule.fallback),
        "fixed_fee_minor": schedule.fixed_fee.amount_minor,
        "same_day_surcharge": {"rate": str(schedule.same_day_surcharge.rate),
                               "fixed_minor": schedule.same_day_surcharge.fixed.amount_minor},
        "refund_fee_policy": schedule.refund_fee_policy.value,
    }


def schedule_from_dict(data: Mapping[str, object]) -> FeeSchedule:
    """Inverse of :func:`schedule_to_dict`; validates like the constructor."""
    try:
        cur = currency(str(data.get("currency", CNY.code)))
        rates_in = data.get("rates", {})
        surcharge = data.get("same_day_surcharge", {})
        if not isinstance(rates_in, Mapping) or not isinstance(surcharge, Mapping):
            raise ValidationError("rates and same_day_surcharge must be objects")
        fallback = data["fallback"]
        if not isinstance(fallback, Mapping):
            raise ValidationError("fallback must be an object")
        return FeeSchedule(
            schedule_id=str(data["schedule_id"]), version=int(str(data["version"])),
            effective_from=date.fromisoformat(str(data["effective_from"])),
            rates={CardKind(k): _rule_from_dict(v, cur) for k, v in rates_in.items()},
            fallback=_rule_from_dict(fallback, cur),
            fixed_fee=Money(int(str(data.get("fixed_fee_minor", 0))), cur),
            same_day_surcharge=PayoutSurcharge(
                Decimal(str(surcharge.get("rate", "0"))),
                Money(int(str(surcharge.get("fixed_minor", 0))), cur)),
            refund_fee_policy=RefundFeePolicy(str(data.get("refund_fee_policy", "pro_rata"))),
            currency=cur,
        )
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise ValidationError(f"fee schedule is not valid: {exc}") from exc
