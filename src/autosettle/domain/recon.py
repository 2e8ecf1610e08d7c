"""Reconciliation (对账) rules, as pure values and pure functions (docs/reconciliation.md).

A *pair* is one of our records and one line of the other side's file that the matcher put
together (by key, or by the tolerant rules). :func:`classify_pair` says which result class
the pair is in; the checks run in :data:`PAIR_CHECKS` order and the first that fails names
the class. The bulk matcher (``services/recon_match.py``) applies the same checks, in the
same order, to whole columns at once; a property test holds the two to each other.

Money: every amount is an ``int`` of fen, signed as the ledger sees it (a sale or a
completion is positive, a void or a refund negative).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Final

from autosettle.domain.errors import ConflictError, ErrorCode, ValidationError
from autosettle.domain.ledger import Account, AccountType, JournalEntry, Line
from autosettle.domain.money import Money


class ResultClass(StrEnum):
    """What reconciling one record or line found."""

    MATCHED = "matched"
    OURS_ONLY = "ours_only"
    """我方有/对方无: we recorded it, the other side did not."""
    THEIRS_ONLY = "theirs_only"
    """对方有/我方无: the other side has it, we do not."""
    AMOUNT_MISMATCH = "amount_mismatch"
    STATUS_MISMATCH = "status_mismatch"
    """We reversed (or the bank returned) what the other side cleared (or we think paid)."""
    FEE_MISMATCH = "fee_mismatch"
    DATE_MISMATCH = "date_mismatch"
    """The other side cleared it on another day."""


DISCREPANCY_CLASSES: Final = tuple(c for c in ResultClass if c is not ResultClass.MATCHED)
AMOUNT_AGREES: Final = frozenset({ResultClass.MATCHED, ResultClass.FEE_MISMATCH,
                                  ResultClass.DATE_MISMATCH})
"""Pairs whose money agrees: their amount clears the channel receivable at once (the
discrepancy, if any, is about the fee or the day, not the money)."""

PAIR_CHECKS: Final = (ResultClass.STATUS_MISMATCH, ResultClass.AMOUNT_MISMATCH,
                      ResultClass.DATE_MISMATCH, ResultClass.FEE_MISMATCH)
"""The order in which a pair's checks run; the first that fails names its class."""

SIGNS: Final = {"sale": 1, "completion": 1, "void": -1, "completion_void": -1, "refund": -1}
"""Financial transaction types and the sign of their amount on the channel receivable."""


@dataclass(frozen=True, slots=True)
class PairFacts:
    """What the checks of one pair look at."""

    our_amount: int
    their_amount: int
    our_date: date
    their_date: date
    our_live: bool
    """False when we reversed the record (or the bank returned the payout)."""
    their_live: bool = True
    our_fee: int | None = None
    their_fee: int | None = None


def classify_pair(f: PairFacts) -> ResultClass:
    """The class of a pair; fees are compared only when both sides give one."""
    for check in PAIR_CHECKS:
        if check is ResultClass.STATUS_MISMATCH and f.our_live != f.their_live:
            return check
        if check is ResultClass.AMOUNT_MISMATCH and f.our_amount != f.their_amount:
            return check
        if check is ResultClass.DATE_MISMATCH and f.our_date != f.their_date:
            return check
        if check is ResultClass.FEE_MISMATCH and f.our_fee is not None \
                and f.their_fee is not None and abs(f.our_fee) != abs(f.their_fee):
            return check
    return ResultClass.MATCHED


@dataclass(frozen=True, slots=True)
class TolerantRules:
    """How records left over after the key match may still pair up: same merchant,
    terminal, type and amount, card last 4 when both give one, times within a window."""

    time_window_s: int = 300
    use_last4: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.time_window_s <= 86_400:
            raise ValidationError("the time window must be 0..86400 seconds")


