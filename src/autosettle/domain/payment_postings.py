"""The ledger postings of payment events, as a pure mapping: event -> balanced journal entry.

The transaction state machine (:mod:`autosettle.domain.transactions`) says what a step did
to money or holds as :class:`~autosettle.domain.transactions.Event` values; this module says
which accounts each one moves:

=================  ==========================================================================
captured           debit channel_receivable, credit merchant_unsettled:<m>
hold_placed        debit card_holds, credit holds_contra
hold_released      debit holds_contra, credit card_holds
hold_captured      release the whole hold (the pre-authorization's amount), and capture the
                   completion's amount as ``captured`` does
voided, refunded   debit merchant_unsettled:<m>, credit channel_receivable
reversed           the exact opposite of every line the reversed message posted (its net
                   lines, read from the ledger by the caller); nothing when it posted none
=================  ==========================================================================

Every entry's idempotency key is ``txn:<txn_id>:<kind>:<target_id>``, so a retried step
posts nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, assert_never

from autosettle.domain.errors import ErrorCode, InvariantViolation
from autosettle.domain.ledger import Account, AccountType, JournalEntry, Line
from autosettle.domain.money import Money
from autosettle.domain.transactions import Event, EventKind

RECEIVABLE: Final = Account(AccountType.CHANNEL_RECEIVABLE)
HOLDS: Final = Account(AccountType.CARD_HOLDS)
HOLDS_CONTRA: Final = Account(AccountType.HOLDS_CONTRA)


def posting_key(event: Event) -> str:
    """The idempotency key of the entry that ``event`` posts."""
    return f"txn:{event.txn_id}:{event.kind.value}:{event.target_id}"


def event_lines(event: Event, merchant_id: str, hold: Money | None = None,
                posted: Sequence[Line] = ()) -> list[Line]:
    """The lines ``event`` posts for ``merchant_id``.

    ``hold`` is the pre-authorization's amount (needed by ``hold_captured`` only);
    ``posted`` the net lines the reversed message posted (needed by ``reversed`` only).
    """
    amount = event.amount
    unsettled = Account(AccountType.MERCHANT_UNSETTLED, merchant_id)
    match event.kind:
        case EventKind.CAPTURED:
            return [Line.debit(RECEIVABLE, amount), Line.credit(unsettled, amount)]
        case EventKind.HOLD_PLACED:
            return [Line.debit(HOLDS, amount), Line.credit(HOLDS_CONTRA, amount)]
        case EventKind.HOLD_RELEASED:
            return [Line.debit(HOLDS_CONTRA, amount), Line.credit(HOLDS, amount)]
        case EventKind.HOLD_CAPTURED:
            if hold is None:
                raise InvariantViolation("a captured hold needs the hold's amount",
                                         ErrorCode.INTERNAL)
            return [Line.debit(HOLDS_CONTRA, hold), Line.credit(HOLDS, hold),
                    Line.debit(RECEIVABLE, amount), Line.credit(unsettled, amount)]
        case EventKind.VOIDED | EventKind.REFUNDED:
            return [Line.debit(unsettled, amount), Line.credit(RECEIVABLE, amount)]
        case EventKind.REVERSED:
            return [Line(line.account, -line.amount) for line in posted]
        case _:
            assert_never(event.kind)


def posting(event: Event, txn_type: str, merchant_id: str, hold: Money | None = None,
            posted: Sequence[Line] = ()) -> JournalEntry | None:
    """The balanced entry ``event`` of a ``txn_type`` message posts; None: nothing to post
    (a reversal of a message that posted nothing)."""
    lines = event_lines(event, merchant_id, hold, posted)
    if not lines:
        return None
    return JournalEntry.build(posting_key(event), f"{txn_type}.{event.kind.value}", lines,
                              merchant_id=merchant_id, reference=event.txn_id)
