"""Card transactions and their state machine, as pure values and pure functions.

A :class:`Transaction` is a snapshot of one message-level record: a sale (消费), a void of a
sale (消费撤销), a refund (退货), a pre-authorization (预授权), its cancel (预授权撤销), its
completion (预授权完成), a void of a completion (预授权完成撤销) or a balance inquiry (余额查询).
Reversal (冲正) is an *operation* on one of these records, not a type of its own: a reversal
undoes the message it names as if it had never been approved, so it leaves no lifecycle of its
own (the service layer keeps its store-and-forward queue).

Two steps, TigerBeetle-style. Before a message goes to the channel a ``can_*`` function says
whether it may go, answering a :class:`Permission` (the record to create, ``pending``) or a
:class:`Refusal`. When the channel answers, :func:`approve` or :func:`decline` resolves the
pending record; :func:`reverse` undoes one. Each returns a :class:`Transition`: the records
after the step and the :class:`Event` values the service layer turns into ledger postings.
Effects on the original (a sale becoming ``voided``, a refund adding to ``refunded``) happen
on approval, never earlier, so a reversal of a pending message has nothing to undo.

Declines and refusals are values; only a broken invariant (a bug) raises.

>>> from datetime import date
>>> sale = new_transaction("s1", TxnType.SALE, Money(10000), date(2024, 5, 6), "000001")
>>> sale = approve(sale).txn
>>> sale.status, sale.refund_state
(<TxnStatus.APPROVED: 'approved'>, <RefundState.NONE: 'none'>)
>>> can_refund(sale, Money(10001), Money(0))  # doctest: +ELLIPSIS
Refusal(reason=<RefusalReason.REFUND_EXCEEDS_REMAINING: 'refund_exceeds_remaining'>, ...)
>>> ok = can_refund(sale, Money(2500), Money(0))
>>> refund = new_transaction("r1", ok.type, ok.amount, date(2024, 5, 7), "000002", ok.original_id)
>>> step = approve(refund, (sale,))
>>> step.chain[0].refunded.amount_minor, step.events[0].kind
(2500, <EventKind.REFUNDED: 'refunded'>)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Final, TypeAlias, assert_never

from autosettle.domain.errors import ErrorCode, ValidationError, require
from autosettle.domain.money import Money, apply_rate
from autosettle.domain.response_codes import ResponseCode

PREAUTH_VALIDITY_DAYS: Final = 30
"""A pre-authorization may be completed or cancelled up to this many days after its date."""

COMPLETION_RATIO_MAX_DEFAULT: Final = Decimal("1.15")
"""A completion may capture up to 115% of the authorized amount unless the merchant says less
(hotels and car rentals add incidentals); configurable per merchant."""


class TxnType(StrEnum):
    """What a transaction record is. Reversal is an operation on these, not a type."""

    SALE = "sale"
    VOID = "void"
    REFUND = "refund"
    PREAUTH = "preauth"
    PREAUTH_VOID = "preauth_void"
    COMPLETION = "completion"
    COMPLETION_VOID = "completion_void"
    BALANCE_INQUIRY = "balance_inquiry"


class TxnStatus(StrEnum):
    """Lifecycle status of one record. Refund progress is not a status: see RefundState."""

    PENDING = "pending"
    """Sent to the channel, no answer yet."""
    APPROVED = "approved"
    """Approved. A sale or completion is captured; a pre-authorization holds funds."""
    DECLINED = "declined"
    """Declined or refused; nothing moved. Terminal."""
    VOIDED = "voided"
    """A sale or completion voided (撤销); reopened only by a reversal of that void."""
    REVERSED = "reversed"
    """Reversed (冲正): as if never approved. Terminal."""
    COMPLETED = "completed"
    """A pre-authorization captured by a completion; reopened by undoing that completion."""
    CANCELLED = "cancelled"
    """A pre-authorization cancelled (预授权撤销); reopened only by a reversal of the cancel."""
    EXPIRED = "expired"
    """A pre-authorization whose validity lapsed; the hold is released. Terminal."""


TERMINAL_STATUSES: Final = frozenset({TxnStatus.DECLINED, TxnStatus.REVERSED, TxnStatus.EXPIRED})
"""Statuses no transition ever leaves."""


class RefundState(StrEnum):
    """How much of a captured amount has been refunded (derived from ``refunded``)."""

    NONE = "none"
    PARTIAL = "partial"
    FULL = "full"


class RefusalReason(StrEnum):
    """Why an operation was refused. Each maps to one response code in REFUSAL_CODES."""

    ORIGINAL_NOT_FOUND = "original_not_found"
    ORIGINAL_PENDING = "original_pending"
    ORIGINAL_DECLINED = "original_declined"
    ORIGINAL_REVERSED = "original_reversed"
    WRONG_TYPE = "wrong_type"
    ALREADY_VOIDED = "already_voided"
    ALREADY_REFUNDED = "already_refunded"
    BATCH_CLOSED = "batch_closed"
    INVALID_AMOUNT = "invalid_amount"
    AMOUNT_MISMATCH = "amount_mismatch"
    REFUND_EXCEEDS_REMAINING = "refund_exceeds_remaining"
    AMOUNT_OVER_COMPLETION_LIMIT = "amount_over_completion_limit"
    PREAUTH_EXPIRED = "preauth_expired"
    PREAUTH_NOT_EXPIRED = "preauth_not_expired"
    PREAUTH_CANCELLED = "preauth_cancelled"
    PREAUTH_COMPLETED = "preauth_completed"
    NOT_REVERSIBLE = "not_reversible"
    LATE_ANSWER = "late_answer"
    STATE_CONFLICT = "state_conflict"


_RC = ResponseCode
_RR = RefusalReason

REFUSAL_CODES: Final[Mapping[RefusalReason, ResponseCode]] = MappingProxyType({
    # 25: the original does not exist, or does not exist as an approved transaction.
    _RR.ORIGINAL_NOT_FOUND: _RC.ORIGINAL_NOT_FOUND,
    _RR.ORIGINAL_PENDING: _RC.ORIGINAL_NOT_FOUND,
    _RR.ORIGINAL_DECLINED: _RC.ORIGINAL_NOT_FOUND,
    _RR.ORIGINAL_REVERSED: _RC.ORIGINAL_NOT_FOUND,
    # 12: the original exists but this operation is not valid on it (any more).
    _RR.WRONG_TYPE: _RC.INVALID_TRANSACTION,
    _RR.ALREADY_VOIDED: _RC.INVALID_TRANSACTION,
    _RR.ALREADY_REFUNDED: _RC.INVALID_TRANSACTION,
    _RR.PREAUTH_NOT_EXPIRED: _RC.INVALID_TRANSACTION,
    _RR.PREAUTH_CANCELLED: _RC.INVALID_TRANSACTION,
    _RR.PREAUTH_COMPLETED: _RC.INVALID_TRANSACTION,
    _RR.NOT_REVERSIBLE: _RC.INVALID_TRANSACTION,
    _RR.STATE_CONFLICT: _RC.INVALID_TRANSACTION,
    # 22 reads "操作有误,或超出交易允许天数": the window for this operation has passed.
    _RR.BATCH_CLOSED: _RC.OPERATION_ERROR,
    _RR.PREAUTH_EXPIRED: _RC.OPERATION_ERROR,
    # 13 for a malformed amount (not positive, wrong currency); 61 for a well-formed amount
    # above what is left (交易金额超限), which tells the cashier a smaller amount would pass.
    _RR.INVALID_AMOUNT: _RC.INVALID_AMOUNT,
    _RR.REFUND_EXCEEDS_REMAINING: _RC.EXCEEDS_AMOUNT_LIMIT,
    _RR.AMOUNT_OVER_COMPLETION_LIMIT: _RC.EXCEEDS_AMOUNT_LIMIT,
    # 64: a void or cancel must carry exactly the original amount.
    _RR.AMOUNT_MISMATCH: _RC.AMOUNT_MISMATCH,
    # 68: the channel answered after the record was resolved; the host reverses upstream.
    _RR.LATE_ANSWER: _RC.RESPONSE_TOO_LATE,
})
"""The response code (field 39) answered for each refusal; a test proves it is complete."""


class NoEffect(StrEnum):
    """Why a reversal was acknowledged without changing anything (idempotent reversal)."""

    ALREADY_REVERSED = "already_reversed"
    UNKNOWN_TRANSACTION = "unknown_transaction"
    NOTHING_MOVED = "nothing_moved"
    """The record was declined: no money moved, nothing to undo."""
    ALREADY_UNDONE = "already_undone"
    """Voided, cancelled or expired: its money or hold is already returned."""


class EventKind(StrEnum):
    """What a step did to money or holds; the service layer maps each to ledger postings."""

    CAPTURED = "captured"
    """A sale captured ``amount`` on itself."""
    HOLD_PLACED = "hold_placed"
    """A hold of ``amount`` placed (or restored) on the pre-authorization ``target_id``."""
    HOLD_CAPTURED = "hold_captured"
    """A completion captured ``amount`` on itself and released the whole hold of
    ``target_id`` (the amount may exceed the hold, up to the completion limit)."""
    HOLD_RELEASED = "hold_released"
    """The hold of ``amount`` on ``target_id`` released (cancel or expiry)."""
    VOIDED = "voided"
    """The capture of ``amount`` on ``target_id`` returned by a void."""
    REFUNDED = "refunded"
    """``amount`` of the capture on ``target_id`` returned by a refund."""
    REVERSED = "reversed"
    """Every posting made for ``txn_id`` undone (post their exact negation)."""


# -- the transition map -----------------------------------------------------------------------

_P, _A, _D = TxnStatus.PENDING, TxnStatus.APPROVED, TxnStatus.DECLINED
_V, _R = TxnStatus.VOIDED, TxnStatus.REVERSED
_CO, _CA, _EX = TxnStatus.COMPLETED, TxnStatus.CANCELLED, TxnStatus.EXPIRED

_ANSWERED: Final = frozenset({(_P, _A), (_P, _D)})
_REVERSIBLE: Final = _ANSWERED | {(_P, _R), (_A, _R)}
_VOIDABLE: Final = _REVERSIBLE | {(_A, _V), (_V, _A)}
_PREAUTH: Final = _REVERSIBLE | {(_A, _CA), (_CA, _A), (_A, _CO), (_CO, _A), (_A, _EX)}

LEGAL_MOVES: Final[Mapping[TxnType, frozenset[tuple[TxnStatus, TxnStatus]]]] = (
    MappingProxyType({
        TxnType.SALE: _VOIDABLE,
        TxnType.COMPLETION: _VOIDABLE,
        TxnType.PREAUTH: _PREAUTH,
        TxnType.VOID: _REVERSIBLE,
        TxnType.REFUND: _REVERSIBLE,
        TxnType.PREAUTH_VOID: _REVERSIBLE,
        TxnType.COMPLETION_VOID: _REVERSIBLE,
        TxnType.BALANCE_INQUIRY: _ANSWERED,
    })
)
"""Every (before, after) status change a record of each type may make; nothing else."""

STATUSES: Final[Mapping[TxnType, frozenset[TxnStatus]]] = MappingProxyType({
    kind: frozenset({_P} | {s for move in moves for s in move})
    for kind, moves in LEGAL_MOVES.items()
})
"""The statuses a record of each type can have."""

REVERSIBLE_TYPES: Final = frozenset(k for k, moves in LEGAL_MOVES.items() if (_A, _R) in moves)
"""Types a reversal (冲正) applies to: all but the balance inquiry, which moves no money."""

ORIGINAL_TYPES: Final[Mapping[TxnType, frozenset[TxnType]]] = MappingProxyType({
    TxnType.SALE: frozenset(),
    TxnType.PREAUTH: frozenset(),
    TxnType.BALANCE_INQUIRY: frozenset(),
    TxnType.VOID: frozenset({TxnType.SALE}),
    TxnType.REFUND: frozenset({TxnType.SALE, TxnType.COMPLETION}),
    TxnType.PREAUTH_VOID: frozenset({TxnType.PREAUTH}),
    TxnType.COMPLETION: frozenset({TxnType.PREAUTH}),
    TxnType.COMPLETION_VOID: frozenset({TxnType.COMPLETION}),
})
"""For each type, the types of original it may refer to (empty: it has no original)."""

CHAIN_DEPTH: Final[Mapping[TxnType, int]] = MappingProxyType({
    TxnType.SALE: 0,
    TxnType.PREAUTH: 0,
    TxnType.BALANCE_INQUIRY: 0,
    TxnType.VOID: 1,
    TxnType.REFUND: 1,
    TxnType.PREAUTH_VOID: 1,
    TxnType.COMPLETION: 1,
    TxnType.COMPLETION_VOID: 2,  # the completion, then its pre-authorization
})
"""How many ancestors (original, original's original) approve and reverse need."""


@dataclass(frozen=True, slots=True)
class _Shift:
    """On approval the ancestor at ``level`` moves ``before`` → ``after``; reversal undoes it."""

    level: int
    before: TxnStatus
    after: TxnStatus


_SHIFTS: Final[Mapping[TxnType, tuple[_Shift, ...]]] = MappingProxyType({
    TxnType.SALE: (),
    TxnType.PREAUTH: (),
    TxnType.BALANCE_INQUIRY: (),
    TxnType.VOID: (_Shift(0, _A, _V),),
    TxnType.REFUND: (_Shift(0, _A, _A),),  # stays approved; its ``refunded`` grows
    TxnType.PREAUTH_VOID: (_Shift(0, _A, _CA),),
    TxnType.COMPLETION: (_Shift(0, _A, _CO),),
    TxnType.COMPLETION_VOID: (_Shift(0, _A, _V), _Shift(1, _CO, _A)),  # the hold comes back
})

_STATUS_REASON: Final[Mapping[TxnStatus, RefusalReason]] = MappingProxyType({
    _P: RefusalReason.ORIGINAL_PENDING,
    _A: RefusalReason.STATE_CONFLICT,  # only reached when records disagree with each other
    _D: RefusalReason.ORIGINAL_DECLINED,
    _V: RefusalReason.ALREADY_VOIDED,
    _R: RefusalReason.ORIGINAL_REVERSED,
    _CO: RefusalReason.PREAUTH_COMPLETED,
    _CA: RefusalReason.PREAUTH_CANCELLED,
    _EX: RefusalReason.PREAUTH_EXPIRED,
})
"""Why a record in this status cannot take an operation that needs a different status."""

_REVERSAL: Final[Mapping[TxnStatus, NoEffect | RefusalReason | None]] = MappingProxyType({
    _P: None,  # reverse: nothing was applied yet
    _A: None,  # reverse: undo what the approval did
    _D: NoEffect.NOTHING_MOVED,
    _R: NoEffect.ALREADY_REVERSED,
    _V: NoEffect.ALREADY_UNDONE,
    _CA: NoEffect.ALREADY_UNDONE,
    _EX: NoEffect.ALREADY_UNDONE,
    _CO: RefusalReason.PREAUTH_COMPLETED,  # reverse the completion instead
})
"""What a reversal of a record in each status does (None: it reverses)."""


# -- values -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Transaction:
    """A snapshot of one transaction record; every rule below reads and returns these.

    ``refunded`` is the sum of *approved* refunds of this record (sales and completions only).
    ``original_id`` names the record a void, refund, cancel or completion refers to; only a
    declined one may lack it (refused because the original it named is unknown). A declined
    record may also name an original of the wrong type (the reason it was refused): rules
    that follow ``original_id`` check the type (see :func:`reverse`).
    ``expires_on`` is the last day a pre-authorization can be completed or cancelled.
    """

    id: str
    type: TxnType
    status: TxnStatus
    amount: Money
    refunded: Money
    business_date: date
    batch_no: str
    original_id: str | None = None
    expires_on: date | None = None

    def __post_init__(self) -> None:
        require(self.status in STATUSES[self.type],
                f"{self.type} {self.id} cannot be {self.status}")
        require(self.refunded.currency == self.amount.currency,
                f"{self.id}: refunded and amount differ in currency")
        require(0 <= self.refunded.amount_minor <= self.amount.amount_minor,
                f"{self.id}: refunded {self.refunded} outside 0..{self.amount}")
        require(self.refunded.is_zero or (self.type in ORIGINAL_TYPES[TxnType.REFUND]
                                          and self.status is TxnStatus.APPROVED),
                f"{self.id}: only an approved sale or completion carries refunds")
        require(self.original_id is None if not ORIGINAL_TYPES[self.type]
                else self.original_id is not None or self.status is TxnStatus.DECLINED,
                f"{self.type} {self.id}: original_id {self.original_id!r} is wrong")
        require((self.expires_on is None) == (self.type is not TxnType.PREAUTH),
                f"{self.type} {self.id}: expires_on {self.expires_on!r} is wrong")

    @property
    def remaining(self) -> Money:
        """What can still be refunded: the amount less approved refunds."""
        return self.amount - self.refunded

    @property
    def refund_state(self) -> RefundState:
        """None, part or all of the amount refunded."""
        if self.refunded.is_zero:
            return RefundState.NONE
        return RefundState.FULL if self.refunded == self.amount else RefundState.PARTIAL

    @property
    def is_terminal(self) -> bool:
        """True when no transition will ever change this record again."""
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True, slots=True)
class Refusal:
    """An operation refused, with its reason; ``code`` is what the terminal is answered."""

    reason: RefusalReason
    detail: str = ""

    @property
    def code(self) -> ResponseCode:
        """The field 39 response code for this refusal."""
        return REFUSAL_CODES[self.reason]


