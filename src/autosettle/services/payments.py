"""Card payments: sale, void, refund, pre-authorization, cancel, completion, completion void,
balance inquiry, for the REST API and the ISO 8583 terminal host alike. Reversal (冲正) and
crash recovery are in :mod:`autosettle.services.reversals`, the store-and-forward queue of
reversals for the channel in :mod:`autosettle.services.reversal_queue`.

The flow of every operation:

1. **Shape checks** (no write): card number (Luhn), expiry format, amount, currency, the
   terminal and its merchant. Bad input is *rejected*: a typed error and a response code,
   and nothing is stored.
2. **Duplicates**: the same terminal + batch + trace (field 11) or the same idempotency key
   replays the first answer; it never charges twice.
3. **Rules** (pure, ``domain.transactions``): merchant and terminal active, allowed types
   and card kinds, card expiry on the business date, and the state machine for voids,
   refunds, completions and cancels; then **risk control** (``services.risk``: limits,
   counters, velocity, time windows, allowed methods, block lists, the merchant's own
   per-sale limit among them). A refusal is *recorded* as a declined transaction with its
   reason and posts nothing; a *review* goes on, its settlement item held.
4. **Pending record** committed *before* the channel is called (store and forward: if the
   process dies while waiting, recovery finds it and reverses it).
5. **Channel** call with a deadline. No answer in time → the record is reversed and a
   reversal is queued for the channel, retried until acknowledged.
6. **One transaction** applies the answer: record, originals, and balanced ledger entries.
   An approval that arrives after the record was reversed moves no money: it is reversed at
   the channel. A record without originals (a sale) that is still pending is answered with
   one conditional UPDATE; anything else is locked and re-read first.

Step 2-4 read what a payment needs in one statement (terminal, merchant, rules, and the
calendar and fee schedule stamps that price its settlement item), fresh for every payment;
only what was parsed from an identical stamp is reused (``services.settlement_items``).

Card data (PAN, expiry, PIN) only passes through memory on its way to the channel; the
record keeps a keyed token, the masked PAN and the last four digits.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from autosettle.channels.base import (
    Channel,
    ChannelAnswer,
    ChannelError,
    ChannelRequest,
    ChannelTimeout,
    call_with_timeout,
)
from autosettle.domain import payment_postings as postings
from autosettle.domain import transactions as tm
from autosettle.domain.calendar import business_date
from autosettle.domain.cards import CardRef, Expiry, validate_pan
from autosettle.domain.errors import (
    AlreadyExists,
    AuthError,
    AutosettleError,
    ErrorCode,
    ValidationError,
)
from autosettle.domain.ledger import Account, Line
from autosettle.domain.merchants import MerchantStatus, TerminalStatus
from autosettle.domain.money import AMOUNT_MINOR_MAX, Money, currency
from autosettle.domain.payment_records import PaymentRules, TransactionRecord
from autosettle.domain.response_codes import ResponseCode, describe
from autosettle.services import idempotency, reversal_queue, risk, settlement_items
from autosettle.services.context import Principal, Role, ServiceContext
from autosettle.store.uow import UnitOfWork

RC = ResponseCode
TxnType = tm.TxnType
TxnStatus = tm.TxnStatus

REPLAY_WAIT_POLL_S = 0.02
STUCK_GRACE_S = 5.0
"""Seconds past the channel deadline before a pending record counts as stuck."""
FIRST_BATCH_NO = "000001"

_NEEDS_CARD = frozenset({TxnType.SALE, TxnType.PREAUTH, TxnType.BALANCE_INQUIRY})
_NEEDS_AMOUNT = frozenset({TxnType.SALE, TxnType.PREAUTH, TxnType.REFUND,
                           TxnType.COMPLETION})
_HAS_ORIGINAL = frozenset(t for t, originals in tm.ORIGINAL_TYPES.items() if originals)

# -- requests and results -----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CardInput:
    """Card data as read by the terminal. Lives in memory only; never in a repr or a log."""

    pan: str = field(repr=False)
    expiry: str | None = field(default=None, repr=False)
    pin: str | None = field(default=None, repr=False)
    entry_mode: str | None = None


@dataclass(frozen=True, slots=True)
class OriginalRef:
    """How a void, refund, cancel or completion names its original (any one suffices)."""

    txn_id: str | None = None
    batch_no: str | None = None
    stan: str | None = None
    rrn: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    txn_type: tm.TxnType
    merchant_id: str
    terminal_id: str
    amount: Money | None = None
    card: CardInput | None = None
    original: OriginalRef | None = None
    batch_no: str | None = None
    stan: str | None = None
    idempotency_key: str | None = None
    own_batch_numbers: bool = False
    """True for a terminal that numbers its batches itself (ISO 8583 field 60.2, checked
    against the batch the host expects): a number not seen before opens that batch. Any
    other caller (REST) may name only an open batch of its terminal (``batch_not_open``)."""


@dataclass(frozen=True, slots=True)
class PaymentResult:
    """The answer to the terminal: a response code, and the record when one was kept."""

    response_code: ResponseCode
    record: TransactionRecord | None
    message: str
    balance_minor: int | None = None
    replayed: bool = False
    error_code: ErrorCode | None = None

    @property
    def approved(self) -> bool:
        return self.response_code is RC.APPROVED


class Rejected(AutosettleError):
    """Bad input: nothing was stored. Carries the ISO 8583 code the terminal gets."""

    default_code = ErrorCode.VALIDATION_FAILED

    def __init__(self, message: str, response_code: ResponseCode,
                 code: ErrorCode | None = None) -> None:
        super().__init__(message, code)
        self.response_code = response_code


def _rejected(message: str, response_code: ResponseCode,
              code: ErrorCode = ErrorCode.VALIDATION_FAILED) -> PaymentResult:
    return PaymentResult(response_code, None, message, error_code=code)


# -- the operation --------------------------------------------------------------------------

def paying_terminal(who: Principal) -> tuple[str, str]:
    """The merchant and terminal ``who`` pays as: only a terminal key may make payments."""
    if who.role is not Role.TERMINAL or not who.merchant_id or not who.terminal_id:
        raise AuthError("payments need a terminal API key", ErrorCode.FORBIDDEN)
    return who.merchant_id, who.terminal_id


def follow_up_type(ctx: ServiceContext, merchant_id: str, txn_id: str,
                   kinds: Mapping[tm.TxnType, tm.TxnType]) -> tm.TxnType:
    """The type of a follow-up of ``txn_id`` by the original's type (``kinds``: original type
    -> follow-up type); the first choice when the original is unknown or of another type (the
    payment then answers why)."""
    with ctx.db.unit_of_work() as uow:
        original = uow.transactions.get(merchant_id, txn_id)
    first = next(iter(kinds.values()))
    return kinds.get(original.txn_type, first) if original is not None else first


def authorize(ctx: ServiceContext, req: PaymentRequest) -> PaymentResult:
    """Run one payment operation end to end (see the module docstring for the steps)."""
    try:
        _check_shape(req)
    except Rejected as exc:
        return _rejected(exc.message, exc.response_code, exc.code)
    except ValidationError as exc:
        return _rejected(exc.message, _code_for(exc.code), exc.code)
    card_ref = ctx.tokenizer.describe(req.card.pan) if req.card else None
    fingerprint = _fingerprint(req, card_ref)
    try:
        prepared = _prepare_once(ctx, req, fingerprint, card_ref)
    except Rejected as exc:
        return _rejected(exc.message, exc.response_code, exc.code)
    if isinstance(prepared, PaymentResult):
        record = prepared.record
        if prepared.replayed and record is not None and record.response_code is None:
            waited = wait_for_answer(ctx, record.merchant_id, record.txn_id,
                                     ctx.settings.channel_timeout_s + STUCK_GRACE_S)
            return _answer_of(waited or record, replayed=True)
        return prepared
    return _send(ctx, prepared, req)


def _check_shape(req: PaymentRequest) -> None:
    txn_type = tm.TxnType(req.txn_type)
    if req.idempotency_key is not None:
        idempotency.check_key(req.idempotency_key)  # the rule of every other POST
    if txn_type in _NEEDS_CARD and req.card is None:
        raise Rejected(f"a {txn_type} needs card data", RC.FORMAT_ERROR)
    if req.card is not None:
        validate_pan(req.card.pan)
        if req.card.expiry is not None:
            Expiry.parse(req.card.expiry)
        if req.card.pin is not None and not (
            4 <= len(req.card.pin) <= 12 and req.card.pin.isascii() and req.card.pin.isdigit()
        ):
            raise Rejected("PIN must be 4-12 digits", RC.PIN_FORMAT_ERROR)
    if txn_type in _NEEDS_AMOUNT and req.amount is None:
        raise Rejected(f"a {txn_type} needs an amount", RC.INVALID_AMOUNT,
                       ErrorCode.INVALID_AMOUNT)
    if req.amount is not None and not 0 < req.amount.amount_minor <= AMOUNT_MINOR_MAX:
        raise Rejected("amount must be positive and at most 10^12 - 1 minor units",
                       RC.INVALID_AMOUNT, ErrorCode.INVALID_AMOUNT)
    if txn_type in _HAS_ORIGINAL and (req.original is None or not any(
            (req.original.txn_id, req.original.stan, req.original.rrn))):
        raise Rejected(f"a {txn_type} must name its original", RC.FORMAT_ERROR)
    for name, value, length in (("batch number", req.batch_no, 6), ("trace", req.stan, 6)):
        if value is not None and (len(value) != length or not value.isdigit()
                                  or not value.isascii()):
            raise Rejected(f"{name} must be {length} digits", RC.FORMAT_ERROR)


def _code_for(code: ErrorCode) -> ResponseCode:
    return {
        ErrorCode.INVALID_PAN: RC.INVALID_CARD_NUMBER,
        ErrorCode.INVALID_EXPIRY: RC.FORMAT_ERROR,
        ErrorCode.CARD_EXPIRED: RC.EXPIRED_CARD,
        ErrorCode.INVALID_AMOUNT: RC.INVALID_AMOUNT,
        ErrorCode.AMOUNT_TOO_LARGE: RC.INVALID_AMOUNT,
        ErrorCode.AMOUNT_NEGATIVE: RC.INVALID_AMOUNT,
        ErrorCode.AMOUNT_TOO_PRECISE: RC.INVALID_AMOUNT,
        ErrorCode.UNKNOWN_CURRENCY: RC.INVALID_AMOUNT,
        ErrorCode.CURRENCY_MISMATCH: RC.INVALID_AMOUNT,
    }.get(code, RC.FORMAT_ERROR)


def _fingerprint(req: PaymentRequest, card: CardRef | None) -> str:
    """What makes two requests "the same" for duplicate detection (no card data in clear)."""
    card_digest = card.token if card else None  # keyed: never a bare hash of the PAN
    original = req.original
    payload = {
        "type": str(req.txn_type), "merchant": req.merchant_id, "terminal": req.terminal_id,
        "amount": req.amount.amount_minor if req.amount else None,
        "currency": req.amount.currency.code if req.amount else None, "card": card_digest,
        "original": [original.txn_id, original.batch_no, original.stan, original.rrn]
        if original else None,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _prepare_once(ctx: ServiceContext, req: PaymentRequest, fingerprint: str,
                  card_ref: CardRef | None) -> PaymentResult | _Prepared:
    """:func:`_prepare`, again if its insert clashed on a trace or key: a concurrent twin
    got there first (the retry replays it), or the trace counter lagged behind a trace in
    use (the retry moves it past every used one). A clash that persists is a duplicate."""
    try:
        return _prepare(ctx, req, fingerprint, card_ref)
    except AlreadyExists:
        pass
    try:
        return _prepare(ctx, req, fingerprint, card_ref, resync=True)
    except AlreadyExists:
        raise Rejected("this trace number is already used in the batch",
                       RC.DUPLICATE_TRANSMISSION, ErrorCode.IDEMPOTENCY_CONFLICT) from None


@dataclass(frozen=True, slots=True)
class _Prepared:
    record: TransactionRecord
    original: TransactionRecord | None
    terms: settlement_items.ItemTerms
    hold: bool = False
    """Risk review: approve, but hold the settlement item until an operator releases it."""


def _prepare(ctx: ServiceContext, req: PaymentRequest, fingerprint: str,
             assert_card: CardRef | None, resync: bool = False) -> PaymentResult | _Prepared:
    """Steps 2-4 in one unit of work: duplicates, rules, then the pending (or declined) row."""
    now = ctx.now()
    today = business_date(now, ctx.settings.cutoff)
    with ctx.db.unit_of_work() as uow:
        # The terminal, its merchant and its rules are read fresh by every payment (a
        # suspension applies at once); only the parsed fee schedules and calendar are reused.
        context = uow.payment_rules.context(req.merchant_id, req.terminal_id)
        if context is None:
            if not uow.terminals.terminal_id_exists(req.terminal_id):
                raise Rejected("terminal not registered", RC.TERMINAL_NOT_REGISTERED,
                               ErrorCode.NOT_FOUND)
            raise Rejected("terminal does not belong to this merchant", RC.INVALID_MERCHANT,
                           ErrorCode.NOT_FOUND)
        merchant = context.merchant
        existing = _find_duplicate(uow, req)
        if existing is not None:
            return _replay_later(existing, fingerprint)
        if resync:
            uow.batches.resync_stans(req.merchant_id, req.terminal_id)
        batch_no, stan = _batch_and_stan(uow, req, now)
        amount = req.amount
        if amount is not None and amount.currency.code != merchant.currency:
            raise Rejected(f"this merchant accepts {merchant.currency} only", RC.INVALID_AMOUNT,
                           ErrorCode.CURRENCY_MISMATCH)
        original = _resolve_original(uow, req)
        decision = _decide(uow, req, context.rules, merchant.status, context.terminal_status,
                           original, assert_card, today)
        if isinstance(decision, tm.Permission):
            amount = decision.amount
        txn_id = uuid.uuid4().hex
        checked = risk.APPROVED
        if ctx.settings.risk_enabled and not isinstance(decision, _Decline):
            attempt = risk.attempt_for(
                context, tm.TxnType(req.txn_type), req.terminal_id,
                amount.amount_minor if amount else None, assert_card, original,
                req.card.entry_mode if req.card else None, now)
            checked = risk.check_payment(
                uow, context, attempt, txn_id,
                assert_card.last4 if assert_card else None, today, now)
            if checked.declined:
                decision = _decline_of(checked)
        record = TransactionRecord(
            merchant_id=req.merchant_id, txn_id=txn_id, terminal_id=req.terminal_id,
            txn_type=tm.TxnType(req.txn_type), status=TxnStatus.PENDING,
            amount_minor=amount.amount_minor if amount else 0,
            currency=(amount.currency.code if amount else merchant.currency),
            refunded_minor=0, original_txn_id=original.txn_id if original else None,
            card_token=assert_card.token if assert_card else (
                original.card_token if original else None),
            pan_masked=assert_card.masked if assert_card else (
                original.pan_masked if original else None),
            pan_last4=assert_card.last4 if assert_card else (
                original.pan_last4 if original else None),
            card_brand=str(assert_card.brand) if assert_card else (
                original.card_brand if original else None),
            card_kind=str(assert_card.kind) if assert_card else (
                original.card_kind if original else None),
            entry_mode=req.card.entry_mode if req.card else None,
            batch_no=batch_no, stan=stan, rrn=_new_rrn(), auth_code=None, response_code=None,
            refusal_reason=None, channel=_channel(ctx).name, channel_ref=None,
            idempotency_key=req.idempotency_key, request_fingerprint=fingerprint,
            business_date=today,
            expires_on=tm.preauth_expires_on(today) if req.txn_type is TxnType.PREAUTH
            else None,
            created_at=now, updated_at=now, answered_at=None,
        )
        if isinstance(decision, _Decline):
            record = replace(record, status=TxnStatus.DECLINED,
                             response_code=decision.code.value,
                             refusal_reason=decision.reason, answered_at=now)
            uow.transactions.add(record)
            return PaymentResult(decision.code, record, decision.message)
        if checked.pending is None:
            uow.transactions.add(record)
        else:
            # The record goes in with the reservation (one statement on PostgreSQL), last,
            # so the counter rows stay locked only until the commit that follows.
            checked = risk.reserve(uow, checked, record)
            if checked.declined:
                refused = _decline_of(checked)
                uow.transactions.update(record.merchant_id, record.txn_id,
                                        status=TxnStatus.DECLINED.value,
                                        response_code=refused.code.value,
                                        refusal_reason=refused.reason, answered_at=now,
                                        updated_at=now)
                return PaymentResult(refused.code, replace(
                    record, status=TxnStatus.DECLINED, response_code=refused.code.value,
                    refusal_reason=refused.reason, answered_at=now), refused.message)
        return _Prepared(record, original, settlement_items.terms_for(context), checked.hold)


def _decline_of(checked: risk.Checked) -> _Decline:
    hit = checked.outcome.first
    assert hit is not None
    return _Decline(hit.code, hit.reason, f"{hit.english} / {hit.chinese}")


def _replay_later(existing: TransactionRecord, fingerprint: str) -> PaymentResult:
    if existing.request_fingerprint != fingerprint:
        return PaymentResult(RC.DUPLICATE_TRANSMISSION, None,
                             "this trace number or idempotency key was used for another "
                             "request", error_code=ErrorCode.IDEMPOTENCY_CONFLICT)
    return _answer_of(existing, replayed=True)


def _find_duplicate(uow: UnitOfWork, req: PaymentRequest) -> TransactionRecord | None:
    if req.idempotency_key is not None:
        found = uow.transactions.find_by_key(req.merchant_id, req.terminal_id,
                                             req.idempotency_key)
        if found is not None:
            return found
    if req.stan is not None:
        batch = req.batch_no
        if batch is None:
            open_batch = uow.batches.open_batch(req.merchant_id, req.terminal_id)
            batch = open_batch.batch_no if open_batch else None
        if batch is not None:
            return uow.transactions.find_by_trace(req.merchant_id, req.terminal_id, batch,
                                                  req.stan)
    return None


def _batch_and_stan(uow: UnitOfWork, req: PaymentRequest, now: datetime) -> tuple[str, str]:
    """The batch and trace number of a new record: the next of the terminal's open batch,
    taken with the batch in one statement; or the terminal's own trace, which moves the
    batch's counter past it in the same one statement (a later record without a trace of
    its own never gets it again)."""
    if req.stan is None:
        if req.batch_no is None:
            taken = uow.batches.take_open_stan(req.merchant_id, req.terminal_id)
            if taken is not None:
                return taken[0], _stan_text(taken[1])
        batch_no = _batch_for(uow, req, now)
        return batch_no, _next_stan(uow, req, batch_no)
    stan = int(req.stan)
    found: str | None
    if req.batch_no is None:
        found = uow.batches.advance_open_stan(req.merchant_id, req.terminal_id, stan)
    elif uow.batches.advance_stan(req.merchant_id, req.terminal_id, req.batch_no, stan):
        found = req.batch_no
    else:
        found = None
    return found or _batch_for(uow, req, now, next_stan=stan + 1), req.stan


def _batch_for(uow: UnitOfWork, req: PaymentRequest, now: datetime,
               next_stan: int = 1) -> str:
    """The terminal's open batch, or a new one (its counter at ``next_stan``): the next
    number when the request names none, the named one when the terminal numbers its own
    batches (:attr:`PaymentRequest.own_batch_numbers`); anything else is refused."""
    if req.batch_no is None:
        open_batch = uow.batches.open_batch(req.merchant_id, req.terminal_id)
        if open_batch is not None:
            return open_batch.batch_no
        latest = uow.batches.latest(req.merchant_id, req.terminal_id)
        number = f"{int(latest.batch_no) % 999999 + 1:06d}" if latest else FIRST_BATCH_NO
        uow.batches.add(req.merchant_id, req.terminal_id, number, now, next_stan)
        return number
    known = uow.batches.get(req.merchant_id, req.terminal_id, req.batch_no)
    if not req.own_batch_numbers and (known is None or known.status != "open"):
        raise Rejected(f"batch {req.batch_no} is not this terminal's open batch: leave "
                       "batch_no out (the host numbers batches)", RC.OPERATION_ERROR,
                       ErrorCode.BATCH_NOT_OPEN)
    if known is None:
        uow.batches.add(req.merchant_id, req.terminal_id, req.batch_no, now, next_stan)
    elif known.status != "open":
        raise Rejected(f"batch {req.batch_no} is closed: settle and start the next batch",
                       RC.OPERATION_ERROR, ErrorCode.INVALID_STATE)
    return req.batch_no


_SAME_TERMINAL_ONLY = frozenset({TxnType.VOID, TxnType.COMPLETION_VOID})


def _resolve_original(uow: UnitOfWork, req: PaymentRequest) -> TransactionRecord | None:
    """The original a follow-up names: by id, by trace (in the named, else the open or the
    latest batch of this terminal) or by RRN. Voids only see their own terminal's records."""
    ref = req.original
    if ref is None:
        return None
    found: TransactionRecord | None = None
    if ref.txn_id is not None:
        found = uow.transactions.get(req.merchant_id, ref.txn_id)
    elif ref.stan is not None:
        batch = ref.batch_no
        if batch is None:
            current = (uow.batches.open_batch(req.merchant_id, req.terminal_id)
                       or uow.batches.latest(req.merchant_id, req.terminal_id))
            batch = current.batch_no if current else None
        if batch is not None:
            found = uow.transactions.find_by_trace(req.merchant_id, req.terminal_id, batch,
                                                   ref.stan)
    if found is None and ref.rrn is not None:
        found = uow.transactions.find_by_rrn(req.merchant_id, ref.rrn)
    if found is None:
        return None
    if req.txn_type in _SAME_TERMINAL_ONLY and found.terminal_id != req.terminal_id:
        return None
    return uow.transactions.get(req.merchant_id, found.txn_id, for_update=True)


