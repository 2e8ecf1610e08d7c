"""Run a job once per run key, even with several instances running: a database lease.

A run is one row of ``job_runs`` keyed by (job name, run key). Inserting the row *is* the
lease: a unique-key clash means another instance has (or had) the run. The row records the
owner, the start, the end, the counts and the error of the run.

* A run that finished (``done``) is never run again under the same key.
* A run whose owner died (SIGKILL, power loss) keeps ``running`` with a lease that nobody
  renews; once it expires the next instance takes the run over and resumes it. The jobs
  are idempotent (a settlement batch is unique per merchant and run key, items are claimed
  with ``UPDATE .. WHERE batch_id IS NULL``), so resuming never pays twice.
* While the owner lives, a heartbeat thread renews its lease every third of it, so a long
  run is never taken over from a live owner.
* A run whose function raised is ``failed``; it may be retried once its lease (set to
  ``retry_after_s`` from the failure) has expired.
* A run that falls in a maintenance window is ``deferred``: its lease is set to the end of
  the window, after which any instance takes it over (see :mod:`autosettle.services.
  maintenance`).
* A ``running`` run whose lease expired is ``abandoned`` (:func:`mark_abandoned`, called by
  every scheduler tick and every manual run; lists show it so at once): its owner stopped
  before the end. What it committed stands; a scheduled run that is due again takes it over
  and finishes it; a manual run's key is never due again, so its date is simply run again.
* A ``deferred`` run that a later run of the same job has covered (a job whose later run
  settles or exports everything due by its date) is ``superseded`` (:func:`supersede`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from autosettle.domain.calendar import SettlementCycle
from autosettle.domain.errors import ConflictError, ValidationError
from autosettle.domain.jobs import JobRun, JobStatus
from autosettle.services import maintenance
from autosettle.services.alerts import raise_alert
from autosettle.services.audit import record
from autosettle.services.business_dates import require_run_date
from autosettle.services.context import Principal, ServiceContext
from autosettle.services.settlement import NEXT_DAY, RunSummary, settle

log = logging.getLogger(__name__)

LEASE_S_DEFAULT = 300.0
LEASE_S_MIN = 1.0
JOB_NAME_LENGTH_MAX = 40
RUN_KEY_LENGTH_MAX = 40
ERROR_LENGTH_MAX = 500
RECENT_RUNS_MAX = 500

RUNNING = JobStatus.RUNNING
DONE = JobStatus.DONE
FAILED = JobStatus.FAILED
DEFERRED = JobStatus.DEFERRED
ABANDONED = JobStatus.ABANDONED
SUPERSEDED = JobStatus.SUPERSEDED

JobFn = Callable[[], Mapping[str, Any] | None]


def default_owner() -> str:
    """This process, uniquely: ``host:pid:random``."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What :func:`run_once` did.

    ``status``: ``done`` / ``failed`` (this call ran the job), ``already_done`` (an earlier
    run finished it), ``busy`` (another live owner holds the lease, or a deferral or retry
    delay has not expired yet).
    """

    job_name: str
    run_key: str
    status: str
    owner: str
    counts: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    took_over: bool = False

    @property
    def ran(self) -> bool:
        return self.status in (DONE, FAILED)


def _check_names(job_name: str, run_key: str) -> None:
    if not 0 < len(job_name) <= JOB_NAME_LENGTH_MAX:
        raise ValidationError(f"job name must be 1..{JOB_NAME_LENGTH_MAX} characters")
    if not 0 < len(run_key) <= RUN_KEY_LENGTH_MAX:
        raise ValidationError(f"run key must be 1..{RUN_KEY_LENGTH_MAX} characters")


def claim(ctx: ServiceContext, job_name: str, run_key: str, owner: str,
          lease_s: float) -> tuple[str, bool]:
    """Try to take the lease: (``claimed`` | ``already_done`` | ``busy``, took_over)."""
    _check_names(job_name, run_key)
    now = ctx.now()
    expires = now + timedelta(seconds=lease_s)
    with ctx.db.unit_of_work() as uow:
        if uow.leases.insert(job_name, run_key, owner, now, expires):
            return "claimed", False
    # someone has (or had) it: look at what they hold
    with ctx.db.unit_of_work() as uow:
        current = uow.leases.get(job_name, run_key)
        if current is None:  # never deleted; defensive
            return "busy", False
        if current.status == DONE:
            return "already_done", False
        if uow.leases.take_over(job_name, run_key, owner, now, expires):
            # from a dead owner; a failed or deferred run is simply due again
            return "claimed", current.status in (RUNNING, ABANDONED)
    return "busy", False


def renew(ctx: ServiceContext, job_name: str, run_key: str, owner: str,
          lease_s: float) -> bool:
    """Extend our lease; False when it is no longer ours (taken over after expiry)."""
    with ctx.db.unit_of_work() as uow:
        return uow.leases.renew(job_name, run_key, owner,
                                ctx.now() + timedelta(seconds=lease_s))


def _finish(ctx: ServiceContext, job_name: str, run_key: str, owner: str, status: JobStatus,
            counts: Mapping[str, Any], error: str | None, retry_at: datetime | None) -> bool:
    with ctx.db.unit_of_work() as uow:
        return uow.leases.finish(job_name, run_key, owner, status, ctx.now(), counts,
                                 error[:ERROR_LENGTH_MAX] if error else None, retry_at)


class _Heartbeat:
    """Renews a lease from a thread of its own (its own connection and unit of work)."""

    def __init__(self, ctx: ServiceContext, job_name: str, run_key: str, owner: str,
                 lease_s: float) -> None:
        self._args = (ctx, job_name, run_key, owner, lease_s)
        self._every_s = max(lease_s / 3.0, 0.2)
        self._stop = threading.Event()
        self.lost = False
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name=f"lease-{job_name}")

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10.0)

    def _loop(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                if not renew(*self._args):
                    self.lost = True
                    log.warning("lease of %s/%s was taken over", self._args[1], self._args[2])
                    return
            except Exception:  # a missed beat is not fatal: the lease has slack
                log.exception("could not renew the lease of %s/%s", self._args[1],
                              self._args[2])


def _alert_failure(ctx: ServiceContext, job_name: str, run_key: str, failure: str) -> None:
    """One ``error`` alert per failed run (retries of the same run raise no second one): a
    failed run may hold back the runs that wait for it (settlement waits for the scoring of
    the day before), so operators must hear of it, not only the log. When the database is
    what failed, the alert cannot be written either; the log has it."""
    try:
        raise_alert(ctx, "error", "job_failed",
                    f"job {job_name} run {run_key} failed: {failure}"[:500],
                    dedup_key=f"job-failed:{job_name}:{run_key}"[:120])
    except Exception:
        log.exception("could not raise the alert for the failed job %s/%s", job_name,
                      run_key)


def run_once(ctx: ServiceContext, job_name: str, run_key: str, fn: JobFn,
             lease_s: float = LEASE_S_DEFAULT, owner: str | None = None,
             retry_after_s: float | None = None) -> RunOutcome:
    """Run ``fn`` under the lease of (``job_name``, ``run_key``) unless it is done or held.

    ``fn`` returns the counts to record (a JSON-ready mapping; a string under ``"error"``
    is recorded as the run's error while the run still counts as done). An exception from
    ``fn`` is recorded, the run is ``failed`` and may be retried after ``retry_after_s``
    (default: ``lease_s``); the exception is not re-raised.
    """
    if lease_s < LEASE_S_MIN:
        raise ValidationError(f"lease must be at least {LEASE_S_MIN} s")
    me = owner or default_owner()
    state, took_over = claim(ctx, job_name, run_key, me, lease_s)
    if state != "claimed":
        return RunOutcome(job_name, run_key, state, me)
    if took_over:
        log.warning("job %s/%s: took over an expired lease (its owner died?)", job_name,
                    run_key)
    try:
        with _Heartbeat(ctx, job_name, run_key, me, lease_s):
            counts = dict(fn() or {})
    except Exception as exc:
        log.exception("job %s/%s failed", job_name, run_key)
        failure = f"{type(exc).__name__}: {exc}"
        retry = ctx.now() + timedelta(seconds=lease_s if retry_after_s is None
                                      else retry_after_s)
        _finish(ctx, job_name, run_key, me, FAILED, {}, failure, retry)
        _alert_failure(ctx, job_name, run_key, failure)
        return RunOutcome(job_name, run_key, FAILED, me, {}, failure, took_over)
    error_value = counts.get("error")
    error = str(error_value) if error_value else None
    if not _finish(ctx, job_name, run_key, me, DONE, counts, error, None):
        log.warning("job %s/%s finished after its lease was taken over", job_name, run_key)
    return RunOutcome(job_name, run_key, DONE, me, counts, error, took_over)


def defer(ctx: ServiceContext, job_name: str, run_key: str, until: datetime,
          reason: str) -> bool:
    """Hold a run back until ``until`` (a maintenance window's end): it is not failed, it
    runs afterwards. Does nothing to a finished run or to one a live owner is running."""
    _check_names(job_name, run_key)
    with ctx.db.unit_of_work() as uow:
        return uow.leases.defer(job_name, run_key, ctx.now(), until,
                                reason[:ERROR_LENGTH_MAX])


def mark_abandoned(ctx: ServiceContext) -> int:
    """Record every ``running`` run whose lease has expired as ``abandoned``; how many.

    Its owner stopped renewing the lease (killed with SIGKILL, a power cut): nobody is
    running it any more. The batches it committed stand. A scheduled run that is due again
    is taken over from ``abandoned`` as from ``running`` and finished; a manual run's key is
    unique, so nothing takes it over: running its date again settles what it left. A row
    is changed only if it still has the expired lease it was read with (never a run that
    was taken over meanwhile).
    """
    with ctx.db.unit_of_work() as uow:
        marked = 0
        for run in uow.leases.expired_running(ctx.now()):
            note = (f"abandoned: owner {run.owner} stopped renewing its lease (expired "
                    f"{run.lease_expires_at.isoformat()}); what it committed stands, run it "
                    "again for the rest")
            marked += uow.leases.abandon(run, note[:ERROR_LENGTH_MAX])
    if marked:
        log.warning("%d job run(s) abandoned by their owner (lease expired)", marked)
    return marked


def supersede(ctx: ServiceContext, job_name: str, run_key: str) -> int:
    """Close the ``deferred`` runs of ``job_name`` keyed before ``run_key`` as
    ``superseded``; how many.

    For jobs whose run keys sort by time and whose every run settles (or exports)
    everything due by its date, so that a finished run ``run_key`` covers the earlier runs
    that were held back by a maintenance window and will never be planned again (an
    intraday slot that has passed, a day the catch-up has gone beyond).
    """
    _check_names(job_name, run_key)
    note = f"superseded: covered by run {run_key}"[:ERROR_LENGTH_MAX]
    with ctx.db.unit_of_work() as uow:
        return uow.leases.supersede(job_name, run_key, ctx.now(), note)


def get_run(ctx: ServiceContext, job_name: str, run_key: str) -> JobRun | None:
    """One run as shown now (``running`` with an expired lease shows ``abandoned``)."""
    with ctx.db.unit_of_work() as uow:
        run = uow.leases.get(job_name, run_key)
    return run.as_shown(ctx.now()) if run else None


def is_done(ctx: ServiceContext, job_name: str, run_key: str) -> bool:
    """True when the run has finished."""
    run = get_run(ctx, job_name, run_key)
    return run is not None and run.status == DONE


def last_done_key(ctx: ServiceContext, job_name: str) -> str | None:
    """The greatest run key of a finished run (keys that start with an ISO date sort by
    date), or None."""
    with ctx.db.unit_of_work() as uow:
        return uow.leases.last_done_key(job_name)


def recent_runs(ctx: ServiceContext, job_name: str | None = None,
                limit: int = 50) -> list[JobRun]:
    """The latest runs, newest first (optionally of one job); a ``running`` run whose lease
    has expired is shown ``abandoned``."""
    limit = max(1, min(limit, RECENT_RUNS_MAX))
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        return [r.as_shown(now) for r in uow.leases.recent(job_name, limit)]


# -- manual settlement runs (API, CLI) ------------------------------------------------------

JOB_MANUAL_SETTLE = "settle-manual"
ERRORS_RECORDED_MAX = 5


def summary_counts(summary: RunSummary) -> dict[str, Any]:
    """The counts recorded for a settlement run (``error`` names failed merchants)."""
    counts: dict[str, Any] = {
        "run_date": summary.run_date.isoformat(), "run_key": summary.run_key,
        "cycles": "+".join(summary.cycles), "batches": summary.batches,
        "skipped_existing": summary.skipped_existing,
        "carried_merchants": len(summary.carried_merchants),
        "blocked_payouts": summary.blocked_payouts, "items": summary.items,
        "gross_minor": summary.gross_minor, "fee_minor": summary.fee_minor,
        "payout_minor": summary.payout_minor, "errors": len(summary.errors),
    }
    if summary.errors:
        shown = "; ".join(summary.errors[:ERRORS_RECORDED_MAX])
        more = len(summary.errors) - ERRORS_RECORDED_MAX
        counts["error"] = shown + (f" (+{more} more)" if more > 0 else "")
    return counts


@dataclass(frozen=True, slots=True)
class ManualRun:
    outcome: RunOutcome
    summary: RunSummary | None


def settle_now(ctx: ServiceContext, who: Principal, run_date: date,
               cycles: Sequence[str] = NEXT_DAY,
               progress: Callable[[], object] | None = None) -> ManualRun:
    """An operator's settlement run for ``run_date``, recorded as a job run.

    It uses the same settlement run key as the scheduler (``<date>:<cycles>``), so running
    a date the scheduler already settled changes nothing; refused inside a maintenance
    window, and refused (``date_out_of_range``) for a date after the current business date,
    before anything is recorded.
    """
    who.require_operator()
    parsed = tuple(SettlementCycle.parse(c).value for c in cycles)
    if not parsed:
        raise ValidationError("name at least one cycle")
    require_run_date(ctx, run_date)
    maintenance.require_open(ctx)
    mark_abandoned(ctx)  # earlier manual runs killed half-way: nothing else closes them
    now = ctx.now()
    key = f"{run_date.isoformat()}:{'+'.join(parsed)}@{now:%H%M%S}-{uuid.uuid4().hex[:6]}"
    with ctx.db.unit_of_work() as uow:
        record(uow, who, "settlement.run", f"settlement-runs/{key}", now,
               detail={"date": run_date.isoformat(), "cycles": list(parsed)})
    holder: list[RunSummary] = []

    def run() -> dict[str, Any]:
        summary = settle(ctx, run_date, parsed, progress=progress)
        holder.append(summary)
        return summary_counts(summary)

    outcome = run_once(ctx, JOB_MANUAL_SETTLE, key, run)
    if outcome.status in ("busy", "already_done"):
        raise ConflictError(f"manual run {key} is already recorded")
    return ManualRun(outcome, holder[0] if holder else None)