@dataclass(frozen=True, slots=True)
class Permission:
    """The operation may go to the channel: create a pending record of ``type``."""

    type: TxnType
    amount: Money
    original_id: str


@dataclass(frozen=True, slots=True)
class Event:
    """One effect on money or holds. ``txn_id`` caused it; ``target_id`` is affected."""

    kind: EventKind
    txn_id: str
    target_id: str
    amount: Money


@dataclass(frozen=True, slots=True)
class Transition:
    """The result of a step: the record after it, its ancestors after it, and the events.

    ``chain`` has the same length and order as the chain passed in (empty when none was).
    """

    txn: Transaction
    chain: tuple[Transaction, ...]
    events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class AlreadyReversed:
    """A reversal acknowledged idempotently without changing anything (answered ``00``)."""

    txn_id: str | None
    why: NoEffect

    @property
    def code(self) -> ResponseCode:
        """Always approved: the terminal may delete its stored reversal."""
        return ResponseCode.APPROVED


Decision: TypeAlias = Permission | Refusal
"""The answer of every ``can_*`` function."""


# -- construction -----------------------------------------------------------------------------

def preauth_expires_on(business_date: date) -> date:
    """The last day a pre-authorization of ``business_date`` can be completed or cancelled."""
    return business_date + timedelta(days=PREAUTH_VALIDITY_DAYS)


