"""Payouts against the bank's return file, on both databases: a paid payout is confirmed
(clearing → bank), a returned one reopens the merchant's payable with an alert, stays in the
queue, and is paid again once the account is fixed (一清 checks again)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from jobtools import (
    BANK,
    PAYOUT_CLEARING,
    add_merchant,
    assert_balances,
    balances,
    ledger_balanced,
    merchant_payable,
    mid,
    pay,
)

from autosettle.domain.errors import ConflictError
from autosettle.domain.transactions import TxnType
from autosettle.services import alerts, payouts, recon, settlement
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.simulators.bank import write_return_file

DAY = date(2026, 9, 18)


def _settle_and_export(ctx: ServiceContext) -> tuple[payouts.PayoutFile, dict[str, int]]:
    for n in (1, 2, 3):
        add_merchant(ctx, mid(n), cycle="D0")
        pay(ctx, mid(n), TxnType.SALE, 10_000 * n)
    settlement.settle(ctx, DAY, settlement.SAME_DAY)
    file = payouts.export_payouts(ctx, DAY)
    assert file.count == 3
    return file, balances(ctx)


def test_bank_return_confirms_paid_and_reopens_returned(ctx: ServiceContext,
                                                        tmp_path: Path) -> None:
    file, before = _settle_and_export(ctx)
    with ctx.db.unit_of_work() as uow:
        sent = {p.merchant_id: p for p in uow.settlement.payouts_in_file(file.csv_path.name)}
    returned = sent[mid(2)]
    answer = tmp_path / "RET20260918.txt"
    answers = write_return_file(file.fixed_width_path, answer,
                                returned={returned.payout_id: ("R001", "账户已销户")})
    assert sorted(a for _, a in answers) == ["paid", "paid", "returned"]
    done = recon.import_file(ctx, SYSTEM, answer, "bank")
    assert done.accepted and done.imported == 3 and done.file_date == DAY
    run = recon.run_day(ctx, SYSTEM, DAY, "bank")
    assert (run.counts["matched"], run.counts["status_mismatch"]) == (2, 1)
    paid = sent[mid(1)].amount_minor + sent[mid(3)].amount_minor
    after = assert_balances(ctx, {PAYOUT_CLEARING: paid + returned.amount_minor, BANK: -paid,
                                  merchant_payable(mid(2)): -returned.amount_minor},
                            since=before)
    with ctx.db.unit_of_work() as uow:
        states = {p.merchant_id: p.status.value for p in
                  uow.settlement.payouts_in_file(file.csv_path.name)}
    assert states == {mid(1): "confirmed", mid(2): "failed", mid(3): "confirmed"}
    assert any(a.kind == "payout_failed" and a.merchant_id == mid(2)
               for a in alerts.list_alerts(ctx, SYSTEM))
    [open_one] = recon.list_discrepancies(ctx, SYSTEM, channel="bank", state="open")
    assert open_one.txn_id == returned.payout_id and "账户已销户" in (open_one.note or "")
    with pytest.raises(ConflictError, match="open discrepancies"):
        recon.close_day(ctx, SYSTEM, DAY, "bank")
    with pytest.raises(ConflictError, match="cannot be closed by adjust"):
        recon.resolve(ctx, SYSTEM, open_one.discrepancy_id, "adjust", "no")
    # the merchant fixed its account: paid again (the payout goes back to pending)
    recon.resolve(ctx, SYSTEM, open_one.discrepancy_id, "resettle", "account fixed")
    with ctx.db.unit_of_work() as uow:
        again = uow.settlement.payout(returned.payout_id)
    assert again is not None and again.status.value == "pending" and again.attempts == 1
    recon.close_day(ctx, SYSTEM, DAY, "bank")
    next_file = payouts.export_payouts(ctx, DAY)
    assert returned.payout_id in next_file.csv_path.read_text()
    assert_balances(ctx, {PAYOUT_CLEARING: -returned.amount_minor,
                          merchant_payable(mid(2)): returned.amount_minor}, since=after)
    assert ledger_balanced(ctx)


def test_a_payout_the_bank_does_not_answer_is_ours_only(ctx: ServiceContext,
                                                        tmp_path: Path) -> None:
    file, _ = _settle_and_export(ctx)
    answer = tmp_path / "RET.txt"
    write_return_file(file.fixed_width_path, answer)
    rows = answer.read_bytes().rstrip(b"\n").split(b"\n")
    # drop one detail record and fix the control totals as a bank would have written them
    dropped = rows.pop(2)
    amount = int(dropped[48:64])
    total = sum(int(r[48:64]) for r in rows[1:-1])
    rows[0] = rows[0][:9] + f"{2:08d}{total:016d}".encode() + rows[0][33:]
    rows[-1] = b"T" + f"{2:08d}{total:016d}".encode() + rows[-1][25:]
    answer.write_bytes(b"\n".join(rows) + b"\n")
    recon.import_file(ctx, SYSTEM, answer, "bank")
    run = recon.run_day(ctx, SYSTEM, DAY, "bank")
    assert (run.counts["matched"], run.counts["ours_only"]) == (2, 1)
    [missing] = recon.list_discrepancies(ctx, SYSTEM, channel="bank")
    assert missing.our_amount_minor == amount and missing.klass == "ours_only"