@dataclass(frozen=True, slots=True)
class _Decline:
    code: ResponseCode
    reason: str
    message: str


def _decide(uow: UnitOfWork, req: PaymentRequest, rules: PaymentRules,
            merchant_status: MerchantStatus, terminal_status: TerminalStatus,
            original: TransactionRecord | None,
            card: CardRef | None, today: date) -> tm.Permission | _Decline | None:
    """Step 3: the business rules. None means "go to the channel" with the request as is.
    Amount limits (the merchant's per-sale limit among them) are risk rules, checked next."""
    txn_type = tm.TxnType(req.txn_type)
    if merchant_status is not MerchantStatus.ACTIVE:
        return _Decline(RC.INVALID_MERCHANT, "merchant_not_active",
                        f"merchant is {merchant_status}")
    if terminal_status is not TerminalStatus.ACTIVE:
        return _Decline(RC.NOT_PERMITTED_TO_TERMINAL, "terminal_not_active",
                        f"terminal is {terminal_status}")
    if rules.allowed_txn_types is not None and txn_type.value not in rules.allowed_txn_types:
        return _Decline(RC.NOT_PERMITTED_TO_TERMINAL, "type_not_allowed",
                        f"{txn_type} is not enabled for this merchant")
    kind = card.kind if card is not None else (
        original.card_kind if original else None)
    if rules.allowed_card_kinds is not None and kind is not None and \
            str(kind) not in rules.allowed_card_kinds:
        return _Decline(RC.NOT_PERMITTED_TO_CARDHOLDER, "card_kind_not_allowed",
                        f"{kind} cards are not accepted by this merchant")
    if req.card is not None and req.card.expiry is not None and \
            Expiry.parse(req.card.expiry).is_expired_on(today):
        return _Decline(RC.EXPIRED_CARD, "card_expired", "the card has expired")
    if txn_type not in _HAS_ORIGINAL:
        return None
    if original is not None and card is not None and original.card_token and \
            card.token != original.card_token:
        return _Decline(RC.ORIGINAL_NOT_FOUND, "card_mismatch",
                        "the card does not match the original transaction")
    decision = _state_machine_check(uow, txn_type, req, original, today,
                                    rules.completion_ratio_max)
    if isinstance(decision, tm.Permission):
        decision = _in_flight_conflict(uow, txn_type, original) or decision
    if isinstance(decision, tm.Refusal):
        return _Decline(decision.code, decision.reason.value,
                        decision.detail or describe(decision.code).english)
    return decision


