"""Settlement end to end on both databases: items, batches, fees, debt, payouts."""

from __future__ import annotations

from datetime import date

import pytest
from jobtools import advance_clock_to

from autosettle.domain.merchants import AccountType, CycleCode, MerchantType
from autosettle.domain.money import Money
from autosettle.domain.transactions import TxnType
from autosettle.services import merchants, payments, payouts, settlement
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.services.payments import CardInput, OriginalRef, PaymentRequest
from autosettle.simulators.issuer import IssuerSimulator

MID = "898310054110001"
NOODLES = "898310058120001"
TID, TID2 = "HL000001", "LW000001"
DEBIT = "6222020200112345679"
CREDIT = "6258020000000000004"


@pytest.fixture
def shops(ctx: ServiceContext, sim: IssuerSimulator) -> ServiceContext:
    for mid, tid, name, kind, cycle in (
        (MID, TID, "Hualian Supermarket", MerchantType.ENTERPRISE, CycleCode.T1),
        (NOODLES, TID2, "Wang Jianguo", MerchantType.INDIVIDUAL, CycleCode.D0),
    ):
        merchants.create_merchant(ctx, SYSTEM, merchants.NewMerchant(
            mid, name, kind, "5411" if mid == MID else "5812", settlement_cycle=cycle))
        merchants.add_settlement_account(ctx, SYSTEM, mid, merchants.NewSettlementAccount(
            "ICBC", "6212260200001234567", name,
            AccountType.CORPORATE if kind is MerchantType.ENTERPRISE else AccountType.PERSONAL))
        merchants.add_terminal(ctx, SYSTEM, mid, merchants.NewTerminal(tid))
    sim.add_card(DEBIT, balance_minor=10_000_000, pin=None)
    sim.add_card(CREDIT, kind="credit", credit_limit_minor=10_000_000, pin=None)
    return ctx


def pay(ctx: ServiceContext, kind: TxnType, fen: int | None, mid: str = MID, tid: str = TID,
        pan: str | None = DEBIT, original: str | None = None) -> payments.PaymentResult:
    result = payments.authorize(ctx, PaymentRequest(
        kind, mid, tid, Money(fen) if fen else None, CardInput(pan) if pan else None,
        OriginalRef(txn_id=original) if original else None))
    assert result.approved, result.message
    return result


def balance(ctx: ServiceContext, code: str) -> int:
    with ctx.db.unit_of_work() as uow:
        return uow.ledger.balance(code, "CNY")


def test_t1_settlement_with_fees_refund_and_payout(shops: ServiceContext) -> None:
    pay(shops, TxnType.SALE, 1_000_000)  # debit, discounted MCC: 0.41% cap 18
    s2 = pay(shops, TxnType.SALE, 10_001, pan=CREDIT)  # credit 0.51% → 51.0051 → 51
    pay(shops, TxnType.REFUND, 5_000, pan=None, original=s2.record.txn_id)  # type: ignore[union-attr]
    s3 = pay(shops, TxnType.SALE, 777)
    pay(shops, TxnType.VOID, None, pan=None, original=s3.record.txn_id)  # type: ignore[union-attr]
    # Friday 2026-09-18 → T+1 is Sunday 2026-09-20, an in-lieu workday
    assert settlement.expected_settlement(shops, date(2026, 9, 18), "T1") == date(2026, 9, 20)
    advance_clock_to(shops, date(2026, 9, 19))
    early = settlement.settle(shops, date(2026, 9, 19))
    assert early.batches == 0
    advance_clock_to(shops, date(2026, 9, 20))
    run = settlement.settle(shops, date(2026, 9, 20))
    assert run.batches == 1, run
    fee_s1 = 1800
    fee_s2 = 51
    with shops.db.unit_of_work() as uow:
        batch = uow.settlement.batches(MID, None, None, 10)[0]
        credit = fee_s2 - (batch.fee_minor - fee_s1)
    assert batch.gross_minor == 1_000_000 + 10_001 - 5_000
    assert batch.fee_minor == fee_s1 + fee_s2 - credit
    assert batch.payout_minor == batch.gross_minor - batch.fee_minor
    assert 0 < credit <= fee_s2
    again = settlement.settle(shops, date(2026, 9, 20))
    assert again.batches == 0
    assert again.skipped_existing == 0  # nothing left due: items are claimed
    assert balance(shops, f"merchant_unsettled:{MID}") == 0
    assert balance(shops, f"merchant_payable:{MID}") == -batch.payout_minor
    file = payouts.export_payouts(shops, date(2026, 9, 20))
    assert file.count == 1
    assert file.total_minor == batch.payout_minor
    assert "6212260200001234567" in file.csv_path.read_text()
    with shops.db.unit_of_work() as uow:
        payout = uow.settlement.payout_of_batch(batch.batch_id)
    assert payout is not None and payout.status == "sent"
    payouts.confirm_payout(shops, payout.payout_id)
    assert balance(shops, f"merchant_payable:{MID}") == 0
    assert balance(shops, "bank") == -batch.payout_minor
    with shops.db.unit_of_work() as uow:
        assert all(v == 0 for v in uow.ledger.imbalance_by_currency().values())