def new_transaction(txn_id: str, txn_type: TxnType, amount: Money, business_date: date,
                    batch_no: str, original_id: str | None = None) -> Transaction:
    """A new pending record, ready to be sent to the channel.

    A pre-authorization gets ``expires_on`` from :func:`preauth_expires_on`.
    """
    expires_on = preauth_expires_on(business_date) if txn_type is TxnType.PREAUTH else None
    return Transaction(txn_id, txn_type, TxnStatus.PENDING, amount, Money.zero(amount.currency),
                       business_date, batch_no, original_id, expires_on)


def completion_limit(authorized: Money,
                     max_ratio: Decimal = COMPLETION_RATIO_MAX_DEFAULT) -> Money:
    """The largest completion of a pre-authorization of ``authorized``.

    Computed with :func:`~autosettle.domain.money.apply_rate` (one rounding, half up).

    >>> completion_limit(Money(10001)).amount_minor
    11501
    """
    if not isinstance(max_ratio, Decimal) or not max_ratio.is_finite() or max_ratio < 1:
        raise ValidationError(f"completion ratio must be a Decimal of at least 1, got "
                              f"{max_ratio!r}", ErrorCode.VALIDATION_FAILED)
    return apply_rate(authorized, max_ratio)


# -- checks before the channel ----------------------------------------------------------------

