"""Payouts: verified instructions, bank files, and the lifecycle
pending → sent → confirmed, or failed → (fixed) → pending again.

Ledger: settlement credits ``merchant_payable``; sending a payout moves it to
``payout_clearing``; the bank's confirmation moves clearing to ``bank``; a failure moves it
back to ``merchant_payable`` (and raises an alert) so nothing is lost.

一清: a payout only ever goes to the merchant's own *verified* settlement account.
"""

from __future__ import annotations

import csv
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from autosettle.domain.errors import ConflictError, NotFoundError
from autosettle.domain.ledger import Account, AccountType, transfer
from autosettle.domain.merchants import Merchant, holder_name_matches
from autosettle.domain.money import Money, currency
from autosettle.services.context import Principal, ServiceContext
from autosettle.store.settlement import BatchRecord, PayoutRecord
from autosettle.store.uow import UnitOfWork

FIXED_WIDTH_RECORD_BYTES = 200


def instruct_payout(uow: UnitOfWork, merchant: Merchant, batch: BatchRecord,
                    now: datetime) -> bool:
    """Write the payout of a new batch after the checks; True when it had to be blocked."""
    if batch.payout_minor == 0:
        return False
    problems = verify_batch(uow, merchant, batch)
    account = next((a for a in uow.settlement_accounts.list_for(merchant.merchant_id)
                    if a.verified and a.status == "active"
                    and holder_name_matches(a.holder_name, merchant.legal_name)), None)
    if account is None:
        problems.append("no verified settlement account in the merchant's own name (一清)")
    status = "blocked" if problems else "pending"
    uow.settlement.add_payout(PayoutRecord(
        payout_id=uuid.uuid4().hex, merchant_id=merchant.merchant_id, batch_id=batch.batch_id,
        account_id=account.account_id if account else None, amount_minor=batch.payout_minor,
        currency=batch.currency, status=status, attempts=0,
        expected_arrival=batch.expected_arrival, file_name=None,
        failure_reason="; ".join(problems)[:200] or None, created_at=now, updated_at=now))
    if problems:
        uow.settlement.set_batch(batch.batch_id, status="payout_blocked")
        uow.alerts.raise_alert(now, "critical", "payout_blocked",
                               f"payout of batch {batch.batch_id} blocked: "
                               + "; ".join(problems), merchant.merchant_id,
                               f"payout-blocked:{batch.batch_id}")
    return bool(problems)


def verify_batch(uow: UnitOfWork, merchant: Merchant, batch: BatchRecord) -> list[str]:
    """The checks before money leaves; every problem found (empty when all hold)."""
    problems: list[str] = []
    items = uow.settlement.items_of_batch(batch.batch_id)
    if len(items) != batch.item_count:
        problems.append(f"batch lists {batch.item_count} items, {len(items)} found")
    if sum(i.amount_minor for i in items) != batch.gross_minor:
        problems.append("sum of items differs from the batch gross")
    if sum(i.fee_minor for i in items) != batch.fee_minor:
        problems.append("sum of item fees differs from the batch fees")
    if any(i.merchant_id != merchant.merchant_id for i in items):
        problems.append("an item of another merchant is in the batch")
    payable = -uow.ledger.balance(Account(AccountType.MERCHANT_PAYABLE,
                                          merchant.merchant_id).code, batch.currency)
    if batch.payout_minor > payable:
        problems.append(f"payout {batch.payout_minor} exceeds the payable {payable}")
    if any(v != 0 for v in uow.ledger.imbalance_by_currency().values()):
        problems.append("the ledger does not balance")
    return problems


@dataclass(frozen=True, slots=True)
class PayoutFile:
    date: date
    csv_path: Path
    fixed_width_path: Path
    count: int
    total_minor: int


def export_payouts(ctx: ServiceContext, on: date, out_dir: Path | None = None) -> PayoutFile:
    """Write the bank payout files for ``on`` and mark their payouts sent.

    Pending payouts due by ``on`` go in; running it again rewrites the same file with the
    same payouts (idempotent) and adds any newly pending ones.
    """
    out = out_dir or ctx.settings.data_dir / "payouts"
    out.mkdir(parents=True, exist_ok=True)
    name = f"payouts-{on:%Y%m%d}"
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        for payout in uow.settlement.payouts(status="pending", expected_by=on):
            _mark_sent(uow, payout, f"{name}.csv", now)
        rows = [p for p in uow.settlement.payouts(status=None) if p.file_name == f"{name}.csv"
                and p.status in ("sent", "confirmed")]
        lines = [(p, _account_row(ctx, uow, p)) for p in rows]
    csv_path = out / f"{name}.csv"
    fixed_path = out / f"{name}.txt"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["payout_id", "merchant_id", "bank_name", "account_number",
                         "holder_name", "amount", "currency", "value_date", "reference"])
        for p, (bank, number, holder) in lines:
            writer.writerow([p.payout_id, p.merchant_id, bank, number, holder,
                             Money(p.amount_minor, currency(p.currency)).format(), p.currency,
                             p.expected_arrival.isoformat(), p.batch_id])
    with fixed_path.open("w", encoding="utf-8") as handle:
        handle.write(_fixed_header(on, len(lines), sum(p.amount_minor for p, _ in lines)))
        for p, (bank, number, holder) in lines:
            handle.write(_fixed_detail(p, bank, number, holder))
    return PayoutFile(on, csv_path, fixed_path, len(lines), sum(p.amount_minor for p, _ in lines))


