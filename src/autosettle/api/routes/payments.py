"""Payments for terminals and cash registers (terminal keys), and transaction search."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse, StreamingResponse

from autosettle.api.deps import Ctx, Who
from autosettle.api.errors import HTTP_STATUS, error_body
from autosettle.api.payment_schemas import (
    AmountIn,
    BalanceInquiryIn,
    FollowUpIn,
    PaymentOut,
    ReversalIn,
    SaleIn,
    TraceIn,
    TransactionPageOut,
    TransactionPublic,
    VoidIn,
)
from autosettle.domain.errors import ErrorCode, ValidationError
from autosettle.domain.money import Money, currency
from autosettle.domain.payment_records import TransactionQuery
from autosettle.domain.response_codes import describe
from autosettle.domain.transactions import TxnStatus, TxnType
from autosettle.services import payments, reversals, transactions
from autosettle.services.context import Principal, ServiceContext
from autosettle.services.payments import CardInput, OriginalRef, PaymentRequest, PaymentResult

E = TypeVar("E", bound=StrEnum)

router = APIRouter(prefix="/v1", tags=["payments"])
IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
REPLAYED: dict[int | str, dict[str, Any]] = {200: {
    "model": PaymentOut, "description": "Replayed: the answer to an earlier request with the "
    "same Idempotency-Key or trace number (`replayed: true`); nothing ran again"}}


def _money(body: AmountIn | None) -> Money | None:
    if body is None or (body.amount_minor is None and body.amount is None):
        return None
    cur = currency(body.currency)
    if body.amount_minor is not None:
        return Money.checked(body.amount_minor, cur)
    assert body.amount is not None
    return Money.parse(body.amount, cur)


def _require_key(key: str | None, trace: TraceIn) -> None:
    if key is None and trace.stan is None:
        raise ValidationError("send an Idempotency-Key header (or a trace number): a retried "
                              "payment must never charge twice")


def _respond(ctx: ServiceContext, result: PaymentResult) -> JSONResponse:
    text = describe(result.response_code)
    if result.record is None and result.error_code is not None and not result.approved:
        status = HTTP_STATUS.get(result.error_code, 422)
        if result.error_code is ErrorCode.NOT_FOUND:
            status = 422
        body = error_body(result.error_code, result.message,
                          response_code=result.response_code.value,
                          response_text_en=text.english, response_text_zh=text.chinese)
        return JSONResponse(body, status_code=status)
    if result.error_code is ErrorCode.IDEMPOTENCY_CONFLICT:
        return JSONResponse(error_body(ErrorCode.IDEMPOTENCY_CONFLICT, result.message,
                                       response_code=result.response_code.value),
                            status_code=409)
    txn = None
    if result.record is not None:
        txn = TransactionPublic.of(transactions.receipt(ctx, result.record))
    out = PaymentOut(approved=result.approved, response_code=result.response_code.value,
                     response_text_en=text.english, response_text_zh=text.chinese,
                     message=result.message, replayed=result.replayed,
                     balance_minor=result.balance_minor, transaction=txn)
    return JSONResponse(out.model_dump(mode="json"),
                        status_code=200 if result.replayed else 201)


def _start(ctx: ServiceContext, who: Principal, kind: TxnType, body: SaleIn | BalanceInquiryIn,
           key: str | None, amount: Money | None) -> JSONResponse:
    merchant_id, terminal_id = payments.paying_terminal(who)
    _require_key(key, body)
    card = CardInput(body.card.pan.replace(" ", ""), body.card.expiry, body.card.pin,
                     body.card.entry_mode)
    return _respond(ctx, payments.authorize(ctx, PaymentRequest(
        kind, merchant_id, terminal_id, amount, card, None, body.batch_no, body.stan, key)))


@router.post("/payments/sales", response_model=PaymentOut, status_code=201,
             responses=REPLAYED)
def sale(body: SaleIn, ctx: Ctx, who: Who, key: IdemKey = None) -> JSONResponse:
    """Sale (消费). Declines are answered with 201 and ``approved: false``."""
    return _start(ctx, who, TxnType.SALE, body, key, _money(body))


@router.post("/payments/preauths", response_model=PaymentOut, status_code=201,
             responses=REPLAYED)
def preauth(body: SaleIn, ctx: Ctx, who: Who, key: IdemKey = None) -> JSONResponse:
    """Pre-authorization (预授权): holds funds until completed or cancelled."""
    return _start(ctx, who, TxnType.PREAUTH, body, key, _money(body))


@router.post("/payments/balance-inquiries", response_model=PaymentOut, status_code=201,
             responses=REPLAYED)
def balance_inquiry(body: BalanceInquiryIn, ctx: Ctx, who: Who,
                    key: IdemKey = None) -> JSONResponse:
    """Balance inquiry (余额查询)."""
    return _start(ctx, who, TxnType.BALANCE_INQUIRY, body, key, None)


def _follow_up(ctx: ServiceContext, who: Principal, kinds: dict[TxnType, TxnType], txn_id: str,
               body: TraceIn, key: str | None, amount: Money | None) -> JSONResponse:
    merchant_id, terminal_id = payments.paying_terminal(who)
    _require_key(key, body)
    kind = payments.follow_up_type(ctx, merchant_id, txn_id, kinds)
    return _respond(ctx, payments.authorize(ctx, PaymentRequest(
        kind, merchant_id, terminal_id, amount, None, OriginalRef(txn_id=txn_id),
        body.batch_no, body.stan, key)))


@router.post("/payments/{txn_id}/voids", response_model=PaymentOut, status_code=201,
             responses=REPLAYED)
def void(txn_id: str, body: VoidIn, ctx: Ctx, who: Who, key: IdemKey = None) -> JSONResponse:
    """Void (撤销) a sale or a completion in the open batch."""
    kinds = {TxnType.SALE: TxnType.VOID, TxnType.COMPLETION: TxnType.COMPLETION_VOID}
    return _follow_up(ctx, who, kinds, txn_id, body, key, _money(body))


@router.post("/payments/{txn_id}/refunds", response_model=PaymentOut, status_code=201,
             responses=REPLAYED)
def refund(txn_id: str, body: FollowUpIn, ctx: Ctx, who: Who,
           key: IdemKey = None) -> JSONResponse:
    """Refund (退货) all or part of a sale or completion, also after settlement."""
    return _follow_up(ctx, who, {TxnType.SALE: TxnType.REFUND}, txn_id, body, key, _money(body))


@router.post("/payments/{txn_id}/completions", response_model=PaymentOut, status_code=201,
             responses=REPLAYED)
def completion(txn_id: str, body: FollowUpIn, ctx: Ctx, who: Who,
               key: IdemKey = None) -> JSONResponse:
    """Complete (预授权完成) a pre-authorization, up to 115% of it by default."""
    return _follow_up(ctx, who, {TxnType.PREAUTH: TxnType.COMPLETION}, txn_id, body, key,
                      _money(body))


@router.post("/payments/{txn_id}/cancellations", response_model=PaymentOut, status_code=201,
             responses=REPLAYED)
def cancel(txn_id: str, body: VoidIn, ctx: Ctx, who: Who, key: IdemKey = None) -> JSONResponse:
    """Cancel (预授权撤销) a pre-authorization."""
    return _follow_up(ctx, who, {TxnType.PREAUTH: TxnType.PREAUTH_VOID}, txn_id, body, key,
                      _money(body))


@router.post("/payments/{txn_id}/reversal", response_model=PaymentOut)
def reversal(txn_id: str, body: ReversalIn, ctx: Ctx, who: Who) -> JSONResponse:
    """Reverse (冲正) a transaction; idempotent, also for unknown ids."""
    merchant_id, terminal_id = payments.paying_terminal(who)
    result = reversals.reverse(ctx, merchant_id, terminal_id, OriginalRef(txn_id=txn_id),
                              body.reason)
    response = _respond(ctx, result)
    response.status_code = 200 if response.status_code < 300 else response.status_code
    return response


def _query(merchant_id: str | None, terminal_id: str | None, date_from: date | None,
           date_to: date | None, txn_type: str | None, status: str | None,
           amount_minor: int | None, last4: str | None, rrn: str | None,
           auth_code: str | None, stan: str | None, batch_no: str | None) -> TransactionQuery:
    return TransactionQuery(merchant_id, terminal_id, date_from, date_to,
                            _member(TxnType, txn_type, "type"),
                            _member(TxnStatus, status, "status"),
                            amount_minor, last4, rrn, auth_code, stan, batch_no)


def _member(enum: type[E], value: str | None, name: str) -> E | None:
    """The enum member a query parameter names; an unknown value is a typed 422."""
    if value is None:
        return None
    try:
        return enum(value)
    except ValueError:
        raise ValidationError(f"unknown {name} {value!r}; one of: "
                              + ", ".join(m.value for m in enum)) from None


Q = Query


@router.get("/transactions", response_model=TransactionPageOut, tags=["transactions"])
def search(
    ctx: Ctx, who: Who,
    merchant_id: Annotated[str | None, Q(max_length=15)] = None,
    terminal_id: Annotated[str | None, Q(max_length=8)] = None,
    date_from: date | None = None, date_to: date | None = None,
    txn_type: Annotated[str | None, Q(alias="type", max_length=20)] = None,
    status: Annotated[str | None, Q(max_length=20)] = None,
    amount_minor: Annotated[int | None, Q(ge=0, le=10**12)] = None,
    last4: Annotated[str | None, Q(pattern=r"^\d{4}$")] = None,
    rrn: Annotated[str | None, Q(max_length=12)] = None,
    auth_code: Annotated[str | None, Q(max_length=6)] = None,
    stan: Annotated[str | None, Q(pattern=r"^\d{6}$")] = None,
    batch_no: Annotated[str | None, Q(pattern=r"^\d{6}$")] = None,
    cursor: Annotated[str | None, Q(max_length=200)] = None,
    limit: Annotated[int, Q(ge=1, le=transactions.PAGE_SIZE_MAX)] = 50,
) -> TransactionPageOut:
    """Search by any combination of facts (last four digits, amount, date, RRN, ...)."""
    page = transactions.search(ctx, who, _query(
        merchant_id, terminal_id, date_from, date_to, txn_type, status, amount_minor, last4,
        rrn, auth_code, stan, batch_no), cursor, limit)
    return TransactionPageOut(items=[TransactionPublic.of(v) for v in page.items],
                              next_cursor=page.next_cursor)


@router.get("/transactions.csv", tags=["transactions"], response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                             "description": "CSV, UTF-8 with BOM, one transaction a row"}})
def export(
    ctx: Ctx, who: Who,
    merchant_id: Annotated[str | None, Q(max_length=15)] = None,
    terminal_id: Annotated[str | None, Q(max_length=8)] = None,
    date_from: date | None = None, date_to: date | None = None,
    txn_type: Annotated[str | None, Q(alias="type", max_length=20)] = None,
    status: Annotated[str | None, Q(max_length=20)] = None,
    last4: Annotated[str | None, Q(pattern=r"^\d{4}$")] = None,
) -> StreamingResponse:
    """The same search as CSV (UTF-8 with BOM so spreadsheet programs read Chinese)."""
    query = _query(merchant_id, terminal_id, date_from, date_to, txn_type, status, None,
                   last4, None, None, None, None)
    rows = list(transactions.export_csv(ctx, who, query))
    return StreamingResponse(iter(["\ufeff", *rows]), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition":
                                      'attachment; filename="transactions.csv"'})


@router.get("/transactions/{txn_id}", response_model=TransactionPublic, tags=["transactions"])
def get_transaction(txn_id: str, ctx: Ctx, who: Who) -> TransactionPublic:
    return TransactionPublic.of(transactions.get(ctx, who, txn_id))

