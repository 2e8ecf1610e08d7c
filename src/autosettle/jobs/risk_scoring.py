"""The cash-out scoring of each closed business date as a scheduler job (docs/risk.md,
"The scheduled scoring job").

==============  ===============================================  ==========================
job             when (Asia/Shanghai)                             run key
==============  ===============================================  ==========================
``risk-score``  at ``AUTOSETTLE_RISK_SCORING_TIME`` (23:30), the   the business date scored
                first such time at or after the date's cut-off;
                missed dates caught up, oldest first
==============  ===============================================  ==========================

**Before settlement.** ``settle-daily`` of date S settles the T+1/D+1 items of business
dates up to S-1 (a T+1 or D+1 settlement date is at least one day after the business
date); it waits (``Due.after``) for ``risk-score`` of S-1 (:func:`gate`), and each date's
scoring waits for the one before it, so when S's run starts every date it can settle has
been scored and its merchant-days on review are held. The planner runs ahead of the daily
settlement planner in the same scheduler (jobs/settlement.py), so a tick that finds both
due (a restart after downtime) scores first and settles in the same tick. Same-day T+0/D+0
items are paid during their business day, before it can be scored: the scoring cannot
hold them.

A run is idempotent: its lease makes it run once per date, and scoring a date again (a run
taken over after a crash, ``autosettle risk score``) changes nothing: same scores, no second
hold, no second alert (services/risk_scoring.py). A run that fails is retried after a lease's
length; settlement waits for it meanwhile.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from autosettle.domain.calendar import SHANGHAI, business_date
from autosettle.jobs.scheduler import Due, Planner
from autosettle.services import leases, risk_scoring
from autosettle.services.context import SYSTEM, ServiceContext

JOB_RISK_SCORE = "risk-score"
ONE_DAY = timedelta(days=1)


def scoring_moment(day: date, cutoff: time, at: time) -> datetime:
    """When business date ``day`` is scored: the first ``at`` (Shanghai) at or after the
    date's end, its cut-off (``time(0, 0)``: midnight at the end of ``day``)."""
    if cutoff == time.min:
        end = datetime.combine(day + ONE_DAY, time.min, SHANGHAI)
    else:
        end = datetime.combine(day, cutoff, SHANGHAI)
    moment = datetime.combine(end.date(), at, SHANGHAI)
    return moment if moment >= end else moment + ONE_DAY


def latest_scorable(now: datetime, cutoff: time, at: time) -> date:
    """The newest business date whose scoring moment has come."""
    closed = business_date(now, cutoff) - ONE_DAY  # the newest date that has ended
    if scoring_moment(closed, cutoff, at) <= now:
        return closed
    return closed - ONE_DAY  # its moment is less than a day after its end: passed


def _score(ctx: ServiceContext, day: date) -> Mapping[str, Any]:
    scores = risk_scoring.score_day(ctx, SYSTEM, day)
    return {"date": day.isoformat(), "count": len(scores),
            "on_review": sum(s.on_review for s in scores)}


def _dates_due(ctx: ServiceContext, latest: date) -> list[date]:
    """From the day after the last scored date to ``latest``, at most ``catchup_days_max``
    days (also when the job never ran: a settlement run catching up may wait for them)."""
    first = latest - timedelta(days=ctx.settings.catchup_days_max - 1)
    last = leases.last_done_key(ctx, JOB_RISK_SCORE)
    if last is not None:
        first = max(first, date.fromisoformat(last[:10]) + ONE_DAY)
    return [first + timedelta(days=n) for n in range((latest - first).days + 1)]


def scoring_planner(ctx: ServiceContext) -> Planner:
    """Each closed business date once, oldest first, each after the one before it."""
    def plan(now: datetime) -> list[Due]:
        settings = ctx.settings
        latest = latest_scorable(now, settings.cutoff, settings.risk_scoring_time)
        dues: list[Due] = []
        previous: date | None = None
        for day in _dates_due(ctx, latest):
            after = None if previous is None else (JOB_RISK_SCORE, previous.isoformat())
            dues.append(Due(JOB_RISK_SCORE, day.isoformat(),
                            functools.partial(_score, ctx, day), after=after))
            previous = day
        return dues
    return plan


def planners(ctx: ServiceContext) -> list[Planner]:
    """The scoring planner, or none when ``risk_scoring_enabled`` is off."""
    return [scoring_planner(ctx)] if ctx.settings.risk_scoring_enabled else []


def gate(ctx: ServiceContext, run_date: date) -> tuple[str, str] | None:
    """What the T+1/D+1 settlement run of ``run_date`` waits for: the scoring of the day
    before (the newest business date it can settle); nothing when scoring is off."""
    if not ctx.settings.risk_scoring_enabled:
        return None
    return JOB_RISK_SCORE, (run_date - ONE_DAY).isoformat()