def _state_machine_check(uow: UnitOfWork, txn_type: tm.TxnType, req: PaymentRequest,
                         original: TransactionRecord | None, today: date,
                         ratio: str) -> tm.Decision:
    snapshot = _snapshot(original) if original else None
    if txn_type in (TxnType.VOID, TxnType.COMPLETION_VOID):
        batch_open = original is not None and _batch_open(uow, original)
        check = tm.can_void if txn_type is TxnType.VOID else tm.can_void_completion
        return check(snapshot, batch_open, req.amount)
    if txn_type is TxnType.REFUND:
        assert req.amount is not None
        in_flight = sum(c.amount_minor for c in _children(uow, original)
                        if c.txn_type == TxnType.REFUND and c.status in ("approved", "pending"))
        return tm.can_refund(snapshot, req.amount, Money(in_flight, req.amount.currency))
    if txn_type is TxnType.COMPLETION:
        assert req.amount is not None
        try:
            max_ratio = Decimal(ratio)
        except InvalidOperation:
            max_ratio = tm.COMPLETION_RATIO_MAX_DEFAULT
        return tm.can_complete(snapshot, req.amount, today, max_ratio)
    return tm.can_cancel_preauth(snapshot, today, req.amount)


def _in_flight_conflict(uow: UnitOfWork, txn_type: tm.TxnType,
                        original: TransactionRecord | None) -> tm.Refusal | None:
    """Refuse an operation that a pending operation on the same original could contradict.

    The state machine sees the original as it is *now*; an operation still waiting for the
    channel has not changed it yet. Without this check two voids (or a void and a refund, a
    completion and a cancel) could both be sent and both be paid back by the issuer before
    one is found late and reversed. Refunds among themselves are safe: ``can_refund`` counts
    the pending ones. The original is locked (``_resolve_original``), so this check and the
    insert of the new pending row are atomic.
    """
    busy = {tm.TxnType(c.txn_type) for c in _children(uow, original)
            if c.status == TxnStatus.PENDING.value}
    if txn_type is TxnType.REFUND:
        busy -= {TxnType.REFUND}
    if not busy:
        return None
    return tm.Refusal(tm.RefusalReason.STATE_CONFLICT,
                      f"a {'/'.join(sorted(busy))} of the original is still waiting for the "
                      "issuer; retry when it is answered")


