"""Settlement end to end on both databases: items, batches, fees, debt, payouts."""

from __future__ import annotations

from datetime import date

import pytest
from jobtools import (
    BANK,
    CHANNEL_RECEIVABLE,
    FEE_INCOME,
    PAYOUT_CLEARING,
    advance_clock_to,
    assert_balances,
    merchant_payable,
    merchant_receivable,
    merchant_unsettled,
)

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


def test_t1_settlement_with_fees_refund_and_payout(shops: ServiceContext) -> None:
    pay(shops, TxnType.SALE, 1_000_000)  # debit, discounted MCC: 0.41% cap 18
    s2 = pay(shops, TxnType.SALE, 10_001, pan=CREDIT)  # credit 0.51% → 51.0051 → 51
    pay(shops, TxnType.REFUND, 5_000, pan=None, original=s2.record.txn_id)  # type: ignore[union-attr]
    s3 = pay(shops, TxnType.SALE, 777)  # fee 3.1857 → 3, given back by the void
    pay(shops, TxnType.VOID, None, pan=None, original=s3.record.txn_id)  # type: ignore[union-attr]
    gross = 1_000_000 + 10_001 - 5_000
    captured = assert_balances(shops, {CHANNEL_RECEIVABLE: gross,
                                       merchant_unsettled(MID): -gross})
    # Friday 2026-09-18 → T+1 is Sunday 2026-09-20, an in-lieu workday
    assert settlement.expected_settlement(shops, date(2026, 9, 18), "T1") == date(2026, 9, 20)
    advance_clock_to(shops, date(2026, 9, 19))
    early = settlement.settle(shops, date(2026, 9, 19))
    assert early.batches == 0
    assert_balances(shops, {}, since=captured)
    advance_clock_to(shops, date(2026, 9, 20))
    run = settlement.settle(shops, date(2026, 9, 20))
    assert run.batches == 1, run
    fee_s1 = 1800           # 0.41 % of 10,000.00 = 41.00, capped at 18.00
    fee_s2 = 51
    credit = 25             # pro rata: round(51 × 5,000 / 10,001) = round(25.4975)
    fees = fee_s1 + fee_s2 - credit
    with shops.db.unit_of_work() as uow:
        batch = uow.settlement.batches(MID, None, None, 10)[0]
    assert (batch.gross_minor, batch.fee_minor, batch.surcharge_minor) == (gross, fees, 0)
    assert batch.payout_minor == gross - fees
    settled = assert_balances(shops, {merchant_unsettled(MID): gross, FEE_INCOME: -fees,
                                      merchant_payable(MID): -(gross - fees)}, since=captured)
    again = settlement.settle(shops, date(2026, 9, 20))
    assert again.batches == 0
    assert again.skipped_existing == 0  # nothing left due: items are claimed
    assert_balances(shops, {}, since=settled)
    file = payouts.export_payouts(shops, date(2026, 9, 20))
    assert file.count == 1
    assert file.total_minor == batch.payout_minor
    assert "6212260200001234567" in file.csv_path.read_text()
    with shops.db.unit_of_work() as uow:
        payout = uow.settlement.payout_of_batch(batch.batch_id)
    assert payout is not None and payout.status == "sent"
    sent = assert_balances(shops, {merchant_payable(MID): batch.payout_minor,
                                   PAYOUT_CLEARING: -batch.payout_minor}, since=settled)
    payouts.confirm_payout(shops, payout.payout_id)
    assert_balances(shops, {PAYOUT_CLEARING: batch.payout_minor, BANK: -batch.payout_minor},
                    since=sent)
    with shops.db.unit_of_work() as uow:
        assert all(v == 0 for v in uow.ledger.imbalance_by_currency().values())


