"""Fee schedule versions on both databases: a change applies from its effective business
date, earlier transactions keep their fee, settled batches never change; and the cycle
comparison (what D+0 costs next to T+1) adds exactly the same-day surcharges.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select

from autosettle.domain.calendar import SHANGHAI
from autosettle.domain.errors import ValidationError
from autosettle.domain.merchants import AccountType, CycleCode, MerchantType
from autosettle.domain.money import Money
from autosettle.domain.settlement_records import BatchRecord, SettlementItem
from autosettle.domain.transactions import TxnType
from autosettle.services import fee_schedules, merchants, payments, settlement
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.services.payments import CardInput, OriginalRef, PaymentRequest
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.store.tables import settlement_items

MID, TID = "898310058120001", "FS000001"
DEBIT = "6222020200112345679"
CREDIT = "6258020000000000004"


@pytest.fixture
def shop(ctx: ServiceContext, sim: IssuerSimulator) -> ServiceContext:
    name = "Fee Schedule Restaurant Co., Ltd."
    merchants.create_merchant(ctx, SYSTEM, merchants.NewMerchant(
        MID, name, MerchantType.ENTERPRISE, "5812", settlement_cycle=CycleCode.T1))
    merchants.add_settlement_account(ctx, SYSTEM, MID, merchants.NewSettlementAccount(
        "ICBC", "6212260200001234567", name, AccountType.CORPORATE))
    merchants.add_terminal(ctx, SYSTEM, MID, merchants.NewTerminal(TID))
    sim.add_card(DEBIT, balance_minor=100_000_000, pin=None)
    sim.add_card(CREDIT, kind="credit", credit_limit_minor=100_000_000, pin=None)
    return ctx


def at_shanghai(clock: Any, month: int, day: int, hour: int = 10, minute: int = 0,
                second: int = 0) -> None:
    clock.now = datetime(2026, month, day, hour, minute, second,
                         tzinfo=SHANGHAI).astimezone(UTC)


def spec(effective: date, *, credit: str = "0.0060", debit_cap_minor: int = 2_000,
         fixed_fee_minor: int = 0, surcharge_fixed_minor: int = 200,
         surcharge_rate: str = "0", refund_policy: str = "pro_rata") -> dict[str, object]:
    return {
        "effective_from": effective.isoformat(), "currency": "CNY",
        "rates": {"debit": {"rate": "0.0050", "cap_minor": debit_cap_minor,
                            "minimum_minor": None},
                  "credit": {"rate": credit, "cap_minor": None, "minimum_minor": None}},
        "fallback": {"rate": "0.0060", "cap_minor": None, "minimum_minor": None},
        "fixed_fee_minor": fixed_fee_minor,
        "same_day_surcharge": {"rate": surcharge_rate, "fixed_minor": surcharge_fixed_minor},
        "refund_fee_policy": refund_policy,
    }


def sale(ctx: ServiceContext, fen: int, pan: str = CREDIT) -> str:
    result = payments.authorize(ctx, PaymentRequest(TxnType.SALE, MID, TID, Money(fen),
                                                    CardInput(pan)))
    assert result.approved and result.record is not None, result.message
    return result.record.txn_id


def refund(ctx: ServiceContext, original: str, fen: int) -> str:
    result = payments.authorize(ctx, PaymentRequest(TxnType.REFUND, MID, TID, Money(fen),
                                                    None, OriginalRef(txn_id=original)))
    assert result.approved and result.record is not None, result.message
    return result.record.txn_id


def item(ctx: ServiceContext, txn_id: str) -> SettlementItem:
    with ctx.db.unit_of_work() as uow:
        [found] = uow.settlement.items_of_txn(MID, txn_id)
    return found


def captures(ctx: ServiceContext) -> list[SettlementItem]:
    with ctx.db.unit_of_work() as uow:
        ids = uow.connection.execute(select(settlement_items.c.txn_id).where(
            settlement_items.c.merchant_id == MID,
            settlement_items.c.kind == "capture")).scalars().all()
        return [i for txn in ids for i in uow.settlement.items_of_txn(MID, txn)]


def history(ctx: ServiceContext) -> tuple[list[BatchRecord], list[SettlementItem]]:
    with ctx.db.unit_of_work() as uow:
        batches = uow.settlement.batches(MID, None, None, 100)
        items = [i for b in batches for i in uow.claims.items_of_batch(b.batch_id)]
    return batches, items


def test_new_version_applies_from_its_business_date(shop: ServiceContext, clock: Any) -> None:
    at_shanghai(clock, 9, 14)                                        # Monday
    fee_schedules.set_schedule(shop, SYSTEM, MID, spec(date(2026, 9, 14)))
    monday = sale(shop, 100_000)                                     # v1: 0.60% → 600
    fee_schedules.set_schedule(shop, SYSTEM, MID, spec(
        date(2026, 9, 16), credit="0.0038", fixed_fee_minor=10, refund_policy="none"))
    at_shanghai(clock, 9, 15, 22, 59, 59)                            # Tuesday, before cut-off
    tuesday = sale(shop, 100_000)                                    # still v1
    at_shanghai(clock, 9, 15, 23, 0, 0)                              # Wednesday's business
    after_cutoff = sale(shop, 100_000)                               # v2: 380 + 10
    at_shanghai(clock, 9, 16)
    wednesday = sale(shop, 100_000)
    fees = {txn: (item(shop, txn).fee_minor, item(shop, txn).fee_schedule)
            for txn in (monday, tuesday, after_cutoff, wednesday)}
    assert fees == {monday: (600, f"{MID}@v1"), tuesday: (600, f"{MID}@v1"),
                    after_cutoff: (390, f"{MID}@v2"), wednesday: (390, f"{MID}@v2")}

    assert settlement.settle(shop, date(2026, 9, 15)).batches == 1
    assert settlement.settle(shop, date(2026, 9, 16)).batches == 1
    before = history(shop)
    assert [b.fee_minor for b in before[0]] == [600, 600]

    # A later version, and a refund under v2 (which keeps fees) of a v1 sale: the refund
    # follows the terms the sale was priced with and returns half of its fee.
    fee_schedules.set_schedule(shop, SYSTEM, MID, spec(date(2026, 9, 18), credit="0.0100"))
    at_shanghai(clock, 9, 17)
    returned = refund(shop, monday, 50_000)
    kept = refund(shop, wednesday, 50_000)
    assert (item(shop, returned).amount_minor, item(shop, returned).fee_minor) == (-50_000,
                                                                                  -300)
    assert (item(shop, kept).amount_minor, item(shop, kept).fee_minor) == (-50_000, 0)
    assert history(shop) == before                    # settled history never changes
    run = settlement.settle(shop, date(2026, 9, 17))
    assert run.batches == 1
    third = history(shop)[0][0]
    assert (third.gross_minor, third.fee_minor) == (200_000, 780)
    at_shanghai(clock, 9, 18)  # a run may not be dated after the current business date
    assert settlement.settle(shop, date(2026, 9, 18)).batches == 1     # the two refunds
    assert history(shop)[0][2:] == before[0]


def test_a_version_cannot_reach_back_over_captured_transactions(shop: ServiceContext,
                                                                clock: Any) -> None:
    at_shanghai(clock, 9, 16)
    with pytest.raises(ValidationError, match="in the past"):   # even before any sale
        fee_schedules.set_schedule(shop, SYSTEM, MID, spec(date(2026, 9, 15)))
    sale(shop, 10_000)
    for effective in (date(2026, 9, 15), date(2026, 9, 16)):   # the past; today, with sales
        with pytest.raises(ValidationError):
            fee_schedules.set_schedule(shop, SYSTEM, MID, spec(effective))
    fee_schedules.set_schedule(shop, SYSTEM, MID, spec(date(2026, 9, 17)))
    with pytest.raises(ValidationError):   # one version per effective date
        fee_schedules.set_schedule(shop, SYSTEM, MID, spec(date(2026, 9, 17)))
    at_shanghai(clock, 9, 16, 23, 30)       # after the cut-off: 09-17's business
    assert item(shop, sale(shop, 10_000)).fee_schedule == f"{MID}@v1"


def test_cycle_costs_d0_costs_t1_plus_the_surcharges(shop: ServiceContext,
                                                     clock: Any) -> None:
    at_shanghai(clock, 9, 11)                                        # Friday
    fee_schedules.set_schedule(shop, SYSTEM, MID, spec(date(2026, 9, 11)))
    fee_schedules.set_schedule(shop, SYSTEM, MID, spec(date(2026, 9, 14), credit="0.0050",
                                                       surcharge_fixed_minor=300))
    sale(shop, 600_000, DEBIT)       # 0.50% = 3000, capped at 2000 per transaction
    sale(shop, 600_000, DEBIT)
    at_shanghai(clock, 9, 12)                                        # Saturday
    sale(shop, 100_000)
    at_shanghai(clock, 9, 13)                                        # Sunday
    sale(shop, 100_000)
    at_shanghai(clock, 9, 14)                                        # Monday: v2
    sale(shop, 100_000)
    at_shanghai(clock, 9, 15)
    fees = sum(i.fee_minor for i in captures(shop))
    assert fees == 2_000 + 2_000 + 600 + 600 + 500
    costs = fee_schedules.cycle_costs(shop, SYSTEM, MID, date(2026, 9, 11), date(2026, 9, 14))
    assert costs["T1"] == costs["D1"] == fees
    # D0 pays every day with sales: Fri, Sat, Sun at 2.00 (v1), Mon at 3.00 (v2).
    assert costs["D0"] - costs["T1"] == 3 * 200 + 300
    # T0 pays on workdays: Friday's, then Sat + Sun + Mon together on Monday (v2).
    assert costs["T0"] - costs["T1"] == 200 + 300