def _children(uow: UnitOfWork, original: TransactionRecord | None) -> list[TransactionRecord]:
    if original is None:
        return []
    return uow.transactions.children(original.merchant_id, original.txn_id)


def _batch_open(uow: UnitOfWork, record: TransactionRecord) -> bool:
    batch = uow.batches.get(record.merchant_id, record.terminal_id, record.batch_no)
    return batch is not None and batch.status == "open"


def _next_stan(uow: UnitOfWork, req: PaymentRequest, batch_no: str) -> str:
    return _stan_text(uow.batches.take_stan(req.merchant_id, req.terminal_id, batch_no))


def _stan_text(taken: int) -> str:
    return f"{(taken - 1) % 999_999 + 1:06d}"  # 000001..999999, then round again


def _new_rrn() -> str:
    return f"{secrets.randbelow(10**12):012d}"


def _channel(ctx: ServiceContext) -> Channel:
    if ctx.channel is None:
        raise AutosettleError("no channel is configured", ErrorCode.UNAVAILABLE)
    return ctx.channel


# -- the channel and its answer --------------------------------------------------------------

def _send(ctx: ServiceContext, prepared: _Prepared, req: PaymentRequest) -> PaymentResult:
    record = prepared.record
    channel = _channel(ctx)
    request = ChannelRequest(
        reference=record.txn_id, txn_type=record.txn_type,
        amount=Money(record.amount_minor, currency(record.currency)),
        merchant_id=record.merchant_id, terminal_id=record.terminal_id,
        business_date=record.business_date,
        pan=req.card.pan if req.card else None,
        expiry=req.card.expiry if req.card else None,
        pin=req.card.pin if req.card else None,
        original_reference=record.original_txn_id,
    )
    try:
        answer = call_with_timeout(lambda: channel.authorize(request),
                                   ctx.settings.channel_timeout_s)
    except ChannelTimeout:
        return _give_up(ctx, record, RC.ISSUER_TIMEOUT, reverse_upstream=True)
    except ChannelError:
        return _give_up(ctx, record, RC.ISSUER_UNAVAILABLE, reverse_upstream=False)
    return _apply_answer(ctx, record, answer, prepared.terms, prepared.hold)