def can_void(original: Transaction | None, batch_open: bool,
             amount: Money | None = None) -> Decision:
    """May ``original`` (a sale) be voided (撤销)?

    ``batch_open`` says whether the original's terminal batch is still open (a void is only
    possible before settlement; afterwards the cashier refunds). ``amount``, when the
    terminal sent one, must equal the original amount.
    """
    target = _approved_original(original, TxnType.VOID)
    if isinstance(target, Refusal):
        return target
    return _check_void(target, TxnType.VOID, batch_open, amount)


def can_void_completion(completion: Transaction | None, batch_open: bool,
                        amount: Money | None = None) -> Decision:
    """May a completion be voided (预授权完成撤销)? Same rules as :func:`can_void`."""
    target = _approved_original(completion, TxnType.COMPLETION_VOID)
    if isinstance(target, Refusal):
        return target
    return _check_void(target, TxnType.COMPLETION_VOID, batch_open, amount)


def can_refund(original: Transaction | None, amount: Money, refunded_so_far: Money) -> Decision:
    """May ``amount`` of a sale or completion be refunded (退货)? Allowed after settlement.

    ``refunded_so_far`` is what the caller counted from the history: approved *and* in-flight
    refunds of the original. The larger of it and the snapshot's ``refunded`` is used, so a
    refund can never take the total over the original amount.
    """
    target = _approved_original(original, TxnType.REFUND)
    if isinstance(target, Refusal):
        return target
    bad = _bad_amount(amount, target)
    if bad is not None:
        return bad
    require(refunded_so_far.currency == target.amount.currency,
            "refunded_so_far is in another currency than the original")
    remaining = target.amount - max(refunded_so_far, target.refunded)
    if amount > remaining:
        return Refusal(RefusalReason.REFUND_EXCEEDS_REMAINING,
                       f"refund {amount} exceeds the remaining {remaining}")
    return Permission(TxnType.REFUND, amount, target.id)


