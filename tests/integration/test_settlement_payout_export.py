"""Payouts on both databases: the payout file of a day lists every payout marked sent in
it, however many payouts the system made before (it used to read only the 10,000 oldest);
a blocked payout is retried only once the batch passes the checks before money leaves.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from jobtools import (
    CHANNEL_RECEIVABLE,
    FEE_INCOME,
    PAYOUT_CLEARING,
    assert_balances,
    merchant_payable,
)
from sqlalchemy import insert

from autosettle.domain.errors import ConflictError
from autosettle.domain.merchants import AccountType, CycleCode, MerchantType
from autosettle.domain.money import Money
from autosettle.domain.transactions import TxnType
from autosettle.services import merchants, payments, payouts, settlement
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.services.payments import CardInput, PaymentRequest
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.store.tables import payouts as payouts_table

MID, TID = "898310058120009", "PX000001"
DEBIT = "6222020200112345679"
HISTORY = 10_001
OLD = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
PAID = 50_000 - 250 - 200   # MCC 5812: debit 0.50 %; D+0: 2.00 per same-day payout
SETTLED = {CHANNEL_RECEIVABLE: 50_000, FEE_INCOME: -450, merchant_payable(MID): -PAID}


def test_payout_file_after_a_long_history(ctx: ServiceContext, sim: IssuerSimulator) -> None:
    name = "Payout History Noodles Co., Ltd."
    merchants.create_merchant(ctx, SYSTEM, merchants.NewMerchant(
        MID, name, MerchantType.ENTERPRISE, "5812", settlement_cycle=CycleCode.D0))
    merchants.add_settlement_account(ctx, SYSTEM, MID, merchants.NewSettlementAccount(
        "ICBC", "6212260200001234567", name, AccountType.CORPORATE))
    merchants.add_terminal(ctx, SYSTEM, MID, merchants.NewTerminal(TID))
    sim.add_card(DEBIT, balance_minor=10_000_000, pin=None)
    with ctx.db.unit_of_work() as uow:   # earlier payouts, long confirmed
        uow.connection.execute(insert(payouts_table), [
            {"payout_id": f"old{n:029d}", "merchant_id": MID, "batch_id": f"old-{n}",
             "account_id": None, "amount_minor": 100, "currency": "CNY",
             "status": "confirmed", "attempts": 0, "expected_arrival": date(2026, 1, 5),
             "file_name": "payouts-20260105.csv", "failure_reason": None,
             "created_at": OLD, "updated_at": OLD} for n in range(HISTORY)])
    sale = payments.authorize(ctx, PaymentRequest(TxnType.SALE, MID, TID, Money(50_000),
                                                  CardInput(DEBIT)))
    assert sale.approved, sale.message
    run = settlement.settle(ctx, date(2026, 9, 18), settlement.SAME_DAY)
    assert (run.batches, run.payout_minor) == (1, PAID)
    settled = assert_balances(ctx, SETTLED)
    file = payouts.export_payouts(ctx, date(2026, 9, 18))
    assert (file.count, file.total_minor) == (1, run.payout_minor)
    sent = assert_balances(ctx, {merchant_payable(MID): PAID, PAYOUT_CLEARING: -PAID},
                           since=settled)
    again = payouts.export_payouts(ctx, date(2026, 9, 18))   # idempotent
    assert (again.count, again.total_minor) == (1, run.payout_minor)
    assert_balances(ctx, {}, since=sent)   # and posts nothing twice
    assert len(file.csv_path.read_text().splitlines()) == 2   # the header and our payout


def test_retry_of_a_blocked_payout_checks_the_batch_again(ctx: ServiceContext,
                                                           sim: IssuerSimulator) -> None:
    name = "Blocked Payout Noodles Co., Ltd."
    merchants.create_merchant(ctx, SYSTEM, merchants.NewMerchant(
        MID, name, MerchantType.ENTERPRISE, "5812", settlement_cycle=CycleCode.D0))
    merchants.add_settlement_account(ctx, SYSTEM, MID, merchants.NewSettlementAccount(
        "ICBC", "6212260200001234567", "Somebody Else Ltd.", AccountType.CORPORATE))
    merchants.add_terminal(ctx, SYSTEM, MID, merchants.NewTerminal(TID))
    sim.add_card(DEBIT, balance_minor=10_000_000, pin=None)
    sale = payments.authorize(ctx, PaymentRequest(TxnType.SALE, MID, TID, Money(50_000),
                                                  CardInput(DEBIT)))
    assert sale.approved, sale.message
    run = settlement.settle(ctx, date(2026, 9, 18), settlement.SAME_DAY)
    assert (run.batches, run.blocked_payouts) == (1, 1)   # 一清: not the merchant's account
    settled = assert_balances(ctx, SETTLED)   # blocked: the money stays on the payable
    with ctx.db.unit_of_work() as uow:
        [payout] = uow.settlement.payouts(merchant_id=MID)
        assert payout.status == "blocked" and "一清" in (payout.failure_reason or "")
        assert uow.settlement.batch(payout.batch_id).status == "payout_blocked"  # type: ignore[union-attr]
        assert [a.kind for a in uow.alerts.open_alerts(MID)] == ["payout_blocked"]
    merchants.add_settlement_account(ctx, SYSTEM, MID, merchants.NewSettlementAccount(
        "ICBC", "6212260200007654321", name, AccountType.CORPORATE))
    with ctx.db.unit_of_work() as uow:
        batch = uow.settlement.batch(payout.batch_id)
    assert batch is not None
    # Meanwhile the batch was tampered with. Each change is seen by one check at least: its
    # items no longer add up to it (count, gross), its entry no longer posts what it says
    # (gross, surcharge).
    for change in ({"gross_minor": 1}, {"item_count": 2}, {"surcharge_minor": 0}):
        with ctx.db.unit_of_work() as uow:
            uow.settlement.set_batch(payout.batch_id, **change)
        with pytest.raises(ConflictError, match="still fails its checks"):
            payouts.retry_payout(ctx, SYSTEM, payout.payout_id)
        with ctx.db.unit_of_work() as uow:
            uow.settlement.set_batch(payout.batch_id, **{
                field: getattr(batch, field) for field in change})
    retried = payouts.retry_payout(ctx, SYSTEM, payout.payout_id)
    assert (retried.status, retried.attempts) == ("pending", 1)
    assert_balances(ctx, {}, since=settled)
    assert payouts.export_payouts(ctx, date(2026, 9, 18)).count == 1
    assert_balances(ctx, {merchant_payable(MID): PAID, PAYOUT_CLEARING: -PAID}, since=settled)