def _apply_answer(ctx: ServiceContext, pending: TransactionRecord, answer: ChannelAnswer,
                  terms: settlement_items.ItemTerms | None = None,
                  hold: bool = False) -> PaymentResult:
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        final = _apply_to_pending(ctx, uow, pending, answer, now, terms, hold)
        if final is not None:
            return replace(_answer_of(final), balance_minor=answer.balance_minor)
        record = _locked(uow, pending)
        chain = _chain(uow, record)
        snapshot = _snapshot(record)
        if answer.response_code is RC.APPROVED:
            step = tm.approve(snapshot, [_snapshot(c) for c in chain])
        else:
            step = tm.decline(snapshot)
        if isinstance(step, tm.Refusal):
            final = _refuse_answer(ctx, uow, record, step, answer, now)
        else:
            final = _accept_answer(ctx, uow, record, chain, step, answer, now,
                                   terms, hold=hold) or _reload(uow, record)
    if isinstance(step, tm.Refusal):
        if answer.response_code is RC.APPROVED:
            # At once rather than at the next run of the queue: until then the cardholder's
            # money would stay moved at the issuer.
            reversal_queue.process_reversals(ctx, only=(final.merchant_id, final.txn_id))
        return _answer_of(final)
    return replace(_answer_of(final), balance_minor=answer.balance_minor)


