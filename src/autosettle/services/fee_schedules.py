"""Fee schedules per merchant, versioned by effective date, and the cycle comparison view.

A new version applies to transactions whose business date is on or after its effective
date; the fee of each transaction is fixed when it is captured, so settled (and captured)
history never changes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from autosettle.domain.calendar import SettlementCycle, business_date
from autosettle.domain.errors import NotFoundError, ValidationError
from autosettle.domain.fees import (
    FeeSchedule,
    payout_surcharge,
    schedule_from_dict,
    schedule_to_dict,
)
from autosettle.domain.merchants import Merchant
from autosettle.domain.money import Money, currency
from autosettle.services.access import Area, require_read
from autosettle.services.audit import record
from autosettle.services.context import Principal, ServiceContext
from autosettle.services.settlement_items import (
    business_calendar,
    fee_schedule,
    schedule_from_versions,
)

COMPARE_DAYS_MAX = 366


def current_schedule(ctx: ServiceContext, who: Principal, merchant_id: str,
                     on: date) -> FeeSchedule:
    """The schedule in force for the merchant on ``on`` (its own or the default)."""
    require_read(who, Area.FEES, merchant_id)
    with ctx.db.unit_of_work() as uow:
        merchant = uow.merchants.get(merchant_id)
        if merchant is None:
            raise NotFoundError(f"merchant {merchant_id} not found")
        return fee_schedule(uow, merchant, on)


def schedule_versions(ctx: ServiceContext, who: Principal,
                      merchant_id: str) -> list[FeeSchedule]:
    """Every version of the merchant's own schedule, oldest first."""
    require_read(who, Area.FEES, merchant_id)
    with ctx.db.unit_of_work() as uow:
        return [schedule_from_dict(v) for v in uow.config.fee_schedule_versions(merchant_id)]


def set_schedule(ctx: ServiceContext, who: Principal, merchant_id: str,
                 spec: Mapping[str, object]) -> FeeSchedule:
    """Add a new version (operator). Its effective date may not be in the past, nor on a
    business date that already has captured transactions: those keep the fee they were
    captured with, so a version covering them would not apply "from its effective date"."""
    who.require_operator()
    now = ctx.now()
    today = business_date(now, ctx.settings.cutoff)
    with ctx.db.unit_of_work() as uow:
        if uow.merchants.get(merchant_id) is None:
            raise NotFoundError(f"merchant {merchant_id} not found")
        versions = uow.config.fee_schedule_versions(merchant_id)
        version = len(versions) + 1
        schedule = schedule_from_dict({**spec, "version": version,
                                       "schedule_id": spec.get("schedule_id",
                                                               f"{merchant_id}")})
        if any(v["effective_from"] == schedule.effective_from.isoformat() for v in versions):
            raise ValidationError("a version with this effective date exists")
        if schedule.effective_from < today:
            raise ValidationError(f"effective date {schedule.effective_from} is in the past "
                                  f"(today's business date is {today})")
        latest = uow.settlement.latest_business_date(merchant_id)
        if latest is not None and latest >= schedule.effective_from:
            raise ValidationError(
                f"transactions of {latest} were already captured with the previous fees; "
                f"the new version can take effect on {latest + timedelta(days=1)} at the "
                "earliest")
        uow.config.add_fee_schedule(merchant_id, version, schedule.effective_from,
                                    schedule_to_dict(schedule), now)
        record(uow, who, "fee_schedule.create", f"merchant/{merchant_id}/fee-schedules/"
               f"{version}", now, detail={"effective_from": schedule.effective_from.isoformat()})
    return schedule


@dataclass(frozen=True, slots=True)
class CycleCosts:
    """:func:`cycle_costs` with the merchant's own cycle and currency."""

    current_cycle: str
    currency: str
    costs: dict[str, int]


def compare_cycles(ctx: ServiceContext, who: Principal, merchant_id: str, date_from: date,
                   date_to: date) -> CycleCosts:
    """:func:`cycle_costs`, with the merchant's own cycle and currency to compare with."""
    merchant, costs = _cycle_costs(ctx, who, merchant_id, date_from, date_to)
    return CycleCosts(merchant.settlement_cycle.value, merchant.currency, costs)


def cycle_costs(ctx: ServiceContext, who: Principal, merchant_id: str, date_from: date,
                date_to: date) -> dict[str, int]:
    """What the merchant's captured sales in a period would have cost on each cycle (see
    :func:`_cycle_costs`)."""
    return _cycle_costs(ctx, who, merchant_id, date_from, date_to)[1]


def _cycle_costs(ctx: ServiceContext, who: Principal, merchant_id: str, date_from: date,
                 date_to: date) -> tuple[Merchant, dict[str, int]]:
    """What the merchant's captured sales in a period would have cost on each cycle.

    The document's "settlement mode mismatch": a merchant on D+0 sees what T+1 would have
    saved, and the reverse. The transaction fees are the ones actually charged (fixed per
    transaction at capture by the version in force on its business date, caps and minimums
    included), the same on every cycle. Same-day cycles add the surcharge of each payout
    they would have made, priced like a settlement run does: by the version in force on the
    payout date, on that payout's net (sales − fees), and not charged on a payout smaller
    than the surcharge. Payout dates come from the business calendar: D0 pays every day
    with sales, T0 every workday (Saturday's and Sunday's sales with Monday's).
    """
    require_read(who, Area.FEES, merchant_id)
    if not date_from <= date_to or (date_to - date_from).days > COMPARE_DAYS_MAX:
        raise ValidationError(f"period must be 1..{COMPARE_DAYS_MAX} days")
    with ctx.db.unit_of_work() as uow:
        merchant = uow.merchants.get(merchant_id)
        if merchant is None:
            raise NotFoundError(f"merchant {merchant_id} not found")
        specs = uow.config.fee_schedule_versions(merchant_id)
        calendar = business_calendar(uow)
        rows = uow.settlement.capture_totals_by_day(merchant_id, date_from, date_to)
    fees = sum(fee for _, _, _, fee in rows)
    payout_date: dict[SettlementCycle, Callable[[date], date]] = {
        SettlementCycle.D0: lambda d: d,
        SettlementCycle.T0: calendar.workday_on_or_after,
        SettlementCycle.D1: lambda d: d + timedelta(days=1),
        SettlementCycle.T1: lambda d: calendar.nth_workday_after(d, 1),
    }
    costs: dict[str, int] = {}
    for cycle, paid_on in payout_date.items():
        nets: dict[tuple[date, str], int] = defaultdict(int)
        for day, cur, amount, fee in rows:
            nets[(paid_on(day), cur)] += amount - fee
        surcharges = 0
        for (day, cur), net in nets.items():
            schedule = schedule_from_versions(specs, merchant, day)
            if net <= 0 or cur != schedule.currency.code:
                continue
            surcharge = payout_surcharge(schedule, cycle, Money(net, currency(cur)))
            if surcharge.amount_minor < net:  # as a settlement run charges it
                surcharges += surcharge.amount_minor
        costs[cycle.value] = fees + surcharges
    return merchant, costs
