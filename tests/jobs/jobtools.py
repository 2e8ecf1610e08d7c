"""Helpers of the scheduler tests: merchants with verified accounts, settlement items
written directly (as the payment service would), and checks that nothing was paid twice."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select

from autosettle.domain.calendar import SHANGHAI, settlement_date
from autosettle.domain.ledger import Account, AccountType, transfer
from autosettle.domain.merchants import AccountType as BankAccountType
from autosettle.domain.merchants import CycleCode, MerchantType
from autosettle.domain.money import Money
from autosettle.services import merchants
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.services.settlement_items import business_calendar
from autosettle.store.settlement import SettlementItem
from autosettle.store.tables import payouts, settlement_batches


class ClockLike(Protocol):
    """The ``clock`` fixture (tests/conftest.py FakeClock)."""

    now: datetime

    def __call__(self) -> datetime: ...

    def advance(self, **delta: float) -> datetime: ...


FEE_PER_MILLE = 6
SAME_DAY_SURCHARGE_MINOR = 200  # the default schedule's 2.00 CNY per T+0/D+0 payout


def shanghai(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
             second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI)


def mid(n: int) -> str:
    return f"8983100{n:08d}"


def add_merchant(ctx: ServiceContext, merchant_id: str, cycle: str = "T1") -> None:
    legal = f"Shop {merchant_id} Co., Ltd."
    merchants.create_merchant(ctx, SYSTEM, merchants.NewMerchant(
        merchant_id, legal, MerchantType.ENTERPRISE, "5411", settlement_cycle=CycleCode(cycle)))
    merchants.add_settlement_account(ctx, SYSTEM, merchant_id, merchants.NewSettlementAccount(
        "ICBC", f"62122602{merchant_id[-8:]}7", legal, BankAccountType.CORPORATE))


def fee_of(amount_minor: int) -> int:
    return amount_minor * FEE_PER_MILLE // 1000


def add_sales(ctx: ServiceContext, merchant_id: str, business_day: date,
              amounts: Sequence[int]) -> int:
    """Captured sales as the payment service records them (item + ledger entry, one unit
    of work); returns their total net of fees."""
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        merchant = uow.merchants.get(merchant_id)
        assert merchant is not None
        cycle = merchant.settlement_cycle.value
        due = settlement_date(business_day, cycle, business_calendar(uow))
        for amount in amounts:
            txn = uuid.uuid4().hex
            uow.settlement.add_item(SettlementItem(
                merchant_id=merchant_id, txn_id=txn, source_txn_id=txn, kind="capture",
                txn_type="sale", card_kind="debit", business_date=business_day, cycle=cycle,
                due_date=due, amount_minor=amount, fee_minor=fee_of(amount), currency="CNY",
                fee_schedule="test@v1", held=False, batch_id=None, created_at=now))
            uow.ledger.post(transfer(
                f"test-capture:{txn}", "sale", Account(AccountType.CHANNEL_RECEIVABLE),
                Account(AccountType.MERCHANT_UNSETTLED, merchant_id), Money(amount),
                merchant_id=merchant_id, reference=txn), now)
    return sum(a - fee_of(a) for a in amounts)


def batches(ctx: ServiceContext, merchant_id: str | None = None) -> list[dict[str, Any]]:
    query = select(settlement_batches).order_by(settlement_batches.c.settlement_date,
                                                settlement_batches.c.batch_id)
    if merchant_id is not None:
        query = query.where(settlement_batches.c.merchant_id == merchant_id)
    with ctx.db.unit_of_work() as uow:
        return [dict(r._mapping) for r in uow.connection.execute(query)]


def batch_count(ctx: ServiceContext) -> int:
    with ctx.db.unit_of_work() as uow:
        return int(uow.connection.execute(
            select(func.count()).select_from(settlement_batches)).scalar() or 0)


def payout_total(ctx: ServiceContext, merchant_id: str | None = None) -> int:
    query = select(func.coalesce(func.sum(payouts.c.amount_minor), 0))
    if merchant_id is not None:
        query = query.where(payouts.c.merchant_id == merchant_id)
    with ctx.db.unit_of_work() as uow:
        return int(uow.connection.execute(query).scalar() or 0)


def unclaimed_items(ctx: ServiceContext) -> int:
    with ctx.db.unit_of_work() as uow:
        return int(uow.connection.execute(
            select(func.count()).select_from(uow.claims.with_cursors())
            .where(uow.claims.unsettled_condition())).scalar() or 0)


def ledger_balanced(ctx: ServiceContext) -> bool:
    with ctx.db.unit_of_work() as uow:
        return all(v == 0 for v in uow.ledger.imbalance_by_currency().values())


def at_settlement_time(ctx: ServiceContext, day: date, minutes_after: int = 0) -> datetime:
    t: time = ctx.settings.settlement_time
    return datetime.combine(day, t, SHANGHAI) + timedelta(minutes=minutes_after)


def advance_clock_to(ctx: ServiceContext, day: date, hour: int = 2) -> None:
    """Move the test's fake clock (``ctx.clock``) forward to ``hour`` o'clock on ``day`` in
    Shanghai when it is still behind: a settlement run or payout export may not be dated
    after the current business date, so a test settles a date on (or after) that date."""
    target = shanghai(day.year, day.month, day.day, hour)
    clock: Any = ctx.clock
    if clock() < target:
        clock.now = target
