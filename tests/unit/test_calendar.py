"""Business dates, workdays and settlement cycles over real Chinese holiday data.

Dates below are the ones in chinesecalendar 1.11.0:

* Spring Festival 2026: closed Sun 02-15 .. Mon 02-23; in-lieu workdays Sat 02-14, Sat 02-28.
* National Day 2025: closed Wed 10-01 .. Wed 10-08 (10-06 is Mid-autumn); in-lieu workdays
  Sun 09-28, Sat 10-11.
* Mid-autumn + National Day 2026: closed Fri 09-25 .. Sun 09-27 and Thu 10-01 .. Wed 10-07;
  in-lieu workdays Sun 09-20, Sat 10-10.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import chinese_calendar
import pytest
from hypothesis import given
from hypothesis import strategies as st

from autosettle.domain.calendar import (
    CUTOFF_DEFAULT,
    SETTLEMENT_DATE_MIN,
    SHANGHAI,
    WARNING_YEAR_UNCOVERED,
    BusinessCalendar,
    CalendarWarning,
    Cycle,
    CycleKind,
    SettlementCycle,
    business_date,
    check_settlement_date,
    coverage_warnings,
    settlement_date,
)
from autosettle.domain.errors import ErrorCode, ValidationError

D = date.fromisoformat
T1 = SettlementCycle.T1


@pytest.fixture
def cal() -> BusinessCalendar:
    return BusinessCalendar()


# -- the holiday data we rely on ---------------------------------------------------------
@pytest.mark.parametrize(
    ("day", "workday"),
    [
        ("2026-02-14", True),  # Saturday, in-lieu workday
        ("2026-02-15", False),
        ("2026-02-17", False),  # Spring Festival day
        ("2026-02-23", False),  # Monday, still closed
        ("2026-02-24", True),
        ("2026-02-28", True),  # Saturday, in-lieu workday
        ("2025-09-28", True),  # Sunday, in-lieu workday
        ("2025-10-08", False),
        ("2025-10-11", True),  # Saturday, in-lieu workday
        ("2026-09-20", True),  # Sunday, in-lieu workday
        ("2026-09-25", False),  # Mid-autumn
        ("2026-10-07", False),
        ("2026-10-10", True),  # Saturday, in-lieu workday
        ("2026-03-07", False),  # ordinary Saturday
        ("2026-03-09", True),  # ordinary Monday
    ],
)
def test_is_workday_follows_holiday_data(cal: BusinessCalendar, day: str, workday: bool) -> None:
    assert cal.is_workday(D(day)) is workday
    assert cal.uncovered_years() == frozenset()


def test_spring_festival_2026_is_named_in_the_data() -> None:
    on_holiday, name = chinese_calendar.get_holiday_detail(D("2026-02-17"))
    assert on_holiday
    assert name == chinese_calendar.Holiday.spring_festival.value


# -- T+1 ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("business", "expected"),
    [
        # an ordinary weekend: Friday, Saturday and Sunday all pay on Monday
        ("2026-03-05", "2026-03-06"),
        ("2026-03-06", "2026-03-09"),
        ("2026-03-07", "2026-03-09"),
        ("2026-03-08", "2026-03-09"),
        # Spring Festival 2026
        ("2026-02-13", "2026-02-14"),  # Friday → in-lieu Saturday
        ("2026-02-14", "2026-02-24"),  # the in-lieu Saturday → after the holiday
        ("2026-02-15", "2026-02-24"),
        ("2026-02-20", "2026-02-24"),
        ("2026-02-23", "2026-02-24"),
        ("2026-02-27", "2026-02-28"),  # Friday → in-lieu Saturday
        ("2026-02-28", "2026-03-02"),
        # National Day 2025
        ("2025-09-26", "2025-09-28"),  # Friday → in-lieu Sunday
        ("2025-09-27", "2025-09-28"),  # Saturday → in-lieu Sunday
        ("2025-09-30", "2025-10-09"),
        ("2025-10-05", "2025-10-09"),
        ("2025-10-10", "2025-10-11"),  # Friday → in-lieu Saturday
        # Mid-autumn and National Day 2026
        ("2026-09-18", "2026-09-20"),  # Friday → in-lieu Sunday (the CLI example)
        ("2026-09-24", "2026-09-28"),
        ("2026-09-30", "2026-10-08"),
        ("2026-10-03", "2026-10-08"),
        ("2026-10-09", "2026-10-10"),  # Friday → in-lieu Saturday
        ("2026-10-10", "2026-10-12"),
    ],
)
def test_t1(cal: BusinessCalendar, business: str, expected: str) -> None:
    assert settlement_date(D(business), T1, cal) == D(expected)


def test_t1_of_a_saturday_is_not_find_workday(cal: BusinessCalendar) -> None:
    saturday = D("2026-03-07")
    assert settlement_date(saturday, T1, cal) == D("2026-03-09")
    # the library helper skips Monday: the pitfall domain.md warns about
    assert chinese_calendar.find_workday(1, saturday) == D("2026-03-10")


def test_t2_and_t3_across_spring_festival(cal: BusinessCalendar) -> None:
    assert settlement_date(D("2026-02-13"), Cycle(CycleKind.T, 2), cal) == D("2026-02-24")
    assert settlement_date(D("2026-02-13"), "T+3", cal) == D("2026-02-25")
    assert cal.nth_workday_after(D("2026-02-12"), 2) == D("2026-02-14")


# -- D+N, T+0, D+0 --------------------------------------------------------------------------
def test_d1_counts_calendar_days_across_a_holiday(cal: BusinessCalendar) -> None:
    assert settlement_date(D("2026-02-16"), SettlementCycle.D1, cal) == D("2026-02-17")
    assert settlement_date(D("2025-09-30"), SettlementCycle.D1, cal) == D("2025-10-01")
    assert settlement_date(D("2026-03-07"), "D+2", cal) == D("2026-03-09")


@pytest.mark.parametrize(
    ("business", "expected"),
    [
        ("2026-03-06", "2026-03-06"),  # a workday: same day
        ("2026-03-07", "2026-03-09"),  # Saturday: next workday
        ("2026-02-14", "2026-02-14"),  # in-lieu Saturday: same day
        ("2026-02-18", "2026-02-24"),  # holiday: after it
    ],
)
def test_t0(cal: BusinessCalendar, business: str, expected: str) -> None:
    assert settlement_date(D(business), SettlementCycle.T0, cal) == D(expected)


def test_d0_is_the_business_date(cal: BusinessCalendar) -> None:
    for day in ("2026-02-17", "2026-03-07", "2026-03-09"):
        assert settlement_date(D(day), SettlementCycle.D0, cal) == D(day)


# -- cut-off -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (datetime(2026, 3, 6, 22, 59, 59, tzinfo=SHANGHAI), "2026-03-06"),
        (datetime(2026, 3, 6, 22, 59, 59, 999999, tzinfo=SHANGHAI), "2026-03-06"),
        (datetime(2026, 3, 6, 23, 0, 0, tzinfo=SHANGHAI), "2026-03-07"),
        (datetime(2026, 3, 6, 23, 59, 59, tzinfo=SHANGHAI), "2026-03-07"),
        (datetime(2026, 3, 7, 0, 0, 0, tzinfo=SHANGHAI), "2026-03-07"),
        # UTC-aware input: Shanghai is UTC+8
        (datetime(2026, 3, 6, 14, 59, 59, tzinfo=UTC), "2026-03-06"),
        (datetime(2026, 3, 6, 15, 0, 0, tzinfo=UTC), "2026-03-07"),
        (datetime(2026, 3, 5, 16, 30, tzinfo=UTC), "2026-03-06"),  # 00:30 local
        (datetime(2026, 3, 6, 10, 0, tzinfo=timezone(timedelta(hours=-5))), "2026-03-07"),
    ],
)
def test_business_date_cutoff(at: datetime, expected: str) -> None:
    assert business_date(at) == D(expected)


def test_cutoff_just_before_and_after_drives_t1(cal: BusinessCalendar) -> None:
    before = business_date(datetime(2026, 2, 12, 22, 59, 59, tzinfo=SHANGHAI))
    after = business_date(datetime(2026, 2, 12, 23, 0, 0, tzinfo=SHANGHAI))
    assert settlement_date(before, T1, cal) == D("2026-02-13")
    assert settlement_date(after, T1, cal) == D("2026-02-14")  # Friday's → in-lieu Saturday


def test_custom_and_midnight_cutoff() -> None:
    at = datetime(2026, 3, 6, 22, 30, tzinfo=SHANGHAI)
    assert business_date(at, time(22, 0)) == D("2026-03-07")
    assert business_date(at, time(0, 0)) == D("2026-03-06")
    assert time(23, 0) == CUTOFF_DEFAULT


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValidationError):
        business_date(datetime(2026, 3, 6, 12, 0))
    with pytest.raises(ValidationError):
        business_date(datetime(2026, 3, 6, tzinfo=SHANGHAI), time(23, tzinfo=UTC))


@given(st.datetimes(min_value=datetime(2004, 1, 1), max_value=datetime(2040, 12, 31),
                    timezones=st.just(UTC)))
def test_business_date_is_local_date_or_next(at: datetime) -> None:
    local = at.astimezone(SHANGHAI)
    expected = local.date() + timedelta(days=1 if local.time() >= time(23) else 0)
    assert business_date(at) == expected


# -- years outside the data ---------------------------------------------------------------
def test_uncovered_year_falls_back_to_weekdays_and_reports_it() -> None:
    cal = BusinessCalendar()
    assert not BusinessCalendar.covers(2031)
    assert BusinessCalendar.covers(2026)
    assert cal.is_workday(D("2031-10-01"))  # National Day, unknown: Wednesday counts
    assert settlement_date(D("2031-10-03"), T1, cal) == D("2031-10-06")
    assert cal.uncovered_years() == frozenset({2031})
    [alert] = cal.alerts()
    assert alert == CalendarWarning(WARNING_YEAR_UNCOVERED, 2031, alert.message)
    assert "2031" in alert.message


def test_t1_from_the_last_covered_day_into_an_uncovered_year() -> None:
    cal = BusinessCalendar()
    last = max(y for y in range(2020, 2040) if BusinessCalendar.covers(y))
    assert settlement_date(date(last, 12, 31), T1, cal) > date(last, 12, 31)
    assert cal.uncovered_years() == frozenset({last + 1})


def test_coverage_warnings_are_pure() -> None:
    days = [D("2026-12-31") + timedelta(days=i) for i in range(3)]
    warnings = coverage_warnings(days)
    assert [w.year for w in warnings] == [2027]
    assert coverage_warnings([D("2026-01-01")]) == []


def test_override_wins_over_uncovered_year_without_alert() -> None:
    cal = BusinessCalendar({D("2031-10-01"): False})
    assert not cal.is_workday(D("2031-10-01"))
    assert cal.uncovered_years() == frozenset()


# -- operator overrides ---------------------------------------------------------------------
def test_override_closing_a_workday_pushes_t1() -> None:
    closed = BusinessCalendar({D("2026-03-09"): False})  # a bank closure on Monday
    assert not closed.is_workday(D("2026-03-09"))
    assert settlement_date(D("2026-03-06"), T1, closed) == D("2026-03-10")
    assert settlement_date(D("2026-03-09"), SettlementCycle.T0, closed) == D("2026-03-10")
    # the D cycles ignore workdays
    assert settlement_date(D("2026-03-08"), SettlementCycle.D1, closed) == D("2026-03-09")


def test_override_opening_a_saturday() -> None:
    cal = BusinessCalendar().with_overrides({D("2026-03-07"): True})
    assert settlement_date(D("2026-03-06"), T1, cal) == D("2026-03-07")


def test_overrides_are_read_only_and_validated() -> None:
    table = {D("2026-03-09"): False}
    cal = BusinessCalendar(table)
    table[D("2026-03-10")] = False  # the caller's dict is copied
    assert cal.is_workday(D("2026-03-10"))
    with pytest.raises(TypeError):
        cal.overrides[D("2026-03-11")] = False  # type: ignore[index]
    with pytest.raises(ValidationError):
        BusinessCalendar({datetime(2026, 3, 9, tzinfo=SHANGHAI): False})
    with pytest.raises(ValidationError):
        BusinessCalendar({D("2026-03-09"): 0})  # type: ignore[dict-item]


def test_a_calendar_without_workdays_fails_loudly() -> None:
    year = {D("2026-01-01") + timedelta(days=i): False for i in range(500)}
    with pytest.raises(ValidationError):
        BusinessCalendar(year).nth_workday_after(D("2025-12-31"), 1)


@pytest.mark.parametrize("n", [0, -1, True])
def test_nth_workday_after_needs_n_at_least_one(cal: BusinessCalendar, n: int) -> None:
    with pytest.raises(ValidationError):
        cal.nth_workday_after(D("2026-03-06"), n)


def test_datetime_is_not_a_business_date(cal: BusinessCalendar) -> None:
    with pytest.raises(ValidationError):
        cal.is_workday(datetime(2026, 3, 6, tzinfo=SHANGHAI))


@given(st.dates(min_value=date(2004, 1, 1), max_value=date(2035, 12, 31)),
       st.integers(min_value=1, max_value=6))
def test_nth_workday_after_properties(d: date, n: int) -> None:
    cal = BusinessCalendar()
    result = cal.nth_workday_after(d, n)
    assert result > d
    assert cal.is_workday(result)
    between = [d + timedelta(days=i) for i in range(1, (result - d).days + 1)]
    assert sum(cal.is_workday(x) for x in between) == n
    if n == 1:
        assert settlement_date(d, T1, cal) == result


@given(st.dates(min_value=date(2004, 1, 1), max_value=date(2035, 12, 31)),
       st.integers(min_value=0, max_value=30))
def test_cycle_properties(d: date, days: int) -> None:
    cal = BusinessCalendar()
    assert settlement_date(d, Cycle(CycleKind.D, days), cal) == d + timedelta(days=days)
    t0 = settlement_date(d, SettlementCycle.T0, cal)
    assert t0 >= d
    assert cal.is_workday(t0)
    assert (t0 == d) == cal.is_workday(d)


# -- cycles ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("T+1", SettlementCycle.T1),
        ("t1", SettlementCycle.T1),
        ("T1", SettlementCycle.T1),
        (" t + 1 ", SettlementCycle.T1),
        ("T+0", SettlementCycle.T0),
        ("d0", SettlementCycle.D0),
        ("D+1", SettlementCycle.D1),
    ],
)
def test_settlement_cycle_parse(text: str, expected: SettlementCycle) -> None:
    assert SettlementCycle.parse(text) is expected


@pytest.mark.parametrize("text", ["", "T", "X1", "T-1", "T+1.5", "TT1", "T+31", "1T"])
def test_cycle_parse_refuses(text: str) -> None:
    with pytest.raises(ValidationError):
        Cycle.parse(text)


def test_general_cycles() -> None:
    assert Cycle.parse("T+3") == Cycle(CycleKind.T, 3)
    assert str(Cycle.parse("d + 2")) == "D2"
    assert SettlementCycle.T1.cycle == Cycle(CycleKind.T, 1)
    assert SettlementCycle.D0.is_same_day
    assert not SettlementCycle.T1.is_same_day
    assert SettlementCycle.T1 == "T1"
    with pytest.raises(ValidationError):
        SettlementCycle.parse("T+3")
    with pytest.raises(ValidationError):
        Cycle(CycleKind.T, -1)


# -- the edges of the calendar and the dates a run may carry (issue 9, defect 2) -----------

@given(st.dates(min_value=date(9999, 11, 1)),
       st.sampled_from([*SettlementCycle, Cycle(CycleKind.T, 30), Cycle(CycleKind.D, 30)]))
def test_near_the_last_date_an_answer_or_a_typed_error_never_overflow(
        d: date, cycle: SettlementCycle | Cycle) -> None:
    cal = BusinessCalendar()
    result: date | ValidationError
    try:
        result = settlement_date(d, cycle, cal)
    except ValidationError as exc:
        result = exc
    if isinstance(result, ValidationError):
        assert result.code is ErrorCode.DATE_OUT_OF_RANGE
        assert "9999-12-31" in result.message
    else:
        assert d <= result <= date.max


@pytest.mark.parametrize("cycle", ["T1", "D1", "T+3"])
def test_the_settlement_date_after_the_last_date_is_date_out_of_range(cycle: str) -> None:
    with pytest.raises(ValidationError) as caught:
        settlement_date(date.max, cycle, BusinessCalendar())
    assert caught.value.code is ErrorCode.DATE_OUT_OF_RANGE
    assert settlement_date(date.max, "D0", BusinessCalendar()) == date.max
    assert settlement_date(date.max, "T0", BusinessCalendar()) == date.max  # a Friday


def test_business_date_after_the_cutoff_of_the_last_date_is_date_out_of_range() -> None:
    last = datetime(9999, 12, 31, 22, 59, tzinfo=SHANGHAI)
    assert business_date(last) == date.max
    with pytest.raises(ValidationError) as caught:
        business_date(last.replace(hour=23))
    assert caught.value.code is ErrorCode.DATE_OUT_OF_RANGE


def test_a_run_or_export_may_be_dated_up_to_the_current_business_date() -> None:
    today = D("2026-09-18")
    assert check_settlement_date(today, today) == today
    assert check_settlement_date(D("2026-09-17"), today) == D("2026-09-17")
    assert check_settlement_date(SETTLEMENT_DATE_MIN, today) == SETTLEMENT_DATE_MIN
    for day, words in ((D("2026-09-19"), "after the current business date 2026-09-18"),
                       (date.max, "9999-12-31 is in the future"),
                       (D("2003-12-31"), "before 2004-01-01"),
                       (date.min, "before 2004-01-01")):
        with pytest.raises(ValidationError) as caught:
            check_settlement_date(day, today, "a payout export")
        assert caught.value.code is ErrorCode.DATE_OUT_OF_RANGE
        assert words in caught.value.message and "a payout export" in caught.value.message
    with pytest.raises(ValidationError):
        check_settlement_date(datetime(2026, 9, 18, tzinfo=SHANGHAI), today)


def test_the_first_allowed_date_is_the_first_year_of_the_holiday_data() -> None:
    assert BusinessCalendar.covers(SETTLEMENT_DATE_MIN.year)
    assert not BusinessCalendar.covers(SETTLEMENT_DATE_MIN.year - 1)
