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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from autosettle.domain.errors import ConflictError, NotFoundError
from autosettle.domain.ledger import Account, AccountType, transfer
from autosettle.domain.merchants import Merchant, holder_name_matches
from autosettle.domain.money import Money, currency
from autosettle.domain.payouts import (
    PayoutEvent,
    PayoutStatus,
    after,
    allows,
    initial_status,
    is_repeat,
)
from autosettle.domain.settlement_records import (
    BatchRecord,
    BatchStatus,
    ItemTotals,
    PayoutRecord,
)
from autosettle.private_files import open_private_binary, open_private_text, private_dir
from autosettle.services.audit import record
from autosettle.services.business_dates import require_export_date
from autosettle.services.context import SYSTEM, Principal, ServiceContext
from autosettle.store.uow import UnitOfWork

FIXED_WIDTH_RECORD_BYTES = 200
FIXED_WIDTH_ENCODING = "gb18030"
"""GB 18030 (a superset of GBK): what Chinese banks' fixed-width files count bytes in."""


def instruct_payouts(uow: UnitOfWork, batches: Sequence[tuple[Merchant, BatchRecord]],
                     now: datetime,
                     item_totals: Mapping[str, Mapping[str, ItemTotals]] | None = None,
                     ) -> set[str]:
    """Write the payouts of new batches after the checks before money leaves (a few
    statements for all of them): ``pending``, or ``blocked`` with a critical alert; the ids
    of the batches whose payout had to be blocked. ``item_totals``: see
    :func:`verify_batches`."""
    paying = [(m, b) for m, b in batches if b.payout_minor != 0]
    if not paying:
        return set()
    problems = verify_batches(uow, paying, item_totals)
    accounts = uow.settlement.accounts_for(sorted({m.merchant_id for m, _ in paying}))
    records: list[PayoutRecord] = []
    blocked: set[str] = set()
    for merchant, batch in paying:
        found = problems[batch.batch_id]
        account = next((a for a in accounts.get(merchant.merchant_id, [])
                        if a.verified and a.status == "active"
                        and holder_name_matches(a.holder_name, merchant.legal_name)), None)
        if account is None:
            found.append("no verified settlement account in the merchant's own name (一清)")
        records.append(PayoutRecord(
            payout_id=uuid.uuid4().hex, merchant_id=merchant.merchant_id,
            batch_id=batch.batch_id, account_id=account.account_id if account else None,
            amount_minor=batch.payout_minor, currency=batch.currency,
            status=initial_status(bool(found)), attempts=0,
            expected_arrival=batch.expected_arrival, file_name=None,
            failure_reason="; ".join(found)[:200] or None, created_at=now, updated_at=now))
        if found:
            blocked.add(batch.batch_id)
    uow.settlement.add_payouts(records)
    for merchant, batch in paying:
        if batch.batch_id in blocked:
            uow.settlement.set_batch(batch.batch_id, status=BatchStatus.PAYOUT_BLOCKED)
            uow.alerts.raise_alert(now, "critical", "payout_blocked",
                                   f"payout of batch {batch.batch_id} blocked: "
                                   + "; ".join(problems[batch.batch_id]), merchant.merchant_id,
                                   f"payout-blocked:{batch.batch_id}")
    return blocked


def verify_batch(uow: UnitOfWork, merchant: Merchant, batch: BatchRecord) -> list[str]:
    """The checks before money leaves; every problem found (empty when all hold)."""
    return verify_batches(uow, [(merchant, batch)])[batch.batch_id]