def test_refunds_larger_than_sales_become_debt(shops: ServiceContext) -> None:
    # Lao Wang (MCC 5812, standard list: debit 0.50 %), D+0: 2.00 per same-day payout
    s1 = pay(shops, TxnType.SALE, 100_000, mid=NOODLES, tid=TID2)   # fee 500
    settlement.settle(shops, date(2026, 9, 18), cycles=("D0",), run_key="d0-1")
    first_paid = 100_000 - 500 - 200
    paid = assert_balances(shops, {CHANNEL_RECEIVABLE: 100_000, FEE_INCOME: -700,
                                   merchant_payable(NOODLES): -first_paid})
    pay(shops, TxnType.REFUND, 100_000, mid=NOODLES, tid=TID2, pan=None,
        original=s1.record.txn_id)  # type: ignore[union-attr]
    run = settlement.settle(shops, date(2026, 9, 18), cycles=("D0",), run_key="d0-2")
    assert run.batches == 1
    # the refund returns the fee (500): the batch nets −99,500, which becomes debt; no
    # surcharge on a batch that pays nothing, and the payout already made stays owed
    in_debt = assert_balances(shops, {CHANNEL_RECEIVABLE: -100_000, FEE_INCOME: 500,
                                      merchant_receivable(NOODLES): 99_500}, since=paid)
    with shops.db.unit_of_work() as uow:
        batches = uow.settlement.batches(NOODLES, None, None, 10)
    assert all(b.payout_minor >= 0 for b in batches)
    assert [(b.payout_minor, b.debt_added_minor, b.surcharge_minor) for b in batches
            if b.run_key.startswith("d0-2")] == [(0, 99_500, 0)]
    pay(shops, TxnType.SALE, 300_000, mid=NOODLES, tid=TID2)   # fee 1,500
    settlement.settle(shops, date(2026, 9, 18), cycles=("D0",), run_key="d0-3")
    # the old debt is taken first, then the surcharge, and the rest is paid
    assert_balances(shops, {CHANNEL_RECEIVABLE: 300_000, FEE_INCOME: -1_700,
                            merchant_receivable(NOODLES): -99_500,
                            merchant_payable(NOODLES): -(300_000 - 1_500 - 99_500 - 200)},
                    since=in_debt)
    with shops.db.unit_of_work() as uow:
        assert all(v == 0 for v in uow.ledger.imbalance_by_currency().values())


def test_failed_payout_returns_money_and_alerts(shops: ServiceContext) -> None:
    pay(shops, TxnType.SALE, 50_000, mid=NOODLES, tid=TID2)
    settlement.settle(shops, date(2026, 9, 18), cycles=("D0",), run_key="d0")
    payouts.export_payouts(shops, date(2026, 9, 18))
    paid = 50_000 - 250 - 200   # 0.50 % fee, 2.00 same-day surcharge
    sent = assert_balances(shops, {CHANNEL_RECEIVABLE: 50_000, FEE_INCOME: -450,
                                   PAYOUT_CLEARING: -paid})
    with shops.db.unit_of_work() as uow:
        payout = uow.settlement.payouts(merchant_id=NOODLES)[0]
    assert payout.amount_minor == paid
    payouts.fail_payout(shops, payout.payout_id, "account closed")
    failed = assert_balances(shops, {PAYOUT_CLEARING: paid, merchant_payable(NOODLES): -paid},
                             since=sent)
    with shops.db.unit_of_work() as uow:
        assert [a.kind for a in uow.alerts.open_alerts(NOODLES)] == ["payout_failed"]
    payouts.retry_payout(shops, SYSTEM, payout.payout_id)
    assert_balances(shops, {}, since=failed)   # pending again: still owed to the merchant
    payouts.export_payouts(shops, date(2026, 9, 18))
    resent = assert_balances(shops, {}, since=sent)
    payouts.confirm_payout(shops, payout.payout_id)
    assert_balances(shops, {PAYOUT_CLEARING: paid, BANK: -paid}, since=resent)
    with shops.db.unit_of_work() as uow:
        assert all(v == 0 for v in uow.ledger.imbalance_by_currency().values())
