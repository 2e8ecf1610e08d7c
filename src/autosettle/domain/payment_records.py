"""A stored payment as the layers above the store see it, and what a payment is decided on.

The store maps its rows to and from these values (``store/payments.py``); services, the API
and the terminal host use them and never a row class. Type and status are the enums of the
transaction state machine (:mod:`autosettle.domain.transactions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from autosettle.domain.merchants import Merchant, TerminalStatus
from autosettle.domain.transactions import TxnStatus, TxnType

FEE_STAMP_SEPARATOR = "\n"
"""Between the JSON specs of a merchant's fee schedule versions (JSON text has no raw
newline)."""


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    """One stored transaction: everything a receipt shows, and no card data beyond 6+4."""

    merchant_id: str
    txn_id: str
    terminal_id: str
    txn_type: TxnType
    status: TxnStatus
    amount_minor: int
    currency: str
    refunded_minor: int
    original_txn_id: str | None
    card_token: str | None
    pan_masked: str | None
    pan_last4: str | None
    card_brand: str | None
    card_kind: str | None
    entry_mode: str | None
    batch_no: str
    stan: str
    rrn: str
    auth_code: str | None
    response_code: str | None
    refusal_reason: str | None
    channel: str
    channel_ref: str | None
    idempotency_key: str | None
    request_fingerprint: str
    business_date: date
    expires_on: date | None
    created_at: datetime
    updated_at: datetime
    answered_at: datetime | None


@dataclass(frozen=True, slots=True)
class TransactionQuery:
    """Search criteria; every field is optional. ``merchant_id`` scopes tenants."""

    merchant_id: str | None = None
    terminal_id: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    txn_type: TxnType | None = None
    status: TxnStatus | None = None
    amount_minor: int | None = None
    last4: str | None = None
    rrn: str | None = None
    auth_code: str | None = None
    stan: str | None = None
    batch_no: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentRules:
    """What a merchant may accept: transaction types, card kinds, completion ratio."""

    allowed_txn_types: frozenset[str] | None
    allowed_card_kinds: frozenset[str] | None
    completion_ratio_max: str


@dataclass(frozen=True, slots=True)
class PaymentContext:
    """What a payment at a terminal is decided on, read in one statement, fresh each time.

    ``fee_stamp`` (the stored specs of the merchant's fee schedule versions, joined by
    :data:`FEE_STAMP_SEPARATOR`) and ``calendar_stamp`` (every calendar override as
    ``day:flag``, comma-separated) are the content itself, in some order: the caller can
    reuse what it parsed from an equal stamp before, and parse a new one without reading
    anything else. Both are empty when there are none.
    """

    terminal_status: TerminalStatus
    merchant: Merchant
    rules: PaymentRules
    fee_stamp: str
    calendar_stamp: str
    risk_stamp: str | None = None
    """The newest risk rule version's random stamp (None: no stored rules): a process
    reuses the rule set it parsed for an equal stamp (``services.risk``)."""
