"""Calendar: the behaviour mutation testing found unchecked (see docs/testing.md).

The bound on the workday search, timezone objects that do not know their offset, and the
words of every refusal.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, tzinfo

import pytest

from autosettle.domain.calendar import (
    CYCLE_DAYS_MAX,
    WARNING_YEAR_UNCOVERED,
    WORKDAY_SEARCH_DAYS_MAX,
    BusinessCalendar,
    CalendarWarning,
    Cycle,
    CycleKind,
    SettlementCycle,
    as_cycle,
    business_date,
    coverage_warning,
)
from autosettle.domain.errors import ErrorCode, ValidationError

START = date(2026, 3, 2)  # a Monday


class _NoOffset(tzinfo):
    """A tzinfo that does not know its offset: as good as no timezone."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


def _refusal(action: Callable[[], object]) -> ValidationError:
    with pytest.raises(ValidationError) as excinfo:
        action()
    return excinfo.value


def _closed(first: date, days: int) -> dict[date, bool]:
    return {first + timedelta(i): False for i in range(days)}


# -- business dates ----------------------------------------------------------------------------
def test_a_timezone_without_an_offset_is_refused() -> None:
    at = datetime(2026, 1, 5, 12, 0, tzinfo=_NoOffset())
    assert _refusal(lambda: business_date(at)).message \
        == "datetime 2026-01-05T12:00:00 has no timezone"


@pytest.mark.parametrize(
    ("action", "message"),
    [(lambda: business_date("2026-01-05"),  # type: ignore[arg-type]
      "expected a datetime, got str"),
     (lambda: business_date(datetime(2026, 1, 5, tzinfo=UTC), time(22, tzinfo=UTC)),
      "cut-off must be a naive wall-clock time, got "
      "datetime.time(22, 0, tzinfo=datetime.timezone.utc)"),
     (lambda: BusinessCalendar().is_workday(datetime(2026, 1, 5, tzinfo=UTC)),
      "expected a business date, got "
      "datetime.datetime(2026, 1, 5, 0, 0, tzinfo=datetime.timezone.utc)"),
     (lambda: BusinessCalendar({START: 1}),  # type: ignore[dict-item]
      "override for datetime.date(2026, 3, 2) must be a bool, got 1"),
     (lambda: BusinessCalendar().nth_workday_after(START, 0), "n must be an int >= 1, got 0"),
     (lambda: Cycle("T", 1), "cycle kind must be a CycleKind, got 'T'"),  # type: ignore[arg-type]
     (lambda: Cycle(CycleKind.T, CYCLE_DAYS_MAX + 1),
      f"cycle days must be 0..{CYCLE_DAYS_MAX}, got {CYCLE_DAYS_MAX + 1}"),
     (lambda: Cycle(CycleKind.T, True), f"cycle days must be 0..{CYCLE_DAYS_MAX}, got True"),
     (lambda: Cycle(CycleKind.D, "1"),  # type: ignore[arg-type]
      f"cycle days must be 0..{CYCLE_DAYS_MAX}, got '1'"),
     (lambda: Cycle.parse("X+1"), "not a settlement cycle: 'X+1' (expected e.g. T+1, D0)"),
     (lambda: Cycle.parse(1),  # type: ignore[arg-type]
      "not a settlement cycle: 1 (expected e.g. T+1, D0)"),
     (lambda: SettlementCycle.parse("T+2"),
      "unsupported settlement cycle 'T+2': one of T0, T1, D0, D1"),
     (lambda: as_cycle(1), "not a settlement cycle: 1")],  # type: ignore[arg-type]
)
def test_refusals_name_what_was_wrong(action: Callable[[], object], message: str) -> None:
    error = _refusal(action)
    assert error.code is ErrorCode.VALIDATION_FAILED
    assert error.message == message


def test_midnight_cutoff_means_no_shift() -> None:
    last_second = datetime(2026, 1, 5, 15, 59, 59, tzinfo=UTC)  # 23:59:59 in Shanghai
    assert business_date(last_second, time(0, 0)) == date(2026, 1, 5)
    assert business_date(last_second, time(0, 0, 1)) == date(2026, 1, 6)


def test_coverage_warning_tells_the_operator_what_to_do() -> None:
    assert coverage_warning(2031) == CalendarWarning(
        WARNING_YEAR_UNCOVERED, 2031,
        "no holiday data for 2031: workdays fall back to Monday–Friday; "
        "add operator overrides or upgrade chinesecalendar")


# -- the bounded workday search ----------------------------------------------------------------
def test_a_workday_right_after_the_longest_closure_is_found() -> None:
    closed = _closed(START + timedelta(1), WORKDAY_SEARCH_DAYS_MAX)
    after = START + timedelta(WORKDAY_SEARCH_DAYS_MAX + 1)
    cal = BusinessCalendar({**closed, after: True})
    assert cal.nth_workday_after(START, 1) == after


def test_the_closure_count_restarts_after_each_workday() -> None:
    # T+2: one workday, then the longest closure, then the second workday.
    first = START + timedelta(1)
    closed = _closed(first + timedelta(1), WORKDAY_SEARCH_DAYS_MAX)
    second = first + timedelta(WORKDAY_SEARCH_DAYS_MAX + 1)
    cal = BusinessCalendar({first: True, **closed, second: True})
    assert cal.nth_workday_after(START, 2) == second


def test_a_closure_longer_than_the_bound_is_refused_and_named() -> None:
    closed = _closed(START + timedelta(1), WORKDAY_SEARCH_DAYS_MAX + 1)
    error = _refusal(lambda: BusinessCalendar(closed).nth_workday_after(START, 1))
    assert error.message == f"no workday within {WORKDAY_SEARCH_DAYS_MAX} days after 2026-03-02"