def _account_row(ctx: ServiceContext, uow: UnitOfWork,
                 payout: PayoutRecord) -> tuple[str, str, str]:
    if payout.account_id is None:
        return "", "", ""
    account = uow.settlement_accounts.get(payout.merchant_id, payout.account_id)
    sealed = uow.settlement_accounts.sealed_number(payout.merchant_id, payout.account_id)
    if account is None or sealed is None:
        return "", "", ""
    number = ctx.sealer.open(sealed, payout.merchant_id.encode()).decode()
    return account.bank_name, number, account.holder_name


def _fit(text: str, width: int) -> str:
    """Left-aligned, space-padded, cut to ``width`` characters."""
    return text[:width].ljust(width)


def _fixed_header(on: date, count: int, total_minor: int) -> str:
    return _fit(f"H{on:%Y%m%d}{count:08d}{total_minor:016d}", FIXED_WIDTH_RECORD_BYTES) + "\n"


def _fixed_detail(p: PayoutRecord, bank: str, number: str, holder: str) -> str:
    body = (f"D{p.payout_id:<32}{p.merchant_id:<15}{number:<32}{p.amount_minor:016d}"
            f"{p.currency:<3}{p.expected_arrival:%Y%m%d}{_fit(bank, 40)}{_fit(holder, 53)}")
    return _fit(body, FIXED_WIDTH_RECORD_BYTES) + "\n"


def _mark_sent(uow: UnitOfWork, payout: PayoutRecord, file_name: str, now: datetime) -> None:
    cur = currency(payout.currency)
    uow.ledger.post(transfer(
        f"payout:{payout.payout_id}:sent:{payout.attempts}", "payout.sent",
        Account(AccountType.MERCHANT_PAYABLE, payout.merchant_id),
        Account(AccountType.PAYOUT_CLEARING), Money(payout.amount_minor, cur),
        merchant_id=payout.merchant_id, reference=payout.payout_id), now)
    uow.settlement.set_payout(payout.payout_id, status="sent", file_name=file_name,
                              updated_at=now)


def _payout_or_404(uow: UnitOfWork, payout_id: str) -> PayoutRecord:
    payout = uow.settlement.payout(payout_id)
    if payout is None:
        raise NotFoundError(f"payout {payout_id} not found")
    return payout


def confirm_payout(ctx: ServiceContext, payout_id: str) -> PayoutRecord:
    """The bank confirmed the credit: clearing → bank. Idempotent."""
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        payout = _payout_or_404(uow, payout_id)
        if payout.status == "confirmed":
            return payout
        if payout.status != "sent":
            raise ConflictError(f"payout {payout_id} is {payout.status}, not sent")
        uow.ledger.post(transfer(
            f"payout:{payout_id}:confirmed:{payout.attempts}", "payout.confirmed",
            Account(AccountType.PAYOUT_CLEARING), Account(AccountType.BANK),
            Money(payout.amount_minor, currency(payout.currency)),
            merchant_id=payout.merchant_id, reference=payout_id), now)
        uow.settlement.set_payout(payout_id, status="confirmed", updated_at=now)
        return _payout_or_404(uow, payout_id)


def fail_payout(ctx: ServiceContext, payout_id: str, reason: str) -> PayoutRecord:
    """The bank returned the payout (closed account, name mismatch...): the money goes back
    to the merchant's payable and an alert is raised. Idempotent."""
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        payout = _payout_or_404(uow, payout_id)
        if payout.status == "failed":
            return payout
        if payout.status != "sent":
            raise ConflictError(f"payout {payout_id} is {payout.status}, not sent")
        uow.ledger.post(transfer(
            f"payout:{payout_id}:failed:{payout.attempts}", "payout.failed",
            Account(AccountType.PAYOUT_CLEARING),
            Account(AccountType.MERCHANT_PAYABLE, payout.merchant_id),
            Money(payout.amount_minor, currency(payout.currency)),
            merchant_id=payout.merchant_id, reference=payout_id), now)
        uow.settlement.set_payout(payout_id, status="failed", failure_reason=reason[:200],
                                  updated_at=now)
        uow.alerts.raise_alert(now, "critical", "payout_failed",
                               f"payout {payout_id} failed: {reason}", payout.merchant_id,
                               f"payout-failed:{payout_id}:{payout.attempts}")
        return _payout_or_404(uow, payout_id)


def retry_payout(ctx: ServiceContext, who: Principal, payout_id: str) -> PayoutRecord:
    """After fixing the account: send a failed or blocked payout again (operator)."""
    who.require_operator()
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        payout = _payout_or_404(uow, payout_id)
        if payout.status not in ("failed", "blocked"):
            raise ConflictError(f"payout {payout_id} is {payout.status}")
        merchant = uow.merchants.get(payout.merchant_id)
        account = next((a for a in uow.settlement_accounts.list_for(payout.merchant_id)
                        if a.verified and a.status == "active" and merchant is not None
                        and holder_name_matches(a.holder_name, merchant.legal_name)), None)
        if account is None:
            raise ConflictError("the merchant still has no verified account in its own name")
        payable = -uow.ledger.balance(Account(AccountType.MERCHANT_PAYABLE,
                                              payout.merchant_id).code, payout.currency)
        if payout.amount_minor > payable:
            raise ConflictError(f"payout {payout.amount_minor} exceeds the payable {payable}")
        uow.settlement.set_payout(payout_id, status="pending", account_id=account.account_id,
                                  attempts=payout.attempts + 1, failure_reason=None,
                                  file_name=None, updated_at=now)
        uow.settlement.set_batch(payout.batch_id, status="settled")
        return _payout_or_404(uow, payout_id)