def _apply_to_pending(ctx: ServiceContext, uow: UnitOfWork, pending: TransactionRecord,
                      answer: ChannelAnswer, now: datetime,
                      terms: settlement_items.ItemTerms | None,
                      hold: bool = False) -> TransactionRecord | None:
    """The usual case in one statement fewer: a record with no originals (a sale, a
    pre-authorization, a balance inquiry) that is still exactly as we inserted it, pending.

    The state machine runs on that record as inserted, and the UPDATE applies its step only
    if the row is still pending (checked under the row lock, in the same statement); nothing
    but a status change (a reversal, recovery) touches a pending record meanwhile. None: the
    row changed, and the caller takes the general path (lock, re-read, decide).
    """
    if tm.CHAIN_DEPTH[tm.TxnType(pending.txn_type)] or \
            pending.status != TxnStatus.PENDING.value:
        return None
    snapshot = _snapshot(pending)
    step = tm.approve(snapshot, []) if answer.response_code is RC.APPROVED \
        else tm.decline(snapshot)
    if isinstance(step, tm.Refusal):
        return None
    return _accept_answer(ctx, uow, pending, (), step, answer, now, terms,
                          if_status=TxnStatus.PENDING.value, hold=hold)


def _refuse_answer(ctx: ServiceContext, uow: UnitOfWork, record: TransactionRecord,
                   step: tm.Refusal, answer: ChannelAnswer,
                   now: datetime) -> TransactionRecord:
    """The answer cannot be applied (the record or its original changed meanwhile)."""
    if answer.response_code is RC.APPROVED:
        # Approved upstream, but our record was reversed (or its original changed)
        # meanwhile: the channel must give the money back.
        uow.reversals.enqueue(record.merchant_id, record.txn_id, record.channel, "06", now)
    if record.status == TxnStatus.PENDING.value:
        uow.transactions.update(record.merchant_id, record.txn_id,
                                status=TxnStatus.DECLINED.value, response_code=step.code.value,
                                refusal_reason=step.reason.value, answered_at=now,
                                updated_at=now)
        if ctx.settings.risk_enabled:
            risk.on_unanswered(uow, record)
    return _reload(uow, record)


