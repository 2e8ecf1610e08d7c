"""A wall-clock scheduler on top of :func:`autosettle.services.leases.run_once`.

Each *planner* looks at the current time and names the runs that are due: (job name, run
key, function), optionally after another run. On every tick the scheduler asks each planner
and, in order:

* skips a run whose prerequisite (``after``) is not done yet;
* *defers* every due run while a maintenance window is in force: the run is recorded as
  ``deferred`` with its lease set to the window's end, and the first tick after the end runs
  it (it is not failed, and nothing runs inside the window);
* otherwise runs it under its lease: once, even with several instances ticking at the same
  time; a run whose owner died is taken over once its lease expired.

Because planners compute runs from the clock and from the runs already done, runs missed
while the process was down are simply due at the first tick after start (catch-up).

Every tick first records the runs whose owner died (a ``running`` run with an expired
lease) as ``abandoned``; one that is due again is taken over and finished. When a run of a
job that *supersedes* (its later runs cover its earlier ones) is done, its earlier deferred
runs, which no planner will name again, are closed as ``superseded``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from autosettle.services import leases, maintenance
from autosettle.services.context import ServiceContext
from autosettle.services.leases import JobFn, RunOutcome

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Due:
    """A run that is due now: ``fn`` under the lease of (``job_name``, ``run_key``).

    ``supersedes``: the job's run keys sort by time and a finished run covers every earlier
    one (it settles or exports everything due by its date), so a finished run closes the
    job's earlier ``deferred`` runs (:func:`autosettle.services.leases.supersede`).
    """

    job_name: str
    run_key: str
    fn: JobFn
    after: tuple[str, str] | None = None
    supersedes: bool = False


Planner = Callable[[datetime], list[Due]]


@dataclass
class TickReport:
    """What one tick did (for logs and tests)."""

    at: datetime
    outcomes: list[RunOutcome]
    deferred: list[tuple[str, str]]
    waiting: list[tuple[str, str]]

    def ran(self, job_name: str | None = None) -> list[RunOutcome]:
        return [o for o in self.outcomes
                if o.ran and (job_name is None or o.job_name == job_name)]


class Scheduler:
    """Runs what the planners say is due, under leases, around maintenance windows."""

    def __init__(self, ctx: ServiceContext, planners: Sequence[Planner], lease_s: float,
                 owner: str | None = None) -> None:
        self._ctx = ctx
        self._planners = list(planners)
        self._lease_s = lease_s
        self.owner = owner or leases.default_owner()

    def tick(self) -> TickReport:
        ctx = self._ctx
        now = ctx.now()
        window = maintenance.active(ctx, now)
        report = TickReport(now, [], [], [])
        leases.mark_abandoned(ctx)
        for planner in self._planners:
            for due in planner(now):
                if due.after is not None and not leases.is_done(ctx, *due.after):
                    report.waiting.append((due.job_name, due.run_key))
                    continue
                if window is not None:
                    if leases.defer(ctx, due.job_name, due.run_key, window.ends_at,
                                    f"maintenance window: {window.note}"):
                        log.info("job %s/%s deferred to %s (maintenance)", due.job_name,
                                 due.run_key, window.ends_at.isoformat())
                    report.deferred.append((due.job_name, due.run_key))
                    continue
                outcome = leases.run_once(ctx, due.job_name, due.run_key, due.fn,
                                          lease_s=self._lease_s, owner=self.owner)
                report.outcomes.append(outcome)
                if outcome.ran:
                    _log_outcome(outcome)
                if outcome.status == leases.DONE and due.supersedes:
                    leases.supersede(ctx, due.job_name, due.run_key)
        return report


def _log_outcome(outcome: RunOutcome) -> None:
    """One line per run; a run that found nothing to do only at DEBUG level."""
    counts = outcome.counts
    idle = outcome.status == leases.DONE and not outcome.error and (
        counts.get("batches") == 0 or counts.get("count") == 0)
    shown = {k: v for k, v in counts.items() if k not in ("run_key", "run_date", "error")}
    log.log(logging.DEBUG if idle else logging.INFO, "job %s %s %s%s: %s",
            outcome.job_name, outcome.run_key, outcome.status,
            " (taken over)" if outcome.took_over else "", outcome.error or shown)