def test_refunds_larger_than_sales_become_debt(shops: ServiceContext) -> None:
    s1 = pay(shops, TxnType.SALE, 100_000, mid=NOODLES, tid=TID2)
    settlement.settle(shops, date(2026, 9, 18), cycles=("D0",), run_key="d0-1")
    paid = balance(shops, f"merchant_payable:{NOODLES}")
    assert paid < 0
    pay(shops, TxnType.REFUND, 100_000, mid=NOODLES, tid=TID2, pan=None,
        original=s1.record.txn_id)  # type: ignore[union-attr]
    run = settlement.settle(shops, date(2026, 9, 18), cycles=("D0",), run_key="d0-2")
    assert run.batches == 1
    debt = balance(shops, f"merchant_receivable:{NOODLES}")
    assert debt > 0
    with shops.db.unit_of_work() as uow:
        batches = uow.settlement.batches(NOODLES, None, None, 10)
    assert all(b.payout_minor >= 0 for b in batches)
    pay(shops, TxnType.SALE, 300_000, mid=NOODLES, tid=TID2)
    settlement.settle(shops, date(2026, 9, 18), cycles=("D0",), run_key="d0-3")
    assert balance(shops, f"merchant_receivable:{NOODLES}") == 0
    with shops.db.unit_of_work() as uow:
        assert all(v == 0 for v in uow.ledger.imbalance_by_currency().values())


def test_failed_payout_returns_money_and_alerts(shops: ServiceContext) -> None:
    pay(shops, TxnType.SALE, 50_000, mid=NOODLES, tid=TID2)
    settlement.settle(shops, date(2026, 9, 18), cycles=("D0",), run_key="d0")
    payouts.export_payouts(shops, date(2026, 9, 18))
    with shops.db.unit_of_work() as uow:
        payout = uow.settlement.payouts(merchant_id=NOODLES)[0]
    payouts.fail_payout(shops, payout.payout_id, "account closed")
    assert balance(shops, f"merchant_payable:{NOODLES}") == -payout.amount_minor
    with shops.db.unit_of_work() as uow:
        assert [a.kind for a in uow.alerts.open_alerts(NOODLES)] == ["payout_failed"]
    payouts.retry_payout(shops, SYSTEM, payout.payout_id)
    payouts.export_payouts(shops, date(2026, 9, 18))
    payouts.confirm_payout(shops, payout.payout_id)
    assert balance(shops, f"merchant_payable:{NOODLES}") == 0
    with shops.db.unit_of_work() as uow:
        assert all(v == 0 for v in uow.ledger.imbalance_by_currency().values())