def can_complete(preauth: Transaction | None, amount: Money, today: date,
                 max_ratio: Decimal = COMPLETION_RATIO_MAX_DEFAULT) -> Decision:
    """May a pre-authorization be completed (预授权完成) for ``amount`` on ``today``?

    Refused when expired, cancelled or already completed, or when ``amount`` exceeds
    :func:`completion_limit` (115% of the authorized amount unless ``max_ratio`` says other).
    """
    target = _approved_original(preauth, TxnType.COMPLETION)
    if isinstance(target, Refusal):
        return target
    if _lapsed(target, today):
        return Refusal(RefusalReason.PREAUTH_EXPIRED, f"{target.id} expired {target.expires_on}")
    bad = _bad_amount(amount, target)
    if bad is not None:
        return bad
    limit = completion_limit(target.amount, max_ratio)
    if amount > limit:
        return Refusal(RefusalReason.AMOUNT_OVER_COMPLETION_LIMIT,
                       f"completion {amount} exceeds the limit {limit}")
    return Permission(TxnType.COMPLETION, amount, target.id)


def can_cancel_preauth(preauth: Transaction | None, today: date,
                       amount: Money | None = None) -> Decision:
    """May a pre-authorization be cancelled (预授权撤销) on ``today``?

    ``amount``, when the terminal sent one, must equal the authorized amount.
    """
    target = _approved_original(preauth, TxnType.PREAUTH_VOID)
    if isinstance(target, Refusal):
        return target
    if _lapsed(target, today):
        return Refusal(RefusalReason.PREAUTH_EXPIRED, f"{target.id} expired {target.expires_on}")
    if amount is not None and amount != target.amount:
        return Refusal(RefusalReason.AMOUNT_MISMATCH, f"{amount} is not {target.amount}")
    return Permission(TxnType.PREAUTH_VOID, target.amount, target.id)


