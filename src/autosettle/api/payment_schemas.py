"""Shapes of the payment and transaction endpoints."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from autosettle.domain.money import AMOUNT_MINOR_MAX
from autosettle.services.transactions import ReceiptView

Digits6 = Annotated[str, StringConstraints(pattern=r"^\d{6}$")]
AmountMinor = Annotated[int, Field(gt=0, le=AMOUNT_MINOR_MAX,
                                   description="Amount in minor units (fen).")]
AmountText = Annotated[str, StringConstraints(pattern=r"^\d{1,10}(\.\d{1,3})?$",
                                              max_length=14)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CardData(Strict):
    """Card data as the terminal read it. Never stored; only passed to the channel."""

    pan: Annotated[str, StringConstraints(pattern=r"^[0-9 ]{13,23}$")]
    expiry: Annotated[str, StringConstraints(pattern=r"^\d{4}$")] | None = Field(
        default=None, description="YYMM")
    pin: Annotated[str, StringConstraints(pattern=r"^\d{4,12}$")] | None = None
    entry_mode: Annotated[str, StringConstraints(pattern=r"^\d{3}$")] | None = None


class AmountIn(Strict):
    """An amount as ``amount_minor`` (fen) or ``amount`` ("12.34"), not both."""

    amount_minor: AmountMinor | None = None
    amount: AmountText | None = None
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"

    @model_validator(mode="after")
    def _one_amount(self) -> AmountIn:
        if (self.amount_minor is None) == (self.amount is None):
            raise ValueError("give exactly one of amount_minor and amount")
        return self


class OptionalAmountIn(AmountIn):
    @model_validator(mode="after")
    def _one_amount(self) -> OptionalAmountIn:
        if self.amount_minor is not None and self.amount is not None:
            raise ValueError("give at most one of amount_minor and amount")
        return self


class TraceIn(Strict):
    batch_no: Digits6 | None = None
    stan: Digits6 | None = Field(default=None, description="Trace number (field 11).")


class SaleIn(AmountIn, TraceIn):
    card: CardData


class BalanceInquiryIn(TraceIn):
    card: CardData


class FollowUpIn(AmountIn, TraceIn):
    """Refund or completion of an original: an amount is required."""


class VoidIn(OptionalAmountIn, TraceIn):
    """Void or cancel of an original: the amount, if given, must equal the original's."""


class ReversalIn(Strict):
    reason: Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{2}$")] = "06"


class TransactionPublic(BaseModel):
    txn_id: str
    merchant_id: str
    merchant_name: str
    terminal_id: str
    txn_type: str
    status: str
    amount_minor: int
    amount: str
    currency: str
    refunded_minor: int
    pan_masked: str | None
    card_brand: str | None
    card_kind: str | None
    batch_no: str
    stan: str
    rrn: str
    auth_code: str | None
    response_code: str | None
    response_text_en: str
    response_text_zh: str
    refusal_reason: str | None
    original_txn_id: str | None
    business_date: date
    expires_on: date | None
    local_time: str
    created_at: datetime

    @classmethod
    def of(cls, v: ReceiptView) -> TransactionPublic:
        r = v.record
        return cls(
            txn_id=r.txn_id, merchant_id=r.merchant_id, merchant_name=v.merchant_name,
            terminal_id=r.terminal_id, txn_type=r.txn_type, status=r.status,
            amount_minor=r.amount_minor, amount=v.amount_display, currency=r.currency,
            refunded_minor=r.refunded_minor, pan_masked=r.pan_masked, card_brand=r.card_brand,
            card_kind=r.card_kind, batch_no=r.batch_no, stan=r.stan, rrn=r.rrn,
            auth_code=r.auth_code, response_code=r.response_code,
            response_text_en=v.response_text_en, response_text_zh=v.response_text_zh,
            refusal_reason=r.refusal_reason, original_txn_id=r.original_txn_id,
            business_date=r.business_date, expires_on=r.expires_on, local_time=v.local_time,
            created_at=r.created_at)


class PaymentOut(BaseModel):
    approved: bool
    response_code: str
    response_text_en: str
    response_text_zh: str
    message: str
    replayed: bool
    balance_minor: int | None = None
    transaction: TransactionPublic | None


class TransactionPageOut(BaseModel):
    items: list[TransactionPublic]
    next_cursor: str | None
