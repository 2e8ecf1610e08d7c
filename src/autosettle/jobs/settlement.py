"""The settlement jobs of ``autosettle serve``: cut-off, daily T+1/D+1 settlement, intraday
T+0/D+0 settlement, and the payout file after each settlement run.

==================  =======================================  ==============================
job                 when (Asia/Shanghai)                     run key
==================  =======================================  ==============================
``cutoff``          at the cut-off (``AUTOSETTLE_CUTOFF``)   the business date that begins
``settle-daily``    every day at ``AUTOSETTLE_SETTLEMENT_    the settlement date
                    TIME``; missed days caught up at start;
                    after ``risk-score`` of the day before
``payouts-daily``   after ``settle-daily`` of the same date  the settlement date
``settle-intraday`` every ``AUTOSETTLE_INTRADAY_INTERVAL_S``  ``<date>:T0+D0@<HHMMSS>``
                    (T+0 only settles on workdays)
``payouts-intraday`` after ``settle-intraday`` of the slot   the slot's key
==================  =======================================  ==============================

The cash-out scoring job ``risk-score`` (jobs/risk_scoring.py) is planned in the same
scheduler, ahead of the daily settlement.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from autosettle.domain.calendar import SHANGHAI, business_date
from autosettle.jobs import risk_scoring as risk_jobs
from autosettle.jobs.runner import PeriodicTask
from autosettle.jobs.scheduler import Due, Planner, Scheduler
from autosettle.services import alerts, leases, maintenance, payouts, settlement
from autosettle.services.context import ServiceContext
from autosettle.services.leases import summary_counts
from autosettle.services.settlement import NEXT_DAY, SAME_DAY

JOB_CUTOFF = "cutoff"
JOB_DAILY = "settle-daily"
JOB_DAILY_PAYOUTS = "payouts-daily"
JOB_INTRADAY = "settle-intraday"
JOB_INTRADAY_PAYOUTS = "payouts-intraday"


def _settle(ctx: ServiceContext, run_date: date, cycles: tuple[str, ...],
            run_key: str | None) -> dict[str, Any]:
    return summary_counts(settlement.settle(ctx, run_date, cycles, run_key))


def _export(ctx: ServiceContext, on: date) -> dict[str, Any]:
    file = payouts.export_payouts(ctx, on)
    return {"date": on.isoformat(), "file": file.csv_path.name, "count": file.count,
            "total_minor": file.total_minor}


def _cutoff(ctx: ServiceContext, day: date) -> Mapping[str, Any]:
    return alerts.cutoff_check(ctx, day)


def cutoff_planner(ctx: ServiceContext) -> Planner:
    """Once per business date, at the cut-off that starts it."""
    def plan(now: datetime) -> list[Due]:
        day = business_date(now, ctx.settings.cutoff)
        return [Due(JOB_CUTOFF, day.isoformat(), functools.partial(_cutoff, ctx, day),
                    supersedes=True)]
    return plan


def _dates_due(ctx: ServiceContext, job_name: str, latest: date) -> list[date]:
    """From the day after the last finished run to ``latest``, at most
    ``catchup_days_max`` days; just ``latest`` when the job never ran."""
    bound = ctx.settings.catchup_days_max
    last = leases.last_done_key(ctx, job_name)
    first = latest
    if last is not None:
        first = date.fromisoformat(last[:10]) + timedelta(days=1)
    first = max(first, latest - timedelta(days=bound - 1))
    return [first + timedelta(days=n) for n in range((latest - first).days + 1)]


def daily_planner(ctx: ServiceContext) -> Planner:
    """T+1/D+1 at the settlement time of each date, then its payout file; missed dates
    (the process was down) are caught up oldest first."""
    def plan(now: datetime) -> list[Due]:
        local = now.astimezone(SHANGHAI)
        latest = local.date()
        if local.time() < ctx.settings.settlement_time:
            latest -= timedelta(days=1)
        dues: list[tuple[date, int, Due]] = []
        for day in _dates_due(ctx, JOB_DAILY, latest):
            dues.append((day, 0, Due(JOB_DAILY, day.isoformat(), functools.partial(
                _settle, ctx, day, NEXT_DAY, None), after=risk_jobs.gate(ctx, day),
                supersedes=True)))
        for day in _dates_due(ctx, JOB_DAILY_PAYOUTS, latest):
            key = day.isoformat()
            dues.append((day, 1, Due(JOB_DAILY_PAYOUTS, key, functools.partial(
                _export, ctx, day), after=(JOB_DAILY, key), supersedes=True)))
        return [due for _, _, due in sorted(dues, key=lambda d: (d[0], d[1]))]
    return plan


def intraday_key(slot: datetime) -> str:
    local = slot.astimezone(SHANGHAI)
    return f"{local.date().isoformat()}:{'+'.join(SAME_DAY)}@{local:%H%M%S}"


def intraday_planner(ctx: ServiceContext) -> Planner:
    """T+0/D+0 every ``intraday_interval_s``, then the payout file. A missed slot needs no
    catch-up: the next run settles everything due by its date."""
    def plan(now: datetime) -> list[Due]:
        slot = maintenance.intraday_slot(now, ctx.settings.intraday_interval_s)
        day = slot.astimezone(SHANGHAI).date()
        key = intraday_key(slot)
        return [Due(JOB_INTRADAY, key, functools.partial(_settle, ctx, day, SAME_DAY, key),
                    supersedes=True),
                Due(JOB_INTRADAY_PAYOUTS, key, functools.partial(_export, ctx, day),
                    after=(JOB_INTRADAY, key), supersedes=True)]
    return plan


def build_scheduler(ctx: ServiceContext, owner: str | None = None) -> Scheduler:
    """The scheduler with every settlement job, and the cash-out scoring ahead of the daily
    settlement that waits for it (jobs/risk_scoring.py)."""
    return Scheduler(ctx, [cutoff_planner(ctx), *risk_jobs.planners(ctx), daily_planner(ctx),
                           intraday_planner(ctx)],
                     lease_s=ctx.settings.job_lease_s, owner=owner)


def tasks(ctx: ServiceContext) -> list[PeriodicTask]:
    """The periodic task of ``autosettle serve`` (none when the scheduler is disabled)."""
    if not ctx.settings.scheduler_enabled:
        return []
    scheduler = build_scheduler(ctx)
    return [PeriodicTask("settlement-scheduler", ctx.settings.scheduler_tick_s,
                         scheduler.tick)]
