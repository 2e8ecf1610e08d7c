"""Fee schedules per merchant, versioned by effective date, and the cycle comparison view.

A new version applies to transactions whose business date is on or after its effective
date; the fee of each transaction is fixed when it is captured, so settled (and captured)
history never changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

from sqlalchemy import func, select

from autosettle.domain.calendar import SettlementCycle
from autosettle.domain.cards import CardKind
from autosettle.domain.errors import NotFoundError, ValidationError
from autosettle.domain.fees import (
    FeeSchedule,
    compare_cycles,
    schedule_from_dict,
    schedule_to_dict,
)
from autosettle.domain.money import Money, currency
from autosettle.services.audit import record
from autosettle.services.context import Principal, ServiceContext
from autosettle.services.settlement import business_calendar, fee_schedule
from autosettle.store.tables import settlement_items

COMPARE_DAYS_MAX = 366


def current_schedule(ctx: ServiceContext, who: Principal, merchant_id: str,
                     on: date) -> FeeSchedule:
    """The schedule in force for the merchant on ``on`` (its own or the default)."""
    who.require_merchant(merchant_id)
    with ctx.db.unit_of_work() as uow:
        merchant = uow.merchants.get(merchant_id)
        if merchant is None:
            raise NotFoundError(f"merchant {merchant_id} not found")
        return fee_schedule(uow, merchant, on)


def set_schedule(ctx: ServiceContext, who: Principal, merchant_id: str,
                 spec: Mapping[str, object]) -> FeeSchedule:
    """Add a new version (operator). Its effective date may not be in the past: captured
    transactions keep the fee they were captured with."""
    who.require_operator()
    now = ctx.now()
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
        uow.config.add_fee_schedule(merchant_id, version, schedule.effective_from,
                                    schedule_to_dict(schedule), now)
        record(uow, who, "fee_schedule.create", f"merchant/{merchant_id}/fee-schedules/"
               f"{version}", now, detail={"effective_from": schedule.effective_from.isoformat()})
    return schedule


def cycle_costs(ctx: ServiceContext, who: Principal, merchant_id: str, date_from: date,
                date_to: date) -> dict[str, int]:
    """What the merchant's captured sales in a period would have cost on each cycle.

    The document's "settlement mode mismatch": a merchant on D+0 sees what T+1 would have
    saved, and the reverse. Payout counts per cycle come from the business calendar: D0 pays
    every day with sales, T0 every workday with sales, T1/D1 once per settlement date.
    """
    who.require_merchant(merchant_id)
    if not date_from <= date_to or (date_to - date_from).days > COMPARE_DAYS_MAX:
        raise ValidationError(f"period must be 1..{COMPARE_DAYS_MAX} days")
    with ctx.db.unit_of_work() as uow:
        merchant = uow.merchants.get(merchant_id)
        if merchant is None:
            raise NotFoundError(f"merchant {merchant_id} not found")
        schedule = fee_schedule(uow, merchant, date_to)
        calendar = business_calendar(uow)
        c = settlement_items.c
        rows = uow.connection.execute(
            select(c.business_date, c.card_kind, c.currency, func.sum(c.amount_minor))
            .where(c.merchant_id == merchant_id, c.kind == "capture",
                   c.business_date >= date_from, c.business_date <= date_to)
            .group_by(c.business_date, c.card_kind, c.currency)).all()
    days = sorted({r[0] for r in rows})
    transactions = [(Money(int(r[3]), currency(r[2])),
                     CardKind(r[1]) if r[1] else CardKind.OTHER) for r in rows]
    payouts = {
        SettlementCycle.D0: len(days),
        SettlementCycle.T0: len({calendar.workday_on_or_after(d) for d in days}),
        SettlementCycle.D1: len({d + timedelta(days=1) for d in days}),
        SettlementCycle.T1: len({calendar.nth_workday_after(d, 1) for d in days}),
    }
    costs = compare_cycles(schedule, transactions, payouts)
    return {cycle.value: cost.amount_minor for cycle, cost in costs.items()}