class State(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Resolution(StrEnum):
    """How a discrepancy was closed."""

    AUTO = "auto"
    """A known benign case, resolved by the run (e.g. a late line that matched the next
    day, a reversal the channel cleared the next day)."""
    ADJUSTED = "adjusted"
    """A balanced ledger entry with a reason code posted the difference."""
    REFUND_REQUESTED = "refund_requested"
    RESETTLE_REQUESTED = "resettle_requested"
    ACCEPTED = "accepted"


class ReasonCode(StrEnum):
    """Why an adjustment was posted (the entry's kind carries it)."""

    CHANNEL_SHORT = "channel_short"
    """The channel paid less than we recorded (ours only, amount lower)."""
    CHANNEL_OVER = "channel_over"
    """The channel paid more than we recorded (theirs only, amount higher)."""
    FEE_DIFFERENCE = "fee_difference"
    WRITE_OFF = "write_off"


DAY_STATES: Final = ("open", "reconciled", "closed")


def adjustment_entry(key: str, reason: ReasonCode, ours_open: Money, theirs: Money,
                     merchant_id: str | None, reference: str) -> JournalEntry:
    """The balanced entry that settles a money discrepancy: the receivable gives up what
    is still open on our side (``ours_open``), the bank receives what the channel pays
    (``theirs``), and ``adjustments`` takes the difference.

    >>> from autosettle.domain.money import CNY
    >>> e = adjustment_entry("k", ReasonCode.CHANNEL_SHORT, Money(500, CNY), Money(450, CNY),
    ...                      None, "d1")
    >>> sorted((l.account.code, l.amount.amount_minor) for l in e.lines)
    [('adjustments', 50), ('bank', 450), ('channel_receivable', -500)]
    """
    if ours_open.currency != theirs.currency:
        raise ValidationError("an adjustment is in one currency", ErrorCode.INVALID_ENTRY)
    cur = ours_open.currency
    diff = ours_open.amount_minor - theirs.amount_minor
    lines = [Line(Account(AccountType.CHANNEL_RECEIVABLE), Money(-ours_open.amount_minor, cur)),
             Line(Account(AccountType.BANK), theirs),
             Line(Account(AccountType.ADJUSTMENTS), Money(diff, cur))]
    lines = [line for line in lines if line.amount.amount_minor != 0]
    if len(lines) < 2:
        raise ConflictError("nothing to adjust: both sides are zero")
    return JournalEntry.build(key, f"recon.adjustment.{reason.value}", lines,
                              merchant_id=None, reference=reference)


def fee_adjustment_entry(key: str, our_fee: Money, their_fee: Money,
                         reference: str) -> JournalEntry:
    """A fee difference: fee income moves to what the channel says, adjustments take the
    difference (positive: we charged more than the channel cleared)."""
    diff = abs(our_fee.amount_minor) - abs(their_fee.amount_minor)
    if diff == 0:
        raise ConflictError("the fees agree: nothing to adjust")
    cur = our_fee.currency
    return JournalEntry.build(key, f"recon.adjustment.{ReasonCode.FEE_DIFFERENCE.value}", [
        Line(Account(AccountType.FEE_INCOME), Money(diff, cur)),
        Line(Account(AccountType.ADJUSTMENTS), Money(-diff, cur))],
        merchant_id=None, reference=reference)


def clearing_entry(key: str, amount: Money, reference: str) -> JournalEntry | None:
    """The channel pays what matched: bank ↔ channel receivable (either way for a net
    negative day); None when there is nothing to move."""
    if amount.amount_minor == 0:
        return None
    return JournalEntry.build(key, "recon.cleared", [
        Line(Account(AccountType.BANK), amount),
        Line(Account(AccountType.CHANNEL_RECEIVABLE), Money(-amount.amount_minor,
                                                            amount.currency))],
        reference=reference)


def can_close(states: Iterable[State]) -> bool:
    """A business date closes when all its discrepancies are resolved."""
    return all(s is State.RESOLVED for s in states)


def require_open_day(state: str, channel: str, on: date) -> None:
    """A closed business date cannot change."""
    if state == "closed":
        raise ConflictError(f"{channel} {on.isoformat()} is closed: it cannot change")


def allowed_resolutions(klass: ResultClass) -> frozenset[Resolution]:
    """What an operator may do with a discrepancy of ``klass``."""
    base = {Resolution.ACCEPTED}
    if klass in (ResultClass.OURS_ONLY, ResultClass.THEIRS_ONLY, ResultClass.AMOUNT_MISMATCH,
                 ResultClass.STATUS_MISMATCH, ResultClass.FEE_MISMATCH):
        base.add(Resolution.ADJUSTED)
    if klass in (ResultClass.THEIRS_ONLY, ResultClass.STATUS_MISMATCH,
                 ResultClass.AMOUNT_MISMATCH):
        base.add(Resolution.REFUND_REQUESTED)
    if klass in (ResultClass.OURS_ONLY, ResultClass.AMOUNT_MISMATCH):
        base.add(Resolution.RESETTLE_REQUESTED)
    return frozenset(base)


def age_days(created: date, today: date) -> int:
    """How many days a discrepancy has been in the queue."""
    return max(0, (today - created).days)


def ageing_bucket(days: int) -> str:
    """The summary's ageing columns."""
    if days <= 1:
        return "0-1d"
    if days <= 3:
        return "2-3d"
    if days <= 7:
        return "4-7d"
    return ">7d"


@dataclass(frozen=True, slots=True)
class DiscrepancyRecord:
    """A discrepancy as stored: the class, both sides' amounts and fees, its state."""

    discrepancy_id: int
    channel: str
    business_date: date
    klass: str
    merchant_id: str | None
    txn_id: str | None
    line_id: int | None
    our_amount_minor: int | None
    their_amount_minor: int | None
    our_fee_minor: int | None
    their_fee_minor: int | None
    currency: str
    state: str
    owner: str | None
    resolution: str | None
    note: str | None
    entry_key: str | None
    created_at: datetime
    resolved_at: datetime | None