def _accept_answer(ctx: ServiceContext, uow: UnitOfWork, record: TransactionRecord,
                   chain: Sequence[TransactionRecord], step: tm.Transition,
                   answer: ChannelAnswer, now: datetime,
                   terms: settlement_items.ItemTerms | None,
                   if_status: str | None = None, hold: bool = False) -> TransactionRecord | None:
    """Apply the channel's approval or decline: the record, its originals, the ledger.

    With ``if_status``: only if the record's status is still that (else None, nothing done).
    """
    code = answer.response_code
    values: dict[str, Any] = dict(
        status=step.txn.status.value, response_code=code.value,
        auth_code=(answer.auth_code or _auth_code()) if code is RC.APPROVED else None,
        channel_ref=answer.channel_ref,
        refusal_reason=None if code is RC.APPROVED else "issuer_declined",
        answered_at=now, updated_at=now)
    updated: TransactionRecord | None
    if if_status is None:
        updated = uow.transactions.update_returning(record.merchant_id, record.txn_id,
                                                    **values)
    elif uow.transactions.update_if(record.merchant_id, record.txn_id, if_status, **values):
        updated = replace(record, **values)  # the row was ``record``: now it is this
    else:
        return None
    if code is RC.APPROVED:  # a decline leaves the originals as they were (step.chain is ())
        _save_chain(uow, chain, step.chain, now)
        _post_events(ctx, uow, updated or record, chain, step.events, terms, held=hold)
    elif ctx.settings.risk_enabled:
        risk.on_unanswered(uow, record)  # the room a declined sale took is free again
    # The originals and the ledger are other rows: the UPDATE's RETURNING is the final record.
    return updated or _reload(uow, record)


