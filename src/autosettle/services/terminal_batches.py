"""Terminal batch close (结算, 0500), totals check (对账) and batch upload (批上送, 0320).

The totals the host compares with field 48 of a terminal's 0500, per card block
(domestic: UnionPay and unknown brands; foreign: Visa, Mastercard, Amex, JCB):

* **debit** = sales and pre-authorization completions of the batch whose status is
  ``approved`` (approved, and not voided, reversed or declined; a partly or fully refunded
  sale stays approved and counts here, its refund counts on the credit side);
* **credit** = refunds of the batch whose status is ``approved`` (not reversed);
* not counted: voids, pre-authorizations, pre-authorization voids, completion voids
  (their effect is already in the status of the original) and balance inquiries.

"Of the batch" means the transaction's own batch number (field 60.2 of its message): a
refund of last week's sale belongs to today's batch.

Equal counts and amounts in both blocks → ``1`` balanced (对账平), else ``2`` not balanced
(对账不平): the terminal then uploads its transactions (0320) and :func:`finish_upload`
compares them with ours by trace number. A transaction only the terminal has is flagged
``terminal_only`` (never posted: an upload creates no money), one only we have
``host_only``, and one whose amount or masked PAN differs ``mismatch``; each flag is a row
of ``terminal_batch_flags`` and the batch raises one alert. The batch is closed by the
0500 whatever the verdict, so voids of its transactions are refused afterwards (refund
instead), and the terminal's next batch number is expected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Final

from autosettle.domain.cards import CardBrand
from autosettle.domain.iso8583.fields import (
    AMOUNT_MINOR_MAX,
    SETTLEMENT_COUNT_MAX,
    BatchUploadEntry,
    CardOrganisation,
    CardTotals,
    ReconciliationCode,
    SettlementTotals,
    build_settlement_totals,
    parse_settlement_totals,
)
from autosettle.domain.response_codes import ResponseCode
from autosettle.domain.terminal_records import (
    BatchFlag,
    BatchLine,
    SettlementRecord,
    UploadItem,
)
from autosettle.domain.transactions import TxnStatus, TxnType
from autosettle.services.context import Principal, ServiceContext
from autosettle.services.terminal_keys import next_batch_no
from autosettle.store.uow import UnitOfWork

RC = ResponseCode
BATCH_LINES_MAX: Final = 10_000
"""Transactions read for one batch; field 48 counts stop at 999 per side anyway."""
UPLOAD_ITEMS_MAX: Final = 10_000
FLAGS_PAGE_MAX: Final = 500

DEBIT_TYPES: Final = frozenset({TxnType.SALE.value, TxnType.COMPLETION.value})
CREDIT_TYPES: Final = frozenset({TxnType.REFUND.value})
COUNTED_STATUS: Final = TxnStatus.APPROVED.value
FOREIGN_BRANDS: Final = frozenset({CardBrand.VISA.value, CardBrand.MASTERCARD.value,
                                   CardBrand.AMEX.value, CardBrand.JCB.value})


class UploadState:
    NONE = "none"
    UPLOADING = "uploading"
    DONE = "done"


class FlagKind:
    TERMINAL_ONLY = "terminal_only"
    HOST_ONLY = "host_only"
    MISMATCH = "mismatch"


def card_org(card_brand: str | None) -> CardOrganisation:
    """Which field 48 block a card counts in."""
    return (CardOrganisation.FOREIGN if card_brand in FOREIGN_BRANDS
            else CardOrganisation.DOMESTIC)


def is_counted(line: BatchLine) -> bool:
    """True when the transaction counts in the batch totals (see the module docstring)."""
    return line.status == COUNTED_STATUS and line.txn_type in DEBIT_TYPES | CREDIT_TYPES


def host_totals(lines: Sequence[BatchLine]) -> SettlementTotals:
    """Our totals of a batch, as the two field 48 blocks (reconciliation code 0)."""
    sums = {org: [0, 0, 0, 0] for org in CardOrganisation}
    for line in lines:
        if not is_counted(line):
            continue
        block = sums[card_org(line.card_brand)]
        offset = 0 if line.txn_type in DEBIT_TYPES else 2
        block[offset] += line.amount_minor
        block[offset + 1] += 1
    # Field 48 has n12 amounts and n3 counts: a batch beyond them cannot balance anyway,
    # so our side is clamped to the largest values the field can carry.
    domestic, foreign = (
        CardTotals(debit_amount_minor=min(s[0], AMOUNT_MINOR_MAX),
                   debit_count=min(s[1], SETTLEMENT_COUNT_MAX),
                   credit_amount_minor=min(s[2], AMOUNT_MINOR_MAX),
                   credit_count=min(s[3], SETTLEMENT_COUNT_MAX))
        for s in (sums[CardOrganisation.DOMESTIC], sums[CardOrganisation.FOREIGN]))
    return SettlementTotals(domestic, foreign)


def _verdict(ours: CardTotals, theirs: CardTotals) -> ReconciliationCode:
    same = (ours.debit_amount_minor, ours.debit_count, ours.credit_amount_minor,
            ours.credit_count) == (theirs.debit_amount_minor, theirs.debit_count,
                                   theirs.credit_amount_minor, theirs.credit_count)
    return ReconciliationCode.BALANCED if same else ReconciliationCode.NOT_BALANCED


@dataclass(frozen=True, slots=True)
class SettlementOutcome:
    """The 0510: field 39, field 48 with the verdict per block, and our own totals."""

    response_code: ResponseCode
    answer_totals: SettlementTotals
    host_totals: SettlementTotals | None = None
    replayed: bool = False

    @property
    def balanced(self) -> bool:
        return self.response_code is RC.APPROVED and all(
            block.code is ReconciliationCode.BALANCED
            for block in (self.answer_totals.domestic, self.answer_totals.foreign))


def settle(ctx: ServiceContext, merchant_id: str, terminal_id: str, batch_no: str,
           terminal: SettlementTotals) -> SettlementOutcome:
    """Close a terminal batch and compare its totals with ours (one unit of work).

    Idempotent: a repeated 0500 for a batch already settled gets the first answer. A batch
    number other than the terminal's open batch (while one is open) is answered 22: the
    terminal must sign on to learn the batch the host expects.
    """
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        repo = uow.terminal_host
        done = repo.get_settlement(merchant_id, terminal_id, batch_no)
        if done is not None:
            return SettlementOutcome(RC.APPROVED, parse_settlement_totals(done.answer_totals),
                                     parse_settlement_totals(done.host_totals), replayed=True)
        batch = uow.batches.get(merchant_id, terminal_id, batch_no)
        open_batch = uow.batches.open_batch(merchant_id, terminal_id)
        if batch is None and open_batch is not None:
            return SettlementOutcome(RC.OPERATION_ERROR, terminal)
        if batch is None:
            uow.batches.add(merchant_id, terminal_id, batch_no, now)
        ours = host_totals(repo.batch_lines(merchant_id, terminal_id, batch_no,
                                            BATCH_LINES_MAX))
        answer = SettlementTotals(
            replace(terminal.domestic, code=_verdict(ours.domestic, terminal.domestic)),
            replace(terminal.foreign, code=_verdict(ours.foreign, terminal.foreign)))
        balanced = all(b.code is ReconciliationCode.BALANCED
                       for b in (answer.domestic, answer.foreign))
        repo.add_settlement(SettlementRecord(
            merchant_id, terminal_id, batch_no, build_settlement_totals(terminal),
            build_settlement_totals(ours), build_settlement_totals(answer),
            ReconciliationCode.BALANCED.value if balanced
            else ReconciliationCode.NOT_BALANCED.value,
            UploadState.NONE, 0, now, None))
        if batch is None or batch.status == "open":
            uow.batches.close(merchant_id, terminal_id, batch_no, now)
        repo.upsert_state(merchant_id, terminal_id, now, last_message_at=now,
                          open_batch_no=next_batch_no(batch_no))
        if not balanced:
            _alert(uow, merchant_id, terminal_id, batch_no, now,
                   "totals do not balance; waiting for the batch upload")
    return SettlementOutcome(RC.APPROVED, answer, ours)


def _alert(uow: UnitOfWork, merchant_id: str, terminal_id: str, batch_no: str, now: datetime,
           message: str) -> None:
    uow.alerts.raise_alert(
        at=now, severity="warning", kind="terminal_batch_unbalanced",
        message=f"terminal {terminal_id} batch {batch_no}: {message}",
        merchant_id=merchant_id, dedup_key=f"tbatch:{merchant_id}:{terminal_id}:{batch_no}")


@dataclass(frozen=True, slots=True)
class UploadOutcome:
    response_code: ResponseCode
    received: int = 0


def record_upload(ctx: ServiceContext, merchant_id: str, terminal_id: str, batch_no: str,
                  entries: Sequence[BatchUploadEntry]) -> UploadOutcome:
    """Store one 0320's entries (masked PAN only) for the settled batch; posts nothing.

    12 when the batch has not been settled (an upload follows a 0510).
    """
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        repo = uow.terminal_host
        if repo.get_settlement(merchant_id, terminal_id, batch_no) is None:
            return UploadOutcome(RC.INVALID_TRANSACTION)
        for entry in entries:
            repo.add_upload_item(UploadItem(
                merchant_id, terminal_id, batch_no, f"{entry.trace:06d}", entry.card_org.value,
                entry.masked_pan, entry.amount_minor, now))
        repo.update_settlement(merchant_id, terminal_id, batch_no,
                               upload_state=UploadState.UPLOADING)
    return UploadOutcome(RC.APPROVED, len(entries))


@dataclass(frozen=True, slots=True)
class UploadReport:
    """What the batch upload found: flags by kind (trace numbers), after the last 0320."""

    response_code: ResponseCode
    uploaded: int = 0
    declared: int | None = None
    terminal_only: tuple[str, ...] = ()
    host_only: tuple[str, ...] = ()
    mismatched: tuple[str, ...] = ()
    flags: tuple[BatchFlag, ...] = field(default=(), repr=False)

    @property
    def clean(self) -> bool:
        return not (self.terminal_only or self.host_only or self.mismatched)


def finish_upload(ctx: ServiceContext, merchant_id: str, terminal_id: str, batch_no: str,
                  total_count: int | None = None) -> UploadReport:
    """Compare the uploaded transactions with ours and flag every difference (idempotent).

    ``total_count`` is what the terminal says it uploaded; it is reported, not trusted: the
    items actually received are what is compared.
    """
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        repo = uow.terminal_host
        if repo.get_settlement(merchant_id, terminal_id, batch_no) is None:
            return UploadReport(RC.INVALID_TRANSACTION)
        items = {i.stan: i for i in repo.upload_items(merchant_id, terminal_id, batch_no,
                                                      UPLOAD_ITEMS_MAX)}
        lines = repo.batch_lines(merchant_id, terminal_id, batch_no, BATCH_LINES_MAX)
        flags = _differences(merchant_id, terminal_id, batch_no, items, lines, now)
        for flag in flags:
            repo.add_flag(flag)
        repo.update_settlement(merchant_id, terminal_id, batch_no, upload_state=UploadState.DONE,
                               uploaded_count=len(items), upload_finished_at=now)
        if flags:
            _alert(uow, merchant_id, terminal_id, batch_no, now,
                   f"batch upload found {len(flags)} difference(s); see terminal batch flags")
    by_kind = {kind: tuple(f.stan for f in flags if f.kind == kind)
               for kind in (FlagKind.TERMINAL_ONLY, FlagKind.HOST_ONLY, FlagKind.MISMATCH)}
    return UploadReport(RC.APPROVED, len(items), total_count, by_kind[FlagKind.TERMINAL_ONLY],
                        by_kind[FlagKind.HOST_ONLY], by_kind[FlagKind.MISMATCH], tuple(flags))


def _differences(merchant_id: str, terminal_id: str, batch_no: str,
                 items: dict[str, UploadItem], lines: Sequence[BatchLine],
                 now: datetime) -> list[BatchFlag]:
    counted = {line.stan: line for line in lines if is_counted(line)}
    flags: list[BatchFlag] = []

    def flag(stan: str, kind: str, item: UploadItem | None, line: BatchLine | None) -> None:
        flags.append(BatchFlag(
            merchant_id, terminal_id, batch_no, stan, kind,
            item.amount_minor if item else None, line.amount_minor if line else None,
            line.txn_id if line else None,
            item.pan_masked if item else (line.pan_masked if line else None),
            now))

    for stan, item in sorted(items.items()):
        line = counted.get(stan)
        if line is None:
            flag(stan, FlagKind.TERMINAL_ONLY, item, None)
        elif line.amount_minor != item.amount_minor or (
                line.pan_masked is not None and line.pan_masked != item.pan_masked):
            flag(stan, FlagKind.MISMATCH, item, line)
    for stan, line in sorted(counted.items()):
        if stan not in items:
            flag(stan, FlagKind.HOST_ONLY, None, line)
    return flags


def find_message(ctx: ServiceContext, merchant_id: str, terminal_id: str, batch_no: str,
                 stan: str) -> BatchLine | None:
    """The transaction a terminal sent with this batch and trace number, if we have it."""
    with ctx.db.unit_of_work() as uow:
        return uow.terminal_host.find_line(merchant_id, terminal_id, batch_no, stan)


def batch_flags(ctx: ServiceContext, who: Principal, merchant_id: str | None = None,
                terminal_id: str | None = None, batch_no: str | None = None,
                open_only: bool = True, limit: int = FLAGS_PAGE_MAX) -> Sequence[BatchFlag]:
    """Reconciliation flags for operators (all) and merchants (their own)."""
    if merchant_id is not None:
        who.require_merchant(merchant_id)
    elif not who.is_operator:
        merchant_id = who.merchant_id
    with ctx.db.unit_of_work() as uow:
        return uow.terminal_host.flags(merchant_id, terminal_id, batch_no, open_only,
                                       min(limit, FLAGS_PAGE_MAX))
