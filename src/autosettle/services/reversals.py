"""Reversal (冲正) asked for by a terminal or a cash register, and recovery after a crash.

A reversal undoes a message as if it had never been approved (the state machine's
:func:`~autosettle.domain.transactions.reverse`): our record, its originals and the ledger in
one transaction, and a reversal queued for the channel (:mod:`reversal_queue`, store and
forward) so the money moves back there too. A reversal that overtakes its original leaves a
*tombstone* on the trace. Recovery reverses records a crash left pending.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

from autosettle.domain import transactions as tm
from autosettle.domain.calendar import business_date
from autosettle.domain.errors import AlreadyExists, ErrorCode
from autosettle.domain.payment_records import TransactionRecord
from autosettle.domain.response_codes import ResponseCode
from autosettle.services import risk
from autosettle.services.context import ServiceContext
from autosettle.services.payments import (
    FIRST_BATCH_NO,
    STUCK_GRACE_S,
    OriginalRef,
    PaymentRequest,
    PaymentResult,
    _answer_of,
    _chain,
    _channel,
    _give_up,
    _new_rrn,
    _post_events,
    _rejected,
    _reload,
    _resolve_original,
    _save_chain,
    _snapshot,
)
from autosettle.services.reversal_queue import (
    REVERSAL_BATCH_MAX,
    REVERSAL_RETRY_BASE_S,
    REVERSAL_RETRY_MAX_S,
    ReversalRun,
    process_reversals,
)
from autosettle.store.uow import UnitOfWork

RC = ResponseCode
TxnType = tm.TxnType
TxnStatus = tm.TxnStatus

__all__ = [
    "REVERSAL_BATCH_MAX", "REVERSAL_RETRY_BASE_S", "REVERSAL_RETRY_MAX_S", "STUCK_GRACE_S",
    "TOMBSTONE_FINGERPRINT", "ReversalRun", "mark_reversed_before_seen", "process_reversals",
    "recover_stuck", "reverse",
]


def reverse(ctx: ServiceContext, merchant_id: str, terminal_id: str, original: OriginalRef,
            reason: str = "06", txn_type: tm.TxnType = TxnType.SALE) -> PaymentResult:
    """A reversal (冲正) asked for by the terminal: undo the original as if it never was.

    Idempotent: reversing an unknown or already reversed transaction is acknowledged (00).
    The channel is told as well (store and forward), so money moves back there too.

    A reversal that overtakes its original (named by trace) leaves a *tombstone* on that
    trace: when the original arrives later it is a duplicate of the tombstone and is refused
    (94), so it can never move money the terminal has already reversed.
    """
    try:
        return _reverse(ctx, merchant_id, terminal_id, original, reason, txn_type)
    except AlreadyExists:  # the original landed while we wrote its tombstone: reverse it
        return _reverse(ctx, merchant_id, terminal_id, original, reason, txn_type)


def _reverse(ctx: ServiceContext, merchant_id: str, terminal_id: str, original: OriginalRef,
             reason: str, txn_type: tm.TxnType) -> PaymentResult:
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        if uow.terminals.get(merchant_id, terminal_id) is None:
            return _rejected("terminal not registered", RC.TERMINAL_NOT_REGISTERED,
                             ErrorCode.NOT_FOUND)
        record = _resolve_original(uow, PaymentRequest(
            TxnType.SALE, merchant_id, terminal_id, original=original))
        if record is None and original.txn_id is None and original.stan is not None:
            _tombstone(ctx, uow, merchant_id, terminal_id, original, reason, txn_type)
            return PaymentResult(RC.APPROVED, None, "nothing to reverse yet: the original, "
                                 "if it arrives, will be refused")
        if record is None or record.terminal_id != terminal_id:
            return PaymentResult(RC.APPROVED, None, "nothing to reverse")
        chain = _chain(uow, record)
        step = tm.reverse(_snapshot(record), [_snapshot(c) for c in chain])
        if isinstance(step, tm.AlreadyReversed):
            return replace(_answer_of(record), response_code=RC.APPROVED,
                           message=f"nothing to reverse: {step.why.value}")
        if isinstance(step, tm.Refusal):
            return PaymentResult(step.code, record, step.detail or step.reason.value)
        uow.transactions.update(record.merchant_id, record.txn_id, status=step.txn.status.value,
                                refusal_reason=f"reversed:{reason}", updated_at=now)
        if record.status == TxnStatus.PENDING.value and ctx.settings.risk_enabled:
            risk.on_unanswered(uow, record)  # its room in the risk counters is free again
        _save_chain(uow, chain, step.chain, now)
        _post_events(ctx, uow, record, chain, step.events)
        uow.reversals.enqueue(record.merchant_id, record.txn_id, record.channel, reason, now)
        final = _reload(uow, record)
    process_reversals(ctx, only=(final.merchant_id, final.txn_id))
    return PaymentResult(RC.APPROVED, final, "reversed")


TOMBSTONE_FINGERPRINT = "reversed-before-seen"


def mark_reversed_before_seen(ctx: ServiceContext, merchant_id: str, terminal_id: str,
                              batch_no: str, stan: str, reason: str = "06",
                              txn_type: tm.TxnType = TxnType.SALE) -> None:
    """Leave a tombstone on a trace nobody has used yet (see :func:`reverse`)."""
    try:
        with ctx.db.unit_of_work() as uow:
            _tombstone(ctx, uow, merchant_id, terminal_id,
                       OriginalRef(batch_no=batch_no, stan=stan), reason, txn_type)
    except AlreadyExists:
        pass  # the original got there first: it exists now, nothing to mark


def _tombstone(ctx: ServiceContext, uow: UnitOfWork, merchant_id: str, terminal_id: str,
               original: OriginalRef, reason: str, txn_type: tm.TxnType) -> None:
    """Mark a trace as reversed before its original was seen (moves nothing)."""
    assert original.stan is not None
    batch = original.batch_no
    if batch is None:
        current = (uow.batches.open_batch(merchant_id, terminal_id)
                   or uow.batches.latest(merchant_id, terminal_id))
        batch = current.batch_no if current else FIRST_BATCH_NO
    if uow.transactions.find_by_trace(merchant_id, terminal_id, batch, original.stan):
        return
    uow.batches.advance_stan(merchant_id, terminal_id, batch, int(original.stan))
    merchant = uow.merchants.get(merchant_id)
    now = ctx.now()
    if tm.ORIGINAL_TYPES[tm.TxnType(txn_type)]:
        txn_type = TxnType.SALE  # a follow-up's record needs its original; none is known
    uow.transactions.add(TransactionRecord(
        merchant_id=merchant_id, txn_id=uuid.uuid4().hex, terminal_id=terminal_id,
        txn_type=tm.TxnType(txn_type), status=TxnStatus.REVERSED, amount_minor=0,
        currency=merchant.currency if merchant else "CNY", refunded_minor=0,
        original_txn_id=None, card_token=None, pan_masked=None, pan_last4=None,
        card_brand=None, card_kind=None, entry_mode=None, batch_no=batch, stan=original.stan,
        rrn=_new_rrn(), auth_code=None, response_code=RC.APPROVED.value,
        refusal_reason=f"reversed_before_seen:{reason}"[:40], channel=_channel(ctx).name,
        channel_ref=None, idempotency_key=None, request_fingerprint=TOMBSTONE_FINGERPRINT,
        business_date=business_date(now, ctx.settings.cutoff),
        expires_on=tm.preauth_expires_on(business_date(now, ctx.settings.cutoff))
        if tm.TxnType(txn_type) is TxnType.PREAUTH else None,
        created_at=now, updated_at=now, answered_at=now))


def recover_stuck(ctx: ServiceContext, limit: int = REVERSAL_BATCH_MAX) -> int:
    """After a crash: pending records older than the channel deadline are reversed, and a
    reversal queued for the channel (which may have acted). Returns how many."""
    cutoff = ctx.now() - timedelta(seconds=ctx.settings.channel_timeout_s + STUCK_GRACE_S)
    with ctx.db.unit_of_work() as uow:
        stuck = uow.transactions.stuck_pending(cutoff, limit)
    for record in stuck:
        _give_up(ctx, record, RC.ISSUER_TIMEOUT, reverse_upstream=True)
    return len(stuck)
