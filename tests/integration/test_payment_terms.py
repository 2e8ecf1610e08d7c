"""What a sale is decided and priced on is read fresh by every sale, on both databases.

The payment service reads the terminal, the merchant, its rules and the *stamps* of the
calendar overrides and fee schedules in one statement and reuses what it parsed from an
equal stamp before (``services.settlement_items``). These tests change each of them between
two sales and check that the very next sale sees the change, in both directions.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select

from autosettle.domain.calendar import SHANGHAI
from autosettle.domain.merchants import CycleCode, MerchantStatus, MerchantType, TerminalStatus
from autosettle.domain.money import Money
from autosettle.domain.response_codes import ResponseCode
from autosettle.domain.transactions import TxnType
from autosettle.services import maintenance, merchants, payments
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.services.payments import CardInput, PaymentRequest, PaymentResult
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.store.tables import settlement_items

MID, TID = "898310058120077", "PT000001"
CARD = "6222020200112345679"
FRIDAY, MONDAY, TUESDAY = date(2026, 9, 11), date(2026, 9, 14), date(2026, 9, 15)


@pytest.fixture
def shop(ctx: ServiceContext, sim: IssuerSimulator, clock: Any) -> ServiceContext:
    merchants.create_merchant(ctx, SYSTEM, merchants.NewMerchant(
        MID, "Terms Grocery Co., Ltd.", MerchantType.ENTERPRISE, "5411",
        settlement_cycle=CycleCode.T1))
    merchants.add_terminal(ctx, SYSTEM, MID, merchants.NewTerminal(TID))
    sim.add_card(CARD, balance_minor=100_000_000, pin=None)
    clock.now = datetime(2026, 9, 11, 10, 0, tzinfo=SHANGHAI).astimezone(UTC)  # a Friday
    return ctx


def sale(ctx: ServiceContext) -> PaymentResult:
    return payments.authorize(ctx, PaymentRequest(TxnType.SALE, MID, TID, Money(10_000),
                                                  CardInput(CARD)))


def due_date(ctx: ServiceContext, result: PaymentResult) -> date:
    assert result.approved and result.record is not None, result.message
    with ctx.db.unit_of_work() as uow:
        value: date = uow.connection.execute(select(settlement_items.c.due_date).where(
            settlement_items.c.txn_id == result.record.txn_id)).scalar_one()
    return value


def test_a_calendar_override_applies_to_the_very_next_sale(shop: ServiceContext) -> None:
    assert due_date(shop, sale(shop)) == MONDAY                      # T+1 from a Friday
    maintenance.set_calendar_override(shop, SYSTEM, MONDAY, False, "bank closure")
    assert due_date(shop, sale(shop)) == TUESDAY
    maintenance.set_calendar_override(shop, SYSTEM, MONDAY, True, "closure called off")
    assert due_date(shop, sale(shop)) == MONDAY


def test_a_suspended_terminal_or_merchant_is_refused_at_once(shop: ServiceContext) -> None:
    assert sale(shop).approved
    merchants.set_terminal_status(shop, SYSTEM, MID, TID, TerminalStatus.SUSPENDED)
    assert sale(shop).response_code is ResponseCode.NOT_PERMITTED_TO_TERMINAL
    merchants.set_terminal_status(shop, SYSTEM, MID, TID, TerminalStatus.ACTIVE)
    assert sale(shop).approved
    merchants.set_merchant_status(shop, SYSTEM, MID, MerchantStatus.SUSPENDED)
    assert sale(shop).response_code is ResponseCode.INVALID_MERCHANT
    merchants.set_merchant_status(shop, SYSTEM, MID, MerchantStatus.ACTIVE)
    assert sale(shop).approved
