"""Payouts and their state machine, as pure values and pure functions.

A payout is the money a settlement batch owes a merchant, on its way to the merchant's bank
account. Its lifecycle (docs/settlement.md, "Payouts")::

    (new) ──instruct──> pending ──send──> sent ──confirm──> confirmed
      │                   ^                 │
      └──instruct_blocked─┤                 └──fail──> failed
                blocked ──┘ retry                         │
                          ^───────────── retry ───────────┘

* a new batch's payout is ``pending``, or ``blocked`` when a check before money leaves
  failed (一清, totals, ledger, payable);
* the payout file marks pending payouts ``sent`` (and marks them again when rewritten);
* the bank's answer makes a sent payout ``confirmed`` or ``failed`` (each idempotent);
* an operator's retry makes a ``failed`` or ``blocked`` payout ``pending`` again.

``confirmed`` is terminal. :func:`after` answers the status after an event, or raises
:class:`~autosettle.domain.errors.ConflictError` for an event the status does not allow.

>>> after(PayoutStatus.PENDING, PayoutEvent.SEND)
<PayoutStatus.SENT: 'sent'>
>>> after(PayoutStatus.CONFIRMED, PayoutEvent.CONFIRM)  # idempotent
<PayoutStatus.CONFIRMED: 'confirmed'>
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import Final

from autosettle.domain.errors import ConflictError


class PayoutStatus(StrEnum):
    """Where a payout is in its lifecycle."""

    PENDING = "pending"
    """Waiting for the next payout file."""
    BLOCKED = "blocked"
    """Held by a failed check before money leaves; an operator retries it once fixed."""
    SENT = "sent"
    """In a payout file; the money is on payout clearing."""
    CONFIRMED = "confirmed"
    """The bank credited the merchant. Terminal."""
    FAILED = "failed"
    """The bank returned it; the money is owed to the merchant again."""


class PayoutEvent(StrEnum):
    """What happens to a payout."""

    SEND = "send"
    CONFIRM = "confirm"
    FAIL = "fail"
    RETRY = "retry"


TRANSITIONS: Final = MappingProxyType({
    (PayoutStatus.PENDING, PayoutEvent.SEND): PayoutStatus.SENT,
    (PayoutStatus.SENT, PayoutEvent.SEND): PayoutStatus.SENT,
    (PayoutStatus.SENT, PayoutEvent.CONFIRM): PayoutStatus.CONFIRMED,
    (PayoutStatus.CONFIRMED, PayoutEvent.CONFIRM): PayoutStatus.CONFIRMED,
    (PayoutStatus.SENT, PayoutEvent.FAIL): PayoutStatus.FAILED,
    (PayoutStatus.FAILED, PayoutEvent.FAIL): PayoutStatus.FAILED,
    (PayoutStatus.FAILED, PayoutEvent.RETRY): PayoutStatus.PENDING,
    (PayoutStatus.BLOCKED, PayoutEvent.RETRY): PayoutStatus.PENDING,
})
"""Every allowed (status, event) and the status after it; a pair that is missing is refused."""


def initial_status(blocked: bool) -> PayoutStatus:
    """The status of a new payout: ``blocked`` when a check before money leaves failed."""
    return PayoutStatus.BLOCKED if blocked else PayoutStatus.PENDING


def allows(status: PayoutStatus, event: PayoutEvent) -> bool:
    """True when ``event`` may happen to a payout in ``status``."""
    return (status, event) in TRANSITIONS


def is_repeat(status: PayoutStatus, event: PayoutEvent) -> bool:
    """True when ``event`` already happened (it leaves the status as it is: a repeated
    answer of the bank or a rewritten payout file)."""
    return TRANSITIONS.get((status, event)) is status


def after(status: PayoutStatus, event: PayoutEvent) -> PayoutStatus:
    """The status after ``event``; ``ConflictError`` when the status does not allow it."""
    found = TRANSITIONS.get((status, event))
    if found is None:
        needs = sorted(s.value for s, e in TRANSITIONS if e is event)
        raise ConflictError(f"a {status.value} payout cannot {event.value} "
                            f"(only {', '.join(needs)})")
    return found