def _approved_original(original: Transaction | None,
                       operation: TxnType) -> Transaction | Refusal:
    """The original if it exists, has a type ``operation`` applies to and is approved."""
    if original is None:
        return Refusal(RefusalReason.ORIGINAL_NOT_FOUND)
    if original.type not in ORIGINAL_TYPES[operation]:
        return Refusal(RefusalReason.WRONG_TYPE, f"a {operation} cannot apply to a "
                                                 f"{original.type}")
    if original.status is not TxnStatus.APPROVED:
        return Refusal(_STATUS_REASON[original.status], f"{original.id} is {original.status}")
    return original


def _check_void(target: Transaction, kind: TxnType, batch_open: bool,
                amount: Money | None) -> Decision:
    if not batch_open:
        return Refusal(RefusalReason.BATCH_CLOSED, f"batch {target.batch_no} is closed")
    if not target.refunded.is_zero:
        return Refusal(RefusalReason.ALREADY_REFUNDED, f"{target.refunded} already refunded")
    if amount is not None and amount != target.amount:
        return Refusal(RefusalReason.AMOUNT_MISMATCH, f"{amount} is not {target.amount}")
    return Permission(kind, target.amount, target.id)


def _bad_amount(amount: Money, original: Transaction) -> Refusal | None:
    if amount.currency != original.amount.currency or amount.amount_minor <= 0:
        return Refusal(RefusalReason.INVALID_AMOUNT, f"{amount} is not a positive amount in "
                                                     f"{original.amount.currency.code}")
    return None


