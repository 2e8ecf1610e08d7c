"""Receipts: the slip data of a transaction, and the e-receipt in four formats.

:func:`receipt_data` turns a stored transaction into what its slip shows (the print
queue stores exactly that). :func:`render_receipt` is ``GET
/v1/transactions/{id}/receipt``: the same slip as PDF, PNG, plain text or ESC/POS bytes,
for a link by SMS or in the merchant's app, with the same reach as the transaction
itself (:func:`autosettle.services.transactions.get`: another merchant's, or another
terminal's for a terminal key, is "not found").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from autosettle.domain.cards import DEFAULT_BIN_TABLE
from autosettle.domain.errors import ConflictError, ValidationError
from autosettle.domain.iso8583.fields import ReconciliationCode, parse_settlement_totals
from autosettle.domain.iso8583.message import MessageFormatError
from autosettle.domain.payment_records import TransactionRecord
from autosettle.domain.terminal_records import SettlementRecord
from autosettle.domain.transactions import TxnStatus, TxnType
from autosettle.printing import escpos_out, layout, raster, slips
from autosettle.services import transactions
from autosettle.services.context import Principal, ServiceContext
from autosettle.store.uow import UnitOfWork

PIN_ENTERED_DIGIT: Final = "1"
"""Field 22, third digit: ``1`` = the PIN was entered (CUP), so no signature is needed."""
PRINTABLE_STATUSES: Final = frozenset({TxnStatus.APPROVED, TxnStatus.DECLINED,
                                       TxnStatus.VOIDED})


class ReceiptFormat(StrEnum):
    PDF = "pdf"
    PNG = "png"
    TXT = "txt"
    ESCPOS = "escpos"


MEDIA_TYPES: Final = {
    ReceiptFormat.PDF: "application/pdf",
    ReceiptFormat.PNG: "image/png",
    ReceiptFormat.TXT: "text/plain; charset=utf-8",
    ReceiptFormat.ESCPOS: "application/octet-stream",
}


@dataclass(frozen=True, slots=True)
class RenderedReceipt:
    """A receipt file: its bytes, media type and a file name for downloads."""

    content: bytes
    media_type: str
    filename: str


def pin_verified(record: TransactionRecord) -> bool:
    """True when the terminal said the PIN was entered (field 22, third digit 1)."""
    mode = record.entry_mode or ""
    return len(mode) == 3 and mode[2] == PIN_ENTERED_DIGIT


def issuer_of(pan_masked: str | None) -> str | None:
    """The issuing bank's name from the BIN table (the first six digits), when known."""
    if not pan_masked or not pan_masked[:6].isdigit():
        return None
    entry = DEFAULT_BIN_TABLE.lookup(pan_masked[:6])
    return entry.issuer if entry else None


def receipt_data(uow: UnitOfWork, record: TransactionRecord) -> slips.ReceiptData:
    """What the slip of ``record`` shows (merchant name and original read in ``uow``)."""
    merchant = uow.merchants.get(record.merchant_id)
    original = (uow.transactions.get(record.merchant_id, record.original_txn_id)
                if record.original_txn_id else None)
    approved = record.status in (TxnStatus.APPROVED, TxnStatus.VOIDED)
    return slips.ReceiptData(
        merchant_name=merchant.short_name if merchant else record.merchant_id,
        merchant_id=record.merchant_id, terminal_id=record.terminal_id,
        txn_type=record.txn_type.value, amount_minor=record.amount_minor,
        currency=record.currency,
        at_utc=(record.answered_at or record.created_at).isoformat(),
        batch_no=record.batch_no, trace=record.stan, rrn=record.rrn, reference=record.txn_id,
        approved=approved, pan_masked=slips.mask_pan(record.pan_masked) or None,
        card_brand=record.card_brand, card_kind=record.card_kind,
        issuer=issuer_of(record.pan_masked), auth_code=record.auth_code,
        response_code=record.response_code, refusal_reason=record.refusal_reason,
        original_trace=original.stan if original else None,
        original_rrn=original.rrn if original else None,
        pin_verified=pin_verified(record))


def settlement_data(uow: UnitOfWork, record: SettlementRecord) -> slips.SettlementData:
    """The settlement slip of a terminal batch close: totals per type and the verdicts."""
    merchant = uow.merchants.get(record.merchant_id)
    totals = uow.printing.batch_type_totals(record.merchant_id, record.terminal_id,
                                            record.batch_no)
    order = {t.value: i for i, t in enumerate(TxnType)}
    rows = tuple(slips.TypeTotal(t, c, a)
                 for t, c, a in sorted(totals, key=lambda row: order.get(row[0], 99)))
    try:
        answer = parse_settlement_totals(record.answer_totals)
        domestic = answer.domestic.code is ReconciliationCode.BALANCED
        foreign = answer.foreign.code is ReconciliationCode.BALANCED
    except MessageFormatError:
        domestic = foreign = False
    return slips.SettlementData(
        merchant_name=merchant.short_name if merchant else record.merchant_id,
        merchant_id=record.merchant_id, terminal_id=record.terminal_id,
        batch_no=record.batch_no, at_utc=record.settled_at.isoformat(),
        currency=merchant.currency if merchant else "CNY", totals=rows,
        domestic_balanced=domestic, foreign_balanced=foreign)


def printable(record: TransactionRecord) -> bool:
    """True when the transaction has a slip: answered, and not a balance inquiry."""
    return record.status in PRINTABLE_STATUSES and record.txn_type is not TxnType.BALANCE_INQUIRY


def render(slip: layout.Slip, fmt: ReceiptFormat, encoding: str = "gb18030",
           font: str = "") -> bytes:
    """One slip in one format."""
    if fmt is ReceiptFormat.TXT:
        return layout.as_text(slip).encode()
    if fmt is ReceiptFormat.ESCPOS:
        return escpos_out.to_escpos(slip, encoding)
    fonts = raster.load_fonts(font)
    if fmt is ReceiptFormat.PNG:
        return raster.to_png(slip, fonts)
    return raster.to_pdf(slip, layout.as_text(slip), fonts)


def render_receipt(ctx: ServiceContext, who: Principal, txn_id: str, fmt: str,
                   copy: str = slips.CopyKind.CARDHOLDER.value,
                   width_cols: int = layout.WIDTH_58MM_COLS) -> RenderedReceipt:
    """The e-receipt of a transaction the caller may see (else ``not_found``)."""
    try:
        kind = ReceiptFormat(fmt)
    except ValueError:
        raise ValidationError(f"format must be one of {', '.join(f.value for f in ReceiptFormat)}"
                              ) from None
    try:
        copy_kind = slips.CopyKind(copy)
    except ValueError:
        raise ValidationError(f"copy must be one of "
                              f"{', '.join(c.value for c in slips.CopyKind)}") from None
    if width_cols not in layout.WIDTHS_COLS:
        raise ValidationError(f"width must be one of {layout.WIDTHS_COLS} columns")
    record = transactions.get(ctx, who, txn_id).record  # the caller's reach, or 404
    if not printable(record):
        raise ConflictError(f"transaction {txn_id} has no receipt (it is "
                            f"{record.status.value}, {record.txn_type.value})")
    with ctx.db.unit_of_work() as uow:
        data = receipt_data(uow, record)
    slip = slips.render(data, width_cols, copy_kind)
    return RenderedReceipt(render(slip, kind, font=ctx.settings.receipt_font),
                           MEDIA_TYPES[kind], f"receipt-{record.txn_id}.{kind.value}")
