"""Finding transactions: search by partial facts, receipts' fields, CSV export.

Scope: an operator sees everything, a merchant key its own merchant, a terminal key its own
terminal. A record outside the caller's scope is "not found", never "forbidden".
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime

from autosettle.domain.calendar import SHANGHAI
from autosettle.domain.cards import CardBrand
from autosettle.domain.errors import NotFoundError, ValidationError
from autosettle.domain.money import Money, currency
from autosettle.domain.payment_records import TransactionQuery, TransactionRecord
from autosettle.domain.response_codes import ResponseCode, describe
from autosettle.services.access import Area, may_read, require_read
from autosettle.services.context import Principal, ServiceContext
from autosettle.store.uow import UnitOfWork

PAGE_SIZE_MAX = 500
CSV_ROWS_MAX = 100_000


@dataclass(frozen=True, slots=True)
class ReceiptView:
    """A transaction with everything a receipt (or a support call) needs."""

    record: TransactionRecord
    merchant_name: str
    amount_display: str
    local_time: str
    response_text_en: str
    response_text_zh: str
    card_brand_name: str


@dataclass(frozen=True, slots=True)
class TransactionPage:
    items: list[ReceiptView]
    next_cursor: str | None


def _scoped(who: Principal, query: TransactionQuery) -> TransactionQuery:
    require_read(who, Area.TRANSACTIONS, query.merchant_id)
    if who.is_operator:
        return query
    if query.merchant_id is not None and query.merchant_id != who.merchant_id:
        raise NotFoundError(f"merchant {query.merchant_id} not found")
    query = replace(query, merchant_id=who.merchant_id)
    if who.terminal_id is not None:
        if query.terminal_id is not None and query.terminal_id != who.terminal_id:
            raise NotFoundError(f"terminal {query.terminal_id} not found")
        query = replace(query, terminal_id=who.terminal_id)
    return query


def _encode_cursor(record: TransactionRecord) -> str:
    raw = f"{record.created_at.isoformat()}|{record.txn_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        at, _, txn_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(at), txn_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError("bad cursor") from exc


def view(record: TransactionRecord, merchant_name: str) -> ReceiptView:
    code = ResponseCode(record.response_code) if record.response_code else None
    text = describe(code) if code else None
    local = record.created_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    brand = record.card_brand or CardBrand.UNKNOWN.value
    return ReceiptView(
        record=record, merchant_name=merchant_name,
        amount_display=Money(record.amount_minor, currency(record.currency)).format(),
        local_time=local,
        response_text_en=text.english if text else "in progress",
        response_text_zh=text.chinese if text else "处理中",
        card_brand_name=brand,
    )


def search(ctx: ServiceContext, who: Principal, query: TransactionQuery,
           cursor: str | None, limit: int) -> TransactionPage:
    """Newest first, keyset-paged; filters combine with AND."""
    if not 1 <= limit <= PAGE_SIZE_MAX:
        raise ValidationError(f"limit must be 1..{PAGE_SIZE_MAX}")
    query = _scoped(who, query)
    after = _decode_cursor(cursor) if cursor else None
    with ctx.db.unit_of_work() as uow:
        rows = uow.transactions.search(query, after, limit + 1)
        names = _names(uow, {r.merchant_id for r in rows})
    more = len(rows) > limit
    rows = rows[:limit]
    return TransactionPage([view(r, names.get(r.merchant_id, "")) for r in rows],
                           _encode_cursor(rows[-1]) if more and rows else None)


def _names(uow: UnitOfWork, merchant_ids: set[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    for merchant_id in merchant_ids:
        merchant = uow.merchants.get(merchant_id)
        names[merchant_id] = merchant.short_name if merchant else ""
    return names


def receipt(ctx: ServiceContext, record: TransactionRecord) -> ReceiptView:
    """The receipt view of a record a payment just answered (its merchant's name read)."""
    with ctx.db.unit_of_work() as uow:
        names = _names(uow, {record.merchant_id})
    return view(record, names[record.merchant_id])


def get(ctx: ServiceContext, who: Principal, txn_id: str) -> ReceiptView:
    with ctx.db.unit_of_work() as uow:
        if who.is_operator:
            record = uow.transactions.get_any_merchant(txn_id)
        else:
            record = uow.transactions.get(who.merchant_id or "", txn_id)
        names = _names(uow, {record.merchant_id}) if record else {}
    if record is None or not may_read(who, Area.TRANSACTIONS, record.merchant_id) or (
        who.terminal_id is not None and record.terminal_id != who.terminal_id
    ):
        raise NotFoundError(f"transaction {txn_id} not found")
    return view(record, names[record.merchant_id])


CSV_COLUMNS = (
    "business_date", "local_time", "merchant_id", "merchant_name", "terminal_id", "txn_type",
    "status", "amount", "currency", "refunded", "pan_masked", "card_brand", "card_kind",
    "batch_no", "stan", "rrn", "auth_code", "response_code", "response_text_en",
    "response_text_zh", "refusal_reason", "txn_id", "original_txn_id",
)


def export_csv(ctx: ServiceContext, who: Principal, query: TransactionQuery) -> Iterator[str]:
    """CSV of every matching transaction (newest first), streamed page by page."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue()
    cursor: str | None = None
    written = 0
    while written < CSV_ROWS_MAX:
        page = search(ctx, who, query, cursor, PAGE_SIZE_MAX)
        buffer.seek(0)
        buffer.truncate()
        for item in page.items:
            r = item.record
            cur = currency(r.currency)
            writer.writerow((
                r.business_date.isoformat(), item.local_time, r.merchant_id, item.merchant_name,
                r.terminal_id, r.txn_type, r.status, item.amount_display, r.currency,
                Money(r.refunded_minor, cur).format(), r.pan_masked or "", r.card_brand or "",
                r.card_kind or "", r.batch_no, r.stan, r.rrn, r.auth_code or "",
                r.response_code or "", item.response_text_en, item.response_text_zh,
                r.refusal_reason or "", r.txn_id, r.original_txn_id or "",
            ))
        written += len(page.items)
        yield buffer.getvalue()
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
