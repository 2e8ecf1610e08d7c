"""Maintenance windows (announced by operators) and the operator's calendar overrides.

A job that falls in a maintenance window is *deferred* to the window's end, never failed
(see :mod:`autosettle.jobs.scheduler`). Merchants see the windows as notices, with the new
expected arrival of the money the window delays:

* money on a next-day cycle (T+1 / D+1) due on day *X* is paid by the daily run at the
  configured settlement time on *X*; if that instant is inside the window, the money is paid
  when the window ends;
* money on a same-day cycle (T+0 / D+0) due on *X* is paid by intraday runs during *X*; if
  the window runs past the end of *X*, what was not yet paid is paid when it ends;
* a delayed T-cycle payout lands on the first workday on or after the window's end.

Calendar overrides (a bank closure on a weekday, an extra working Saturday) win over the
holiday data for every later calculation; items already waiting for a day that became a
closure are simply settled by the next T run on a workday.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

from autosettle.domain.calendar import SHANGHAI, BusinessCalendar
from autosettle.domain.errors import ConflictError, ErrorCode, ValidationError
from autosettle.domain.maintenance import (
    ArrivalChange,
    CalendarOverride,
    DeferredRun,
    Notice,
    Window,
)
from autosettle.services.access import Area, require_read
from autosettle.services.audit import record
from autosettle.services.context import Principal, ServiceContext
from autosettle.services.settlement_items import business_calendar

WINDOW_LENGTH_MAX = timedelta(days=7)
WINDOW_AHEAD_MAX = timedelta(days=366)
"""How far ahead a window may start: a year is plenty to warn merchants, and a window near
the end of the calendar (year 9999) would leave nothing to defer its runs to."""
NOTE_LENGTH_MAX = 500
OVERRIDE_NOTE_LENGTH_MAX = 200
WINDOWS_LISTED_MAX = 100
SAME_DAY_CYCLES = ("T0", "D0")
ALL_CYCLES = ("T0", "T1", "D0", "D1")


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{name} must carry a timezone (e.g. +08:00)")
    return value


def announce(ctx: ServiceContext, who: Principal, starts_at: datetime, ends_at: datetime,
             note: str) -> Window:
    """Announce a window (operator). Jobs due inside it run when it ends."""
    who.require_operator()
    starts_at, ends_at = _aware(starts_at, "starts_at"), _aware(ends_at, "ends_at")
    note = note.strip()
    if not 0 < len(note) <= NOTE_LENGTH_MAX:
        raise ValidationError(f"note must be 1..{NOTE_LENGTH_MAX} characters")
    if ends_at <= starts_at:
        raise ValidationError("a window must end after it starts")
    if ends_at - starts_at > WINDOW_LENGTH_MAX:
        raise ValidationError(f"a window may last at most {WINDOW_LENGTH_MAX.days} days")
    now = ctx.now()
    if ends_at <= now:
        raise ValidationError("the window is already over")
    if starts_at - now > WINDOW_AHEAD_MAX:
        raise ValidationError(f"a window may start at most {WINDOW_AHEAD_MAX.days} days "
                              "ahead", ErrorCode.DATE_OUT_OF_RANGE)
    with ctx.db.unit_of_work() as uow:
        window_id = uow.config.add_maintenance_window(starts_at, ends_at, note, now)
        record(uow, who, "maintenance.announce", f"maintenance-windows/{window_id}", now,
               detail={"starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat()})
    return Window(window_id, starts_at, ends_at, note)


def windows(ctx: ServiceContext, ending_after: datetime | None = None) -> list[Window]:
    """Windows not over at ``ending_after`` (default: now), by start."""
    at = ending_after or ctx.now()
    with ctx.db.unit_of_work() as uow:
        found = uow.config.maintenance_windows(at)
    return found[:WINDOWS_LISTED_MAX]


def deferral(found: Sequence[Window], at: datetime) -> Window | None:
    """The window ``at`` falls in, stretched over any windows that overlap or touch it (a
    job deferred to the end of one window must not land inside the next)."""
    current = next((w for w in found if w.contains(at)), None)
    if current is None:
        return None
    end, note = current.ends_at, current.note
    changed = True
    while changed:
        changed = False
        for w in found:
            if w.starts_at <= end < w.ends_at:
                end, changed = w.ends_at, True
    return Window(current.window_id, current.starts_at, end, note)


def active(ctx: ServiceContext, at: datetime | None = None) -> Window | None:
    """The window in force at ``at`` (default: now), or None."""
    moment = at or ctx.now()
    return deferral(windows(ctx, moment), moment)


def require_open(ctx: ServiceContext, at: datetime | None = None) -> None:
    """Refuse with ``invalid_state`` while a maintenance window is in force."""
    window = active(ctx, at)
    if window is not None:
        raise ConflictError(f"maintenance window until {window.ends_at.isoformat()}: "
                            f"{window.note}")


# -- notices --------------------------------------------------------------------------------

def _local_day_start(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), SHANGHAI)


def shifted_arrival(window: Window, was: date, cycle: str, settlement_time: time,
                    calendar: BusinessCalendar) -> date:
    """When money of ``cycle`` normally arriving on ``was`` arrives, given ``window``."""
    if cycle in SAME_DAY_CYCLES:
        end_of_day = _local_day_start(was + timedelta(days=1))
        affected = window.starts_at < end_of_day < window.ends_at
    else:
        affected = window.contains(datetime.combine(was, settlement_time, SHANGHAI))
    if not affected:
        return was
    later = max(was, window.ends_at.astimezone(SHANGHAI).date())
    return calendar.workday_on_or_after(later) if cycle.startswith("T") else later


def _days(window: Window) -> list[date]:
    first = window.starts_at.astimezone(SHANGHAI).date()
    last = window.ends_at.astimezone(SHANGHAI).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def intraday_slot(at: datetime, interval_s: int) -> datetime:
    """The start of the intraday slot ``at`` falls in: slots start at Shanghai midnight
    and every ``interval_s`` seconds after it (the last one of a day may be shorter)."""
    local = at.astimezone(SHANGHAI)
    midnight = _local_day_start(local.date())
    elapsed = int((local - midnight).total_seconds())
    return midnight + timedelta(seconds=elapsed - elapsed % interval_s)


def next_intraday_slot(at: datetime, interval_s: int) -> datetime:
    """The first slot start at or after ``at``."""
    start = intraday_slot(at, interval_s)
    if start == at:
        return start
    following = start + timedelta(seconds=interval_s)
    next_midnight = _local_day_start(at.astimezone(SHANGHAI).date() + timedelta(days=1))
    return min(following, next_midnight)


def deferred_runs(window: Window, settlement_time: time, cutoff: time,
                  intraday_interval_s: int, risk_scoring_time: time | None = None
                  ) -> list[DeferredRun]:
    """The scheduled runs that fall inside ``window`` (``risk_scoring_time``: the daily
    cash-out scoring's, when it is scheduled; the daily settlement waits for it)."""
    runs: list[DeferredRun] = []
    daily = [("cutoff", cutoff), ("settle-daily", settlement_time)]
    if risk_scoring_time is not None:
        daily.append(("risk-score", risk_scoring_time))
    for day in _days(window):
        for job, at_time in daily:
            at = datetime.combine(day, at_time, SHANGHAI)
            if window.contains(at):
                runs.append(DeferredRun(job, at.astimezone(UTC), window.ends_at))
    slot = next_intraday_slot(window.starts_at, intraday_interval_s)
    if window.contains(slot):
        runs.append(DeferredRun("settle-intraday", slot.astimezone(UTC), window.ends_at))
    return sorted(runs, key=lambda r: r.scheduled_at)


def _waiting(ctx: ServiceContext, merchant_id: str, first: date,
             last: date) -> dict[tuple[str, date, str], int]:
    """Money the merchant has waiting, by (cycle, expected arrival, currency)."""
    waiting: dict[tuple[str, date, str], int] = {}
    with ctx.db.unit_of_work() as uow:
        found = (uow.claims.unsettled_net_by_due_date(merchant_id, first, last)
                 + uow.settlement.pending_payouts_by_arrival(merchant_id, first, last))
    for cycle, day, cur, amount in found:
        waiting[(cycle, day, cur)] = waiting.get((cycle, day, cur), 0) + amount
    return waiting


def notices(ctx: ServiceContext, who: Principal, merchant_id: str | None = None,
            at: datetime | None = None) -> list[Notice]:
    """Current and upcoming windows with what they delay.

    A merchant (or an operator passing ``merchant_id``) sees the new expected arrival of
    its waiting money and of its cycle's payouts on the days the window touches; an
    operator without ``merchant_id`` sees the change for every cycle.
    """
    require_read(who, Area.NOTICES, merchant_id)
    mid = merchant_id if who.is_operator else who.merchant_id
    found = windows(ctx, at)
    if not found:
        return []
    settings = ctx.settings
    with ctx.db.unit_of_work() as uow:
        calendar = business_calendar(uow)
        merchant = uow.merchants.get(mid) if mid is not None else None
    result: list[Notice] = []
    for window in found:
        days = _days(window)
        changes: list[ArrivalChange] = []
        if mid is None:
            for cycle in ALL_CYCLES:
                changes.extend(ArrivalChange(cycle, d, new, None, None) for d in days
                               if (new := shifted_arrival(window, d, cycle,
                                                          settings.settlement_time,
                                                          calendar)) != d)
        else:
            waiting = _waiting(ctx, mid, days[0], days[-1])
            own = merchant.settlement_cycle.value if merchant is not None else None
            keys = set(waiting)
            if own is not None:
                cur = merchant.currency if merchant is not None else "CNY"
                keys |= {(own, d, cur) for d in days}
            for cycle, was, cur in sorted(keys):
                new = shifted_arrival(window, was, cycle, settings.settlement_time, calendar)
                if new != was:
                    changes.append(ArrivalChange(cycle, was, new,
                                                 waiting.get((cycle, was, cur), 0), cur))
        result.append(Notice(window, deferred_runs(
            window, settings.settlement_time, settings.cutoff, settings.intraday_interval_s,
            settings.risk_scoring_time if settings.risk_scoring_enabled else None), changes))
    return result


# -- calendar overrides ---------------------------------------------------------------------

def set_calendar_override(ctx: ServiceContext, who: Principal, day: date, is_workday: bool,
                          note: str) -> CalendarOverride:
    """Declare ``day`` a workday or a closure (operator); replaces an earlier override."""
    who.require_operator()
    note = note.strip()
    if not 0 < len(note) <= OVERRIDE_NOTE_LENGTH_MAX:
        raise ValidationError(f"note must be 1..{OVERRIDE_NOTE_LENGTH_MAX} characters")
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        uow.config.set_calendar_override(day, is_workday, note)
        record(uow, who, "calendar.override", f"calendar/{day.isoformat()}", now,
               detail={"is_workday": is_workday})
    return CalendarOverride(day, is_workday, note)


def list_calendar_overrides(ctx: ServiceContext, who: Principal,
                            date_from: date | None = None,
                            date_to: date | None = None) -> list[CalendarOverride]:
    """The override table (operator), by day."""
    who.require_operator()
    with ctx.db.unit_of_work() as uow:
        return uow.config.calendar_override_notes(date_from, date_to)
