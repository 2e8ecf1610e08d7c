"""Job leases in one process: once per run key, busy while held, taken over after expiry,
failures retried later, deferrals honoured (both databases)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from jobtools import ClockLike

from autosettle.domain.errors import ValidationError
from autosettle.services import alerts, leases
from autosettle.services.context import SYSTEM as OPERATOR
from autosettle.services.context import ServiceContext

JOB = "test-job"
KEY = "2026-09-18"


def counter() -> tuple[list[int], Any]:
    calls: list[int] = []

    def fn() -> dict[str, int]:
        calls.append(1)
        return {"items": len(calls)}
    return calls, fn


def test_a_run_happens_once_and_is_recorded(ctx: ServiceContext) -> None:
    calls, fn = counter()
    first = leases.run_once(ctx, JOB, KEY, fn, lease_s=60, owner="a")
    second = leases.run_once(ctx, JOB, KEY, fn, lease_s=60, owner="b")
    assert (first.status, second.status) == ("done", "already_done")
    assert calls == [1]
    run = leases.get_run(ctx, JOB, KEY)
    assert run is not None
    assert (run.status, run.owner, run.counts, run.error) == ("done", "a", {"items": 1}, None)
    assert run.finished_at is not None and run.finished_at >= run.started_at
    assert leases.last_done_key(ctx, JOB) == KEY
    assert [r.run_key for r in leases.recent_runs(ctx, JOB)] == [KEY]


def test_a_held_lease_is_busy_until_it_expires(ctx: ServiceContext,
                                               clock: ClockLike) -> None:
    state, took_over = leases.claim(ctx, JOB, KEY, "dead-owner", lease_s=30)
    assert (state, took_over) == ("claimed", False)
    calls, fn = counter()
    assert leases.run_once(ctx, JOB, KEY, fn, lease_s=30, owner="b").status == "busy"
    clock.advance(seconds=29)
    assert leases.run_once(ctx, JOB, KEY, fn, lease_s=30, owner="b").status == "busy"
    clock.advance(seconds=2)
    outcome = leases.run_once(ctx, JOB, KEY, fn, lease_s=30, owner="b")
    assert (outcome.status, outcome.took_over) == ("done", True)
    assert calls == [1]
    # the dead owner can neither renew nor finish the run any more
    assert not leases.renew(ctx, JOB, KEY, "dead-owner", 30)
    run = leases.get_run(ctx, JOB, KEY)
    assert run is not None and (run.status, run.owner) == ("done", "b")


def test_a_failed_run_is_recorded_and_retried_after_the_delay(
        ctx: ServiceContext, clock: ClockLike) -> None:
    attempts: list[int] = []

    def flaky() -> dict[str, int]:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("database went away")
        return {"ok": 1}

    failed = leases.run_once(ctx, JOB, KEY, flaky, lease_s=60, retry_after_s=10, owner="a")
    assert failed.status == "failed"
    assert failed.error == "RuntimeError: database went away"
    run = leases.get_run(ctx, JOB, KEY)
    assert run is not None and run.status == "failed" and run.error == failed.error
    assert leases.run_once(ctx, JOB, KEY, flaky, lease_s=60, owner="a").status == "busy"
    clock.advance(seconds=11)
    assert leases.run_once(ctx, JOB, KEY, flaky, lease_s=60, owner="a").status == "done"
    assert len(attempts) == 2


def test_a_failed_run_raises_one_alert_however_often_it_is_retried(
        ctx: ServiceContext, clock: ClockLike) -> None:
    def broken() -> dict[str, int]:
        raise RuntimeError("bank file missing")

    for _ in range(3):
        assert leases.run_once(ctx, JOB, KEY, broken, lease_s=60, retry_after_s=10,
                               owner="a").status == "failed"
        clock.advance(seconds=11)
    raised = [a for a in alerts.list_alerts(ctx, OPERATOR) if a.kind == "job_failed"]
    assert len(raised) == 1
    assert raised[0].severity == "error"
    assert f"{JOB}" in raised[0].message and KEY in raised[0].message
    assert "bank file missing" in raised[0].message
    # another run of the same job is another alert
    assert leases.run_once(ctx, JOB, "2026-09-19", broken, lease_s=60,
                           owner="a").status == "failed"
    assert len([a for a in alerts.list_alerts(ctx, OPERATOR)
                if a.kind == "job_failed"]) == 2


def test_a_deferred_run_waits_for_the_end_of_the_window(ctx: ServiceContext,
                                                        clock: ClockLike) -> None:
    until = clock.now + timedelta(hours=1)
    assert leases.defer(ctx, JOB, KEY, until, "maintenance window: bank upgrade")
    run = leases.get_run(ctx, JOB, KEY)
    assert run is not None and (run.status, run.lease_expires_at) == ("deferred", until)
    calls, fn = counter()
    assert leases.run_once(ctx, JOB, KEY, fn, lease_s=60).status == "busy"
    clock.now = until + timedelta(seconds=1)
    assert leases.run_once(ctx, JOB, KEY, fn, lease_s=60).status == "done"
    # a finished run is never deferred again
    assert not leases.defer(ctx, JOB, KEY, until + timedelta(hours=1), "later")
    assert calls == [1]


def test_names_are_bounded(ctx: ServiceContext) -> None:
    with pytest.raises(ValidationError):
        leases.run_once(ctx, JOB, "x" * 41, lambda: None)
    with pytest.raises(ValidationError):
        leases.run_once(ctx, JOB, KEY, lambda: None, lease_s=0.5)