def verify_batches(uow: UnitOfWork, batches: Sequence[tuple[Merchant, BatchRecord]],
                   item_totals: Mapping[str, Mapping[str, ItemTotals]] | None = None,
                   ) -> dict[str, list[str]]:
    """:func:`verify_batch` for many batches, with a few aggregate queries for all of them.

    * the items: as many as the batch says, summing to its gross and fees, all of the
      batch's merchant. ``item_totals`` (batch → merchant → totals) are the items as read
      back from the database in the caller's transaction, e.g. by
      the settlement run's scan; without them they are read here;
    * the ledger: the batch's entry balances and posts exactly what the batch says
      (unsettled +gross, fee income −fees, payable −payout, receivable ±debt), so the
      ledger stays balanced; every entry is balanced by construction (and, on PostgreSQL,
      by a constraint trigger), which is why the whole journal is not summed per batch;
    * the payout is no more than the merchant's payable.
    """
    totals = item_totals if item_totals is not None else \
        uow.claims.batch_item_totals([b.batch_id for _, b in batches])
    payable_codes = {m.merchant_id: Account(AccountType.MERCHANT_PAYABLE, m.merchant_id).code
                     for m, _ in batches}
    payables = uow.settlement.account_balances(list(payable_codes.values()))
    entries = uow.settlement.entry_lines([b.entry_id for _, b in batches
                                          if b.entry_id is not None])
    result: dict[str, list[str]] = {}
    for merchant, batch in batches:
        problems: list[str] = []
        per_merchant = totals.get(batch.batch_id, {})
        count = sum(t.item_count for t in per_merchant.values())
        if count != batch.item_count:
            problems.append(f"batch lists {batch.item_count} items, {count} found")
        if sum(t.gross_minor for t in per_merchant.values()) != batch.gross_minor:
            problems.append("sum of items differs from the batch gross")
        if sum(t.fee_minor for t in per_merchant.values()) != batch.fee_minor:
            problems.append("sum of item fees differs from the batch fees")
        if any(mid != merchant.merchant_id for mid in per_merchant):
            problems.append("an item of another merchant is in the batch")
        payable = -payables.get((payable_codes[merchant.merchant_id], batch.currency), 0)
        if batch.payout_minor > payable:
            problems.append(f"payout {batch.payout_minor} exceeds the payable {payable}")
        lines = entries.get(batch.entry_id, {}) if batch.entry_id is not None else {}
        if sum(lines.values()) != 0 or lines != _expected_lines(merchant.merchant_id, batch):
            problems.append("the batch's ledger entry does not balance or differs from the "
                            "batch")
        result[batch.batch_id] = problems
    return result