def _give_up(ctx: ServiceContext, pending: TransactionRecord, code: ResponseCode,
             reverse_upstream: bool) -> PaymentResult:
    """No usable answer: reverse our record; queue a reversal for the channel if it may
    have acted (a timeout), so the cardholder is never charged for a failed sale."""
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        record = _locked(uow, pending)
        if record.status != TxnStatus.PENDING.value:
            # Answered (or reversed) meanwhile, e.g. recovery racing the request's own
            # process: that answer stands, and reversing upstream would undo an approval.
            return _answer_of(record)
        chain = _chain(uow, record)
        step = tm.reverse(_snapshot(record), [_snapshot(c) for c in chain])
        if isinstance(step, tm.Transition):
            uow.transactions.update(record.merchant_id, record.txn_id,
                                    status=step.txn.status.value, response_code=code.value,
                                    refusal_reason="channel_timeout" if reverse_upstream
                                    else "channel_unavailable",
                                    answered_at=now, updated_at=now)
            if ctx.settings.risk_enabled:
                risk.on_unanswered(uow, record)
        if reverse_upstream:
            uow.reversals.enqueue(record.merchant_id, record.txn_id, record.channel, "98", now)
        final = _reload(uow, record)
    if reverse_upstream:
        reversal_queue.process_reversals(ctx, only=(final.merchant_id, final.txn_id))
    return replace(_answer_of(final), response_code=code, message=describe(code).english)


def _locked(uow: UnitOfWork, record: TransactionRecord) -> TransactionRecord:
    found = uow.transactions.get(record.merchant_id, record.txn_id, for_update=True)
    if found is None:
        raise AutosettleError(f"transaction {record.txn_id} vanished", ErrorCode.INTERNAL)
    return found


def _reload(uow: UnitOfWork, record: TransactionRecord) -> TransactionRecord:
    return _locked(uow, record)


def _chain(uow: UnitOfWork, record: TransactionRecord) -> list[TransactionRecord]:
    """The ancestors the state machine needs (original, and its original for some types)."""
    chain: list[TransactionRecord] = []
    current = record
    for _ in range(tm.CHAIN_DEPTH[tm.TxnType(record.txn_type)]):
        if current.original_txn_id is None:
            break
        parent = uow.transactions.get(current.merchant_id, current.original_txn_id,
                                      for_update=True)
        if parent is None:
            break
        chain.append(parent)
        current = parent
    return chain


def _save_chain(uow: UnitOfWork, before: Sequence[TransactionRecord],
                after: Sequence[tm.Transaction], now: datetime) -> None:
    for old, new in zip(before, after, strict=True):
        if old.status != new.status.value or old.refunded_minor != new.refunded.amount_minor:
            uow.transactions.update(old.merchant_id, old.txn_id, status=new.status.value,
                                    refunded_minor=new.refunded.amount_minor, updated_at=now)


def _snapshot(record: TransactionRecord) -> tm.Transaction:
    cur = currency(record.currency)
    return tm.Transaction(
        id=record.txn_id, type=tm.TxnType(record.txn_type), status=TxnStatus(record.status),
        amount=Money(record.amount_minor, cur), refunded=Money(record.refunded_minor, cur),
        business_date=record.business_date, batch_no=record.batch_no,
        original_id=record.original_txn_id, expires_on=record.expires_on)


def _auth_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def _answer_of(record: TransactionRecord, replayed: bool = False) -> PaymentResult:
    if record.response_code is None:
        code = RC.SYSTEM_MALFUNCTION
        message = "the original request is still in progress; retry"
    else:
        code = RC(record.response_code)
        message = describe(code).english
    return PaymentResult(code, record, message, replayed=replayed)


# -- ledger ------------------------------------------------------------------------------------

def _post_events(ctx: ServiceContext, uow: UnitOfWork, record: TransactionRecord,
                 chain: Sequence[TransactionRecord], events: Sequence[tm.Event],
                 terms: settlement_items.ItemTerms | None = None, held: bool = False) -> None:
    """Post each event's entry (:mod:`autosettle.domain.payment_postings`) and record the
    settlement items (``held``: on risk review); reads only what a mapping needs (the hold,
    a reversed message's lines). Voids, refunds and reversals give risk counters room back."""
    by_id = {r.txn_id: r for r in (record, *chain)}
    now = ctx.now()
    for event in events:
        hold: Money | None = None
        posted: list[Line] = []
        if event.kind is tm.EventKind.HOLD_CAPTURED:
            hold = Money(by_id[event.target_id].amount_minor, event.amount.currency)
        elif event.kind is tm.EventKind.REVERSED:
            posted = [Line(Account.parse(row.account_code),
                           Money(row.balance_minor, currency(row.currency)))
                      for row in uow.ledger.net_lines_for_reference(event.txn_id)]
        entry = postings.posting(event, record.txn_type, record.merchant_id, hold, posted)
        if entry is not None:
            uow.ledger.post(entry, now)
    settlement_items.record_items(uow, record, chain, events, now, terms, held=held)
    if ctx.settings.risk_enabled and events:
        risk.on_events(uow, record, chain, events)


def wait_for_answer(ctx: ServiceContext, merchant_id: str, txn_id: str,
                    timeout_s: float) -> TransactionRecord | None:
    """Poll until a record has its answer (used by replays of an in-flight request)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with ctx.db.unit_of_work() as uow:
            record = uow.transactions.get(merchant_id, txn_id)
        if record is None or record.response_code is not None or time.monotonic() > deadline:
            return record
        time.sleep(REPLAY_WAIT_POLL_S)