def _lapsed(preauth: Transaction, today: date) -> bool:
    return preauth.expires_on is not None and today > preauth.expires_on


# -- steps after the channel ------------------------------------------------------------------

def approve(txn: Transaction, chain: Sequence[Transaction] = ()) -> Transition | Refusal:
    """The channel approved the pending ``txn``: apply it.

    ``chain`` is the original and, for a completion void, the pre-authorization (see
    :data:`CHAIN_DEPTH`). Refused with ``late_answer`` when ``txn`` is no longer pending (for
    instance already reversed: the approval must not move money; the caller reverses it
    upstream), or with the original's reason when a concurrent step changed it first.
    """
    _require_chain(txn, chain)
    if txn.status is not TxnStatus.PENDING:
        return Refusal(RefusalReason.LATE_ANSWER, f"{txn.id} is already {txn.status}")
    after = _apply(txn, chain, undo=False)
    if isinstance(after, Refusal):
        return after
    return Transition(_move(txn, TxnStatus.APPROVED), after, _approval_events(txn, chain))


def decline(txn: Transaction) -> Transition | Refusal:
    """The channel declined the pending ``txn``: nothing moves."""
    if txn.status is not TxnStatus.PENDING:
        return Refusal(RefusalReason.LATE_ANSWER, f"{txn.id} is already {txn.status}")
    return Transition(_move(txn, TxnStatus.DECLINED), (), ())


def reverse(txn: Transaction | None,
            chain: Sequence[Transaction] = ()) -> Transition | AlreadyReversed | Refusal:
    """Reverse (冲正) ``txn``: undo it as if it had never been approved.

    Idempotent: an unknown, declined, already reversed, voided, cancelled or expired record is
    acknowledged with :class:`AlreadyReversed`, whatever ``chain`` holds (a declined record
    may have no original, or one of the wrong type: it moved nothing, so nothing of it is
    read). Refused for a balance inquiry, for a record with refunds (reverse the refunds
    first) and for a completed pre-authorization (reverse the completion instead).
    """
    if txn is None:
        return AlreadyReversed(None, NoEffect.UNKNOWN_TRANSACTION)
    if txn.type not in REVERSIBLE_TYPES:
        return Refusal(RefusalReason.NOT_REVERSIBLE, f"a {txn.type} cannot be reversed")
    plan = _REVERSAL[txn.status]
    if isinstance(plan, NoEffect):
        return AlreadyReversed(txn.id, plan)
    _require_chain(txn, chain)
    if isinstance(plan, RefusalReason):
        return Refusal(plan, f"{txn.id} is {txn.status}")
    if txn.status is TxnStatus.PENDING:
        return Transition(_move(txn, TxnStatus.REVERSED), tuple(chain), ())
    if not txn.refunded.is_zero:
        return Refusal(RefusalReason.ALREADY_REFUNDED, f"{txn.refunded} already refunded")
    after = _apply(txn, chain, undo=True)
    if isinstance(after, Refusal):
        return after
    event = Event(EventKind.REVERSED, txn.id, txn.id, txn.amount)
    return Transition(_move(txn, TxnStatus.REVERSED), after, (event,))


