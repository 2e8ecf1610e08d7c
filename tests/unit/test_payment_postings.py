"""Ledger postings of payment events: each kind moves exactly its accounts, every mapping
balances, and a reversal posts the exact opposite of what the reversed message posted."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autosettle.domain.errors import InvariantViolation
from autosettle.domain.ledger import Account, AccountType, Line
from autosettle.domain.money import Money, currency
from autosettle.domain.payment_postings import (
    HOLDS,
    HOLDS_CONTRA,
    RECEIVABLE,
    event_lines,
    posting,
    posting_key,
)
from autosettle.domain.transactions import Event, EventKind

MID = "898310054110001"
UNSETTLED = Account(AccountType.MERCHANT_UNSETTLED, MID)
CNY = currency("CNY")


def _moves(lines: list[Line] | tuple[Line, ...]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for line in lines:
        totals[line.account.code] += line.amount.amount_minor
    return {code: amount for code, amount in totals.items() if amount}


def _event(kind: EventKind, fen: int, target: str = "t1") -> Event:
    return Event(kind, "x1", target, Money(fen, CNY))


def test_each_kind_moves_its_accounts() -> None:
    r, u, h, c = RECEIVABLE.code, UNSETTLED.code, HOLDS.code, HOLDS_CONTRA.code
    assert _moves(event_lines(_event(EventKind.CAPTURED, 500), MID)) == {r: 500, u: -500}
    assert _moves(event_lines(_event(EventKind.HOLD_PLACED, 700), MID)) == {h: 700, c: -700}
    assert _moves(event_lines(_event(EventKind.HOLD_RELEASED, 700), MID)) == {c: 700, h: -700}
    assert _moves(event_lines(_event(EventKind.VOIDED, 500), MID)) == {u: 500, r: -500}
    assert _moves(event_lines(_event(EventKind.REFUNDED, 200), MID)) == {u: 200, r: -200}
    # a completion releases the whole hold (not the captured amount) and captures its own
    captured = event_lines(_event(EventKind.HOLD_CAPTURED, 1100), MID, hold=Money(1000, CNY))
    assert _moves(captured) == {c: 1000, h: -1000, r: 1100, u: -1100}


def test_captured_hold_needs_the_hold() -> None:
    with pytest.raises(InvariantViolation):
        event_lines(_event(EventKind.HOLD_CAPTURED, 1100), MID)


def test_reversal_is_the_opposite_of_what_was_posted() -> None:
    posted = event_lines(_event(EventKind.CAPTURED, 500), MID)
    back = event_lines(_event(EventKind.REVERSED, 500), MID, posted=posted)
    assert _moves([*posted, *back]) == {}
    assert posting(_event(EventKind.REVERSED, 0), "sale", MID) is None


def test_entry_key_kind_and_reference() -> None:
    entry = posting(_event(EventKind.REFUNDED, 250, "s9"), "refund", MID)
    assert entry is not None
    assert entry.idempotency_key == posting_key(_event(EventKind.REFUNDED, 250, "s9"))
    assert entry.idempotency_key == "txn:x1:refunded:s9"
    assert (entry.kind, entry.merchant_id, entry.reference) == ("refund.refunded", MID, "x1")


KINDS = [k for k in EventKind if k is not EventKind.REVERSED]


@given(kind=st.sampled_from(KINDS), fen=st.integers(1, 10**12), hold=st.integers(1, 10**12),
       code=st.sampled_from(["CNY", "USD", "JPY"]))
def test_every_mapping_balances(kind: EventKind, fen: int, hold: int, code: str) -> None:
    cur = currency(code)
    event = Event(kind, "x1", "t1", Money(fen, cur))
    entry = posting(event, "sale", MID, hold=Money(hold, cur))
    assert entry is not None  # JournalEntry refuses to exist unbalanced; check it anyway
    assert sum(line.amount.amount_minor for line in entry.lines) == 0
    assert {line.amount.currency for line in entry.lines} == {cur}
    back = posting(Event(EventKind.REVERSED, "x1", "x1", Money(fen, cur)), "sale", MID,
                   posted=entry.lines)
    assert back is not None
    assert _moves([*entry.lines, *back.lines]) == {}
