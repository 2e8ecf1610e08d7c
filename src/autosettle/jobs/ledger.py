"""The ledger's balance checkpoints as scheduler jobs (docs/ledger.md, "Balance checkpoints").

=========================  ==============================================  ====================
job                        when                                            run key
=========================  ==============================================  ====================
``ledger-checkpoint``      every ``AUTOSETTLE_LEDGER_CHECKPOINT_INTERVAL_S``  ``<slot start>``
                           and after each settlement run                   ``after:<job>:<key>``
``ledger-checkpoint-verify``  once a day (Asia/Shanghai)                   the date
=========================  ==============================================  ====================

A checkpoint run is idempotent (it writes nothing when no entry is newer than the newest
checkpoint) and runs under the scheduler's lease, so several instances write it once. The
verification recomputes the newest checkpoint from every journal line; a mismatch is a
critical alert, never a silent fix.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from autosettle.domain.calendar import SHANGHAI
from autosettle.jobs.runner import PeriodicTask
from autosettle.jobs.scheduler import Due, Planner, Scheduler
from autosettle.services import leases, maintenance
from autosettle.services import ledger as ledger_service
from autosettle.services.context import ServiceContext

JOB_CHECKPOINT = "ledger-checkpoint"
JOB_VERIFY = "ledger-checkpoint-verify"
AFTER_JOBS = ("settle-daily", "settle-intraday")  # jobs/settlement.py's settlement runs


def _checkpoint(ctx: ServiceContext) -> Mapping[str, Any]:
    return ledger_service.checkpoint(ctx).counts()


def _verify(ctx: ServiceContext) -> Mapping[str, Any]:
    result = ledger_service.verify_checkpoint(ctx)
    counts: dict[str, Any] = {"through_entry_id": result.through_entry_id,
                              "mismatches": len(result.mismatches)}
    if not result.ok:
        counts["error"] = f"{len(result.mismatches)} account(s) disagree with the journal"
    return counts


def after_run_key(job: str, last: str) -> str:
    """The run key of the checkpoint after ``job``'s run ``last``: ``a<n>:<last>`` (the
    job's place in AFTER_JOBS keeps it within the lease table's 40 characters)."""
    return f"a{AFTER_JOBS.index(job)}:{last}"


def checkpoint_planner(ctx: ServiceContext) -> Planner:
    """A checkpoint every interval and after the newest finished settlement run of each
    settlement job; a verification once a day."""
    def plan(now: datetime) -> list[Due]:
        slot = maintenance.intraday_slot(now, ctx.settings.ledger_checkpoint_interval_s)
        run = functools.partial(_checkpoint, ctx)
        dues = [Due(JOB_CHECKPOINT, slot.astimezone(SHANGHAI).isoformat(), run)]
        for job in AFTER_JOBS:
            last = leases.last_done_key(ctx, job)
            if last is not None:
                dues.append(Due(JOB_CHECKPOINT, after_run_key(job, last), run,
                                after=(job, last)))
        dues.append(Due(JOB_VERIFY, now.astimezone(SHANGHAI).date().isoformat(),
                        functools.partial(_verify, ctx)))
        return dues
    return plan


def build_scheduler(ctx: ServiceContext, owner: str | None = None) -> Scheduler:
    """The checkpoint jobs under the scheduler's leases and maintenance windows."""
    return Scheduler(ctx, [checkpoint_planner(ctx)], lease_s=ctx.settings.job_lease_s,
                     owner=owner)


def tasks(ctx: ServiceContext) -> list[PeriodicTask]:
    """The periodic task of ``autosettle serve`` (none when the scheduler is disabled); it
    runs in the settlement jobs' thread, right after their tick."""
    if not ctx.settings.scheduler_enabled:
        return []
    scheduler = build_scheduler(ctx)
    return [PeriodicTask("ledger-checkpoints", ctx.settings.scheduler_tick_s,
                         scheduler.tick)]
