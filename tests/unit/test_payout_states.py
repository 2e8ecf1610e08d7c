"""The payout state machine (domain/payouts.py): every documented transition, the refused
ones, and random event sequences that keep the lifecycle's invariants."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autosettle.domain.errors import ConflictError
from autosettle.domain.jobs import JobRun, JobStatus
from autosettle.domain.payouts import (
    TRANSITIONS,
    PayoutEvent,
    PayoutStatus,
    after,
    allows,
    initial_status,
    is_repeat,
)
from autosettle.domain.settlement_records import ItemKind

P, E = PayoutStatus, PayoutEvent


@pytest.mark.parametrize(("status", "event", "expected"), [
    (P.PENDING, E.SEND, P.SENT),
    (P.SENT, E.CONFIRM, P.CONFIRMED),
    (P.SENT, E.FAIL, P.FAILED),
    (P.FAILED, E.RETRY, P.PENDING),
    (P.BLOCKED, E.RETRY, P.PENDING),
])
def test_the_documented_transitions(status: PayoutStatus, event: PayoutEvent,
                                    expected: PayoutStatus) -> None:
    assert allows(status, event)
    assert after(status, event) is expected
    assert not is_repeat(status, event)


@pytest.mark.parametrize(("status", "event"), [
    (P.SENT, E.SEND), (P.CONFIRMED, E.CONFIRM), (P.FAILED, E.FAIL)])
def test_a_repeated_answer_or_a_rewritten_file_changes_nothing(status: PayoutStatus,
                                                               event: PayoutEvent) -> None:
    assert is_repeat(status, event)
    assert after(status, event) is status


@pytest.mark.parametrize(("status", "event"), [
    (P.PENDING, E.CONFIRM), (P.PENDING, E.FAIL), (P.PENDING, E.RETRY),
    (P.BLOCKED, E.SEND), (P.BLOCKED, E.CONFIRM), (P.BLOCKED, E.FAIL),
    (P.SENT, E.RETRY), (P.CONFIRMED, E.FAIL), (P.CONFIRMED, E.RETRY),
    (P.CONFIRMED, E.SEND), (P.FAILED, E.CONFIRM), (P.FAILED, E.SEND)])
def test_everything_else_is_refused(status: PayoutStatus, event: PayoutEvent) -> None:
    assert not allows(status, event)
    assert not is_repeat(status, event)
    with pytest.raises(ConflictError, match=f"a {status.value} payout cannot {event.value}"):
        after(status, event)


def test_a_new_payout_is_pending_unless_a_check_blocked_it() -> None:
    assert initial_status(blocked=False) is P.PENDING
    assert initial_status(blocked=True) is P.BLOCKED


@given(st.booleans(), st.lists(st.sampled_from(list(PayoutEvent)), max_size=30))
def test_random_event_sequences_keep_the_lifecycle(blocked: bool,
                                                   events: list[PayoutEvent]) -> None:
    """Whatever arrives in whatever order: a refused event changes nothing; confirmed is
    final; money leaves (sent) only from pending; a payout is confirmed only after it was
    sent, and sent again only after a retry."""
    status = initial_status(blocked)
    sent_since_retry = False
    for event in events:
        if not allows(status, event):
            with pytest.raises(ConflictError):
                after(status, event)
            continue
        new = after(status, event)
        assert new in TRANSITIONS.values()
        if status is P.CONFIRMED:
            assert new is P.CONFIRMED
        if new is P.SENT and status is not P.SENT:
            assert status is P.PENDING
            assert not sent_since_retry
            sent_since_retry = True
        if new is P.CONFIRMED:
            assert sent_since_retry
        if event is E.RETRY:
            assert status in (P.FAILED, P.BLOCKED) and new is P.PENDING
            sent_since_retry = False
        status = new


def test_every_status_is_reachable_and_only_confirmed_is_final() -> None:
    reachable = {P.PENDING, P.BLOCKED}
    for _ in PayoutStatus:
        reachable |= {after(s, e) for s in reachable for e in PayoutEvent if allows(s, e)}
    assert reachable == set(PayoutStatus)
    final = {s for s in PayoutStatus
             if all(not allows(s, e) or after(s, e) is s for e in PayoutEvent)}
    assert final == {P.CONFIRMED}


def test_an_item_kind_names_the_kind_that_reverses_it() -> None:
    assert ItemKind.CAPTURE.reversal is ItemKind.REV_CAPTURE
    assert ItemKind.REFUND.reversal is ItemKind.REV_REFUND
    assert ItemKind.VOID.reversal is ItemKind.REV_VOID
    assert ItemKind.REV_CAPTURE.reversal is None
    assert all(len(k.value) <= 12 for k in ItemKind)   # the column's width


def _run(status: JobStatus, expires: datetime) -> JobRun:
    at = datetime(2026, 9, 20, 2, tzinfo=UTC)
    return JobRun("settle-daily", "2026-09-20", status, "owner", expires, at, None, {}, None)


def test_a_running_job_whose_lease_expired_is_shown_abandoned() -> None:
    now = datetime(2026, 9, 20, 3, tzinfo=UTC)
    before, later = datetime(2026, 9, 20, 2, 30, tzinfo=UTC), datetime(2026, 9, 20, 4,
                                                                         tzinfo=UTC)
    assert _run(JobStatus.RUNNING, before).as_shown(now).status is JobStatus.ABANDONED
    assert _run(JobStatus.RUNNING, later).as_shown(now).status is JobStatus.RUNNING
    for other in (JobStatus.DONE, JobStatus.FAILED, JobStatus.DEFERRED):
        assert _run(other, before).as_shown(now).status is other