def _expected_lines(merchant_id: str, batch: BatchRecord) -> dict[tuple[str, str], int]:
    """What the settlement entry of ``batch`` posts, net per (account, currency)."""
    cur = batch.currency
    lines = {
        (Account(AccountType.MERCHANT_UNSETTLED, merchant_id).code, cur): batch.gross_minor,
        (Account(AccountType.FEE_INCOME).code, cur):
            -(batch.fee_minor + batch.surcharge_minor),
        (Account(AccountType.MERCHANT_PAYABLE, merchant_id).code, cur): -batch.payout_minor,
        (Account(AccountType.MERCHANT_RECEIVABLE, merchant_id).code, cur):
            batch.debt_added_minor - batch.debt_recovered_minor,
    }
    return {key: amount for key, amount in lines.items() if amount != 0}


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
    same payouts (idempotent) and adds any newly pending ones. ``on`` may not be after the
    current business date (``date_out_of_range``: nothing is written or marked).
    """
    require_export_date(ctx, on)
    out = out_dir or ctx.settings.data_dir / "payouts"
    # 0700, files 0600: clear account numbers and holder names. A folder of the caller's
    # choosing is created private but, if it exists, left as it is.
    private_dir(out, tighten=out_dir is None)
    name = f"payouts-{on:%Y%m%d}"
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        # All of them: no page limit here, or a busy day (or a long history of payouts)
        # would leave payouts out of the file they are marked as sent in.
        for payout in uow.settlement.payouts(status=PayoutStatus.PENDING, expected_by=on,
                                             limit=None):
            _mark_sent(uow, payout, f"{name}.csv", now)
        rows = [p for p in uow.settlement.payouts_in_file(f"{name}.csv")
                if p.status in (PayoutStatus.SENT, PayoutStatus.CONFIRMED)]
        lines = [(p, _account_row(ctx, uow, p)) for p in rows]
    csv_path = out / f"{name}.csv"
    fixed_path = out / f"{name}.txt"
    with open_private_text(csv_path, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["payout_id", "merchant_id", "bank_name", "account_number",
                         "holder_name", "amount", "currency", "value_date", "reference"])
        for p, (bank, number, holder) in lines:
            writer.writerow([p.payout_id, p.merchant_id, bank, number, holder,
                             Money(p.amount_minor, currency(p.currency)).format(), p.currency,
                             p.expected_arrival.isoformat(), p.batch_id])
    with open_private_binary(fixed_path) as handle:
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


def _fit(text: str, width: int) -> bytes:
    """``text`` in the file's encoding, cut to ``width`` bytes without splitting a character,
    then space-padded: bank files count bytes (a Chinese character is two in GBK)."""
    out = b""
    for char in text:
        encoded = char.encode(FIXED_WIDTH_ENCODING, errors="replace")
        if len(out) + len(encoded) > width:
            break
        out += encoded
    return out.ljust(width, b" ")


def _fixed_header(on: date, count: int, total_minor: int) -> bytes:
    return _fit(f"H{on:%Y%m%d}{count:08d}{total_minor:016d}", FIXED_WIDTH_RECORD_BYTES) + b"\n"


def _fixed_detail(p: PayoutRecord, bank: str, number: str, holder: str) -> bytes:
    head = (f"D{p.payout_id:<32}{p.merchant_id:<15}{number:<32}{p.amount_minor:016d}"
            f"{p.currency:<3}{p.expected_arrival:%Y%m%d}")
    record = _fit(head, 107) + _fit(bank, 40) + _fit(holder, 53)
    return _fit(record.decode(FIXED_WIDTH_ENCODING), FIXED_WIDTH_RECORD_BYTES) + b"\n"


def _mark_sent(uow: UnitOfWork, payout: PayoutRecord, file_name: str, now: datetime) -> None:
    cur = currency(payout.currency)
    uow.ledger.post(transfer(
        f"payout:{payout.payout_id}:sent:{payout.attempts}", "payout.sent",
        Account(AccountType.MERCHANT_PAYABLE, payout.merchant_id),
        Account(AccountType.PAYOUT_CLEARING), Money(payout.amount_minor, cur),
        merchant_id=payout.merchant_id, reference=payout.payout_id), now)
    uow.settlement.set_payout(payout.payout_id,
                              status=after(payout.status, PayoutEvent.SEND), file_name=file_name,
                              updated_at=now)


def _payout_or_404(uow: UnitOfWork, payout_id: str) -> PayoutRecord:
    payout = uow.settlement.payout(payout_id)
    if payout is None:
        raise NotFoundError(f"payout {payout_id} not found")
    return payout


def confirm_payout(ctx: ServiceContext, payout_id: str,
                   who: Principal = SYSTEM) -> PayoutRecord:
    """The bank confirmed the credit: clearing → bank (operator). Idempotent; audited."""
    who.require_operator()
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        return confirm_in(uow, _payout_or_404(uow, payout_id), who, now)


def confirm_in(uow: UnitOfWork, payout: PayoutRecord, who: Principal,
               now: datetime) -> PayoutRecord:
    """:func:`confirm_payout` inside the caller's unit of work (the bank return file's
    reconciliation confirms many at once)."""
    payout_id = payout.payout_id
    if is_repeat(payout.status, PayoutEvent.CONFIRM):
        return payout
    if not allows(payout.status, PayoutEvent.CONFIRM):
        raise ConflictError(f"payout {payout_id} is {payout.status}, not sent")
    uow.ledger.post(transfer(
        f"payout:{payout_id}:confirmed:{payout.attempts}", "payout.confirmed",
        Account(AccountType.PAYOUT_CLEARING), Account(AccountType.BANK),
        Money(payout.amount_minor, currency(payout.currency)),
        merchant_id=payout.merchant_id, reference=payout_id), now)
    uow.settlement.set_payout(payout_id, status=after(payout.status, PayoutEvent.CONFIRM),
                              updated_at=now)
    record(uow, who, "payout.confirm", f"payouts/{payout_id}", now,
           detail={"merchant_id": payout.merchant_id, "amount_minor": payout.amount_minor})
    return _payout_or_404(uow, payout_id)


def fail_payout(ctx: ServiceContext, payout_id: str, reason: str,
                who: Principal = SYSTEM) -> PayoutRecord:
    """The bank returned the payout (closed account, name mismatch...): the money goes back
    to the merchant's payable and an alert is raised (operator). Idempotent."""
    who.require_operator()
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        return fail_in(uow, _payout_or_404(uow, payout_id), reason, who, now)


