"""The time rules of maintenance windows, intraday slots and the cut-off (no database)."""

from __future__ import annotations

from datetime import date, time, timedelta

from jobtools import shanghai

from autosettle.domain.calendar import BusinessCalendar
from autosettle.domain.maintenance import Window
from autosettle.jobs.settlement import intraday_key
from autosettle.services.alerts import cutoff_instant
from autosettle.services.maintenance import (
    deferral,
    deferred_runs,
    intraday_slot,
    next_intraday_slot,
    shifted_arrival,
)

CAL = BusinessCalendar()
TWO_AM = time(2, 0)


def window(start: tuple[int, ...], end: tuple[int, ...], wid: int = 1) -> Window:
    return Window(wid, shanghai(*start), shanghai(*end), "upgrade")


def test_a_job_is_deferred_past_windows_that_overlap_or_touch() -> None:
    first = window((2026, 10, 1, 1), (2026, 10, 1, 3), 1)
    touching = window((2026, 10, 1, 3), (2026, 10, 1, 4), 2)
    overlapping = window((2026, 10, 1, 3, 30), (2026, 10, 1, 6), 3)
    later = window((2026, 10, 1, 8), (2026, 10, 1, 9), 4)
    found = [first, touching, overlapping, later]
    merged = deferral(found, shanghai(2026, 10, 1, 2))
    assert merged is not None and merged.ends_at == shanghai(2026, 10, 1, 6)
    assert deferral(found, shanghai(2026, 10, 1, 7)) is None
    assert deferral(found, shanghai(2026, 10, 1, 1)) is not None  # the start is inside
    assert deferral(found, shanghai(2026, 10, 1, 9)) is None      # the end is not


def test_new_expected_arrivals() -> None:
    overnight = window((2026, 9, 20, 1, 30), (2026, 9, 21, 0, 30))
    sunday, monday = date(2026, 9, 20), date(2026, 9, 21)
    # the daily run at 02:00 on Sunday falls inside: paid when the window ends, on Monday
    assert shifted_arrival(overnight, sunday, "T1", TWO_AM, CAL) == monday
    assert shifted_arrival(overnight, sunday, "D1", TWO_AM, CAL) == monday
    # same-day money of Sunday: the window runs past midnight, so it slips to Monday
    assert shifted_arrival(overnight, sunday, "D0", TWO_AM, CAL) == monday
    assert shifted_arrival(overnight, monday, "T1", TWO_AM, CAL) == monday  # untouched
    short = window((2026, 9, 20, 1, 30), (2026, 9, 20, 3))
    assert shifted_arrival(short, sunday, "T1", TWO_AM, CAL) == sunday  # same day, later
    assert shifted_arrival(short, sunday, "D0", TWO_AM, CAL) == sunday
    # a T-cycle payout delayed into a holiday lands on the next workday
    national_day = window((2026, 9, 30, 1), (2026, 10, 1, 6))
    assert shifted_arrival(national_day, date(2026, 9, 30), "T1", TWO_AM, CAL) == \
        date(2026, 10, 8)
    assert shifted_arrival(national_day, date(2026, 9, 30), "D1", TWO_AM, CAL) == \
        date(2026, 10, 1)


def test_deferred_runs_of_a_window() -> None:
    overnight = window((2026, 9, 20, 1, 30), (2026, 9, 21, 0, 30))
    runs = deferred_runs(overnight, TWO_AM, time(23, 0), 1800)
    assert [(r.job, r.scheduled_at) for r in runs] == [
        ("settle-intraday", shanghai(2026, 9, 20, 1, 30)),
        ("settle-daily", shanghai(2026, 9, 20, 2)),
        ("cutoff", shanghai(2026, 9, 20, 23)),
    ]
    assert all(r.runs_at == overnight.ends_at for r in runs)
    tiny = window((2026, 9, 20, 10, 1), (2026, 9, 20, 10, 20))
    assert deferred_runs(tiny, TWO_AM, time(23, 0), 1800) == []  # no slot starts inside


def test_the_cash_out_scoring_is_listed_when_it_is_scheduled() -> None:
    """The daily settlement waits for the scoring of the day before: a window over 23:30
    delays it too, and the merchant's notice says so."""
    evening = window((2026, 9, 20, 23, 10), (2026, 9, 21, 0, 10))
    scored = deferred_runs(evening, TWO_AM, time(23, 0), 1800, time(23, 30))
    assert [(r.job, r.scheduled_at) for r in scored] == [
        ("risk-score", shanghai(2026, 9, 20, 23, 30)),
        ("settle-intraday", shanghai(2026, 9, 20, 23, 30)),
    ]
    assert [r.job for r in deferred_runs(evening, TWO_AM, time(23, 0), 1800)] == [
        "settle-intraday"]


def test_intraday_slots_start_at_shanghai_midnight() -> None:
    at = shanghai(2026, 10, 3, 10, 7, 12)
    assert intraday_slot(at, 1800) == shanghai(2026, 10, 3, 10, 0)
    assert next_intraday_slot(at, 1800) == shanghai(2026, 10, 3, 10, 30)
    assert next_intraday_slot(shanghai(2026, 10, 3, 10, 30), 1800) == \
        shanghai(2026, 10, 3, 10, 30)
    # an interval that does not divide the day: the last slot is short
    assert next_intraday_slot(shanghai(2026, 10, 3, 23, 59), 7 * 3600) == \
        shanghai(2026, 10, 4)
    assert intraday_key(shanghai(2026, 10, 3, 10, 0)) == "2026-10-03:T0+D0@100000"
    assert intraday_key(shanghai(2026, 10, 3, 10, 0) - timedelta(hours=8)) == \
        "2026-10-03:T0+D0@020000"


def test_the_cutoff_instant_begins_the_business_date() -> None:
    assert cutoff_instant(date(2026, 9, 19), time(23, 0)) == shanghai(2026, 9, 18, 23)
    assert cutoff_instant(date(2026, 9, 19), time(0, 0)) == shanghai(2026, 9, 19)