def expire(preauth: Transaction, today: date) -> Transition | Refusal:
    """Expire an approved pre-authorization whose validity lapsed before ``today``."""
    target = _approved_original(preauth, TxnType.COMPLETION)  # the types a completion takes
    if isinstance(target, Refusal):
        return target
    if not _lapsed(target, today):
        return Refusal(RefusalReason.PREAUTH_NOT_EXPIRED, f"valid until {target.expires_on}")
    event = Event(EventKind.HOLD_RELEASED, target.id, target.id, target.amount)
    return Transition(_move(target, TxnStatus.EXPIRED), (), (event,))


def _require_chain(txn: Transaction, chain: Sequence[Transaction]) -> None:
    require(len(chain) == CHAIN_DEPTH[txn.type],
            f"{txn.type} {txn.id} needs {CHAIN_DEPTH[txn.type]} ancestors, got {len(chain)}")
    child = txn
    for ancestor in chain:
        require(ancestor.id == child.original_id and
                ancestor.type in ORIGINAL_TYPES[child.type],
                f"{ancestor.type} {ancestor.id} is not the original of {child.id}")
        child = ancestor


def _move(txn: Transaction, status: TxnStatus) -> Transaction:
    require((txn.status, status) in LEGAL_MOVES[txn.type],
            f"{txn.type} {txn.id}: {txn.status} → {status} is not a legal move")
    return replace(txn, status=status)


def _apply(txn: Transaction, chain: Sequence[Transaction],
           undo: bool) -> tuple[Transaction, ...] | Refusal:
    """Apply (or undo) what approving ``txn`` does to its ancestors."""
    out = list(chain)
    for shift in _SHIFTS[txn.type]:
        record = out[shift.level]
        before, after = (shift.after, shift.before) if undo else (shift.before, shift.after)
        if record.status is not before:
            return Refusal(_STATUS_REASON[record.status], f"{record.id} is {record.status}")
        if before is not after:
            if not record.refunded.is_zero:  # a record with refunds stays approved
                return Refusal(RefusalReason.ALREADY_REFUNDED, f"{record.id} has refunds")
            out[shift.level] = _move(record, after)
    if txn.type is TxnType.REFUND:
        original = out[0]
        refunded = original.refunded - txn.amount if undo else original.refunded + txn.amount
        if refunded > original.amount:
            return Refusal(RefusalReason.REFUND_EXCEEDS_REMAINING,
                           f"refund {txn.amount} exceeds the remaining {original.remaining}")
        out[0] = replace(original, refunded=refunded)
    return tuple(out)


def _approval_events(txn: Transaction, chain: Sequence[Transaction]) -> tuple[Event, ...]:
    """The money and hold effects of approving ``txn`` (chain already checked)."""
    kind = EventKind
    match txn.type:
        case TxnType.SALE:
            return (Event(kind.CAPTURED, txn.id, txn.id, txn.amount),)
        case TxnType.PREAUTH:
            return (Event(kind.HOLD_PLACED, txn.id, txn.id, txn.amount),)
        case TxnType.COMPLETION:
            return (Event(kind.HOLD_CAPTURED, txn.id, chain[0].id, txn.amount),)
        case TxnType.VOID:
            return (Event(kind.VOIDED, txn.id, chain[0].id, chain[0].amount),)
        case TxnType.COMPLETION_VOID:
            return (Event(kind.VOIDED, txn.id, chain[0].id, chain[0].amount),
                    Event(kind.HOLD_PLACED, txn.id, chain[1].id, chain[1].amount))
        case TxnType.REFUND:
            return (Event(kind.REFUNDED, txn.id, chain[0].id, txn.amount),)
        case TxnType.PREAUTH_VOID:
            return (Event(kind.HOLD_RELEASED, txn.id, chain[0].id, chain[0].amount),)
        case TxnType.BALANCE_INQUIRY:
            return ()
        case _:
            assert_never(txn.type)