def fail_in(uow: UnitOfWork, payout: PayoutRecord, reason: str, who: Principal,
            now: datetime) -> PayoutRecord:
    """:func:`fail_payout` inside the caller's unit of work (a returned payout of the bank
    return file)."""
    payout_id = payout.payout_id
    if is_repeat(payout.status, PayoutEvent.FAIL):
        return payout
    if not allows(payout.status, PayoutEvent.FAIL):
        raise ConflictError(f"payout {payout_id} is {payout.status}, not sent")
    uow.ledger.post(transfer(
        f"payout:{payout_id}:failed:{payout.attempts}", "payout.failed",
        Account(AccountType.PAYOUT_CLEARING),
        Account(AccountType.MERCHANT_PAYABLE, payout.merchant_id),
        Money(payout.amount_minor, currency(payout.currency)),
        merchant_id=payout.merchant_id, reference=payout_id), now)
    uow.settlement.set_payout(payout_id, status=after(payout.status, PayoutEvent.FAIL),
                              failure_reason=reason[:200],
                              updated_at=now)
    uow.alerts.raise_alert(now, "critical", "payout_failed",
                           f"payout {payout_id} failed: {reason}", payout.merchant_id,
                           f"payout-failed:{payout_id}:{payout.attempts}")
    record(uow, who, "payout.fail", f"payouts/{payout_id}", now,
           detail={"merchant_id": payout.merchant_id, "reason": reason[:200]})
    return _payout_or_404(uow, payout_id)


def retry_payout(ctx: ServiceContext, who: Principal, payout_id: str) -> PayoutRecord:
    """After fixing the account: send a failed or blocked payout again (operator)."""
    who.require_operator()
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        return retry_in(uow, payout_id, who, now)


def retry_in(uow: UnitOfWork, payout_id: str, who: Principal, now: datetime) -> PayoutRecord:
    """:func:`retry_payout` inside the caller's unit of work (a returned payout's
    re-settlement, asked for from the reconciliation queue): 一清 checks again."""
    payout = _payout_or_404(uow, payout_id)
    if not allows(payout.status, PayoutEvent.RETRY):
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
    batch = uow.settlement.batch(payout.batch_id)
    if payout.status is PayoutStatus.BLOCKED and batch is not None and merchant is not None:
        # Blocked by the checks before money leaves: they must all pass now, not only
        # the account one (a retry is no way around them).
        problems = verify_batch(uow, merchant, batch)
        if problems:
            raise ConflictError("the batch still fails its checks: " + "; ".join(problems))
    uow.settlement.set_payout(payout_id, status=after(payout.status, PayoutEvent.RETRY),
                              account_id=account.account_id,
                              attempts=payout.attempts + 1, failure_reason=None,
                              file_name=None, updated_at=now)
    uow.settlement.set_batch(payout.batch_id, status=BatchStatus.SETTLED)
    record(uow, who, "payout.retry", f"payouts/{payout_id}", now,
           detail={"merchant_id": payout.merchant_id, "account_id": account.account_id})
    return _payout_or_404(uow, payout_id)
