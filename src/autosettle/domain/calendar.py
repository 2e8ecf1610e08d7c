"""Business dates, workdays and settlement cycles (T+N, D+N).

* The **business date** of a transaction is its date in Asia/Shanghai, except that at or
  after the day's cut-off (日切, default 23:00) it belongs to the next calendar day.
* A **workday** comes from an operator override table first (e.g. a bank closure), then
  from the ``chinesecalendar`` package (public holidays and in-lieu weekend workdays, 调休).
  For a year the package does not cover, Monday–Friday is used instead and the year is
  recorded so that the caller can raise an operator alert: settlement never crashes here.
* **T+N** is the N-th workday strictly after the business date; **D+N** is N calendar days
  after it; **T+0** is the business date if it is a workday, else the next workday; **D+0**
  is the business date.

>>> cal = BusinessCalendar()
>>> settlement_date(date(2026, 9, 18), SettlementCycle.T1, cal)  # Friday → in-lieu Sunday
datetime.date(2026, 9, 20)
>>> str(Cycle.parse("t+2"))
'T2'

Pure: no I/O and no clock; the only imports are the standard library and
``chinese_calendar``.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from functools import cache
from types import MappingProxyType

import chinese_calendar

from autosettle.domain.errors import ErrorCode, ValidationError

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
"""The zone business dates are counted in."""

CUTOFF_DEFAULT = time(23, 0)
"""The day's cut-off (日切): at or after it a transaction belongs to the next day."""

CYCLE_DAYS_MAX = 30
"""The largest N accepted in a T+N / D+N cycle."""

WORKDAY_SEARCH_DAYS_MAX = 400
"""How many calendar days we look ahead for one workday before giving up (a bound, TIGER
style): more than a year with no workday means the override table is wrong."""

WARNING_YEAR_UNCOVERED = "calendar_year_uncovered"

SETTLEMENT_DATE_MIN = date(2004, 1, 1)
"""The earliest date a settlement run or a payout export may carry: the first day of the
holiday data (``chinesecalendar`` starts in 2004). Nothing this platform captured can be due
earlier; an older date is a typo (``0026-09-18``), refused rather than run on a Monday–Friday
guess that would also raise a calendar alert for a year nobody meant."""


def _plus_days(d: date, days: int) -> date:
    """``d`` plus ``days`` days; past :data:`datetime.date.max` a typed error
    (``date_out_of_range``) instead of :class:`OverflowError`."""
    try:
        return d + timedelta(days=days)
    except OverflowError:
        raise ValidationError(
            f"{d.isoformat()} + {days} day(s) is past the last date the calendar can "
            f"count ({date.max.isoformat()})", ErrorCode.DATE_OUT_OF_RANGE) from None


def business_date(at: datetime, cutoff: time = CUTOFF_DEFAULT) -> date:
    """The business date of an instant: its Shanghai date, plus one day at/after ``cutoff``.

    ``at`` must be timezone-aware. ``cutoff`` is a naive Shanghai wall-clock time;
    ``time(0, 0)`` means plain midnight (no shift).

    >>> utc = zoneinfo.ZoneInfo("UTC")
    >>> business_date(datetime(2026, 1, 5, 14, 59, 59, tzinfo=utc))
    datetime.date(2026, 1, 5)
    >>> business_date(datetime(2026, 1, 5, 15, 0, tzinfo=utc))  # 23:00 in Shanghai
    datetime.date(2026, 1, 6)
    """
    if not isinstance(at, datetime):
        raise ValidationError(f"expected a datetime, got {type(at).__name__}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValidationError(f"datetime {at.isoformat()} has no timezone")
    if not isinstance(cutoff, time) or cutoff.tzinfo is not None:
        raise ValidationError(f"cut-off must be a naive wall-clock time, got {cutoff!r}")
    local = at.astimezone(SHANGHAI)
    day = local.date()
    if cutoff != time.min and local.time() >= cutoff:
        day = _plus_days(day, 1)
    return day


def check_settlement_date(day: date, current: date, what: str = "a settlement run") -> date:
    """``day`` if ``what`` (a settlement run, a payout export) may be dated on it, given
    ``current``, the current business date; else ``date_out_of_range``.

    A run dated after the current business date would settle items that are not due yet
    and move the merchants' cursors past days still to come (their later items would be
    stranded in batches dated in the future); an export dated in the future would mark
    payouts sent before they are due. Dates before :data:`SETTLEMENT_DATE_MIN` are refused
    too. ``current`` itself is allowed: after the cut-off (日切) the next business date has
    begun and its same-day (T+0/D+0) items may be settled.

    >>> check_settlement_date(date(2026, 9, 18), date(2026, 9, 18))
    datetime.date(2026, 9, 18)
    """
    _check_date(day)
    if day > current:
        raise ValidationError(
            f"{what} may not be dated after the current business date "
            f"{current.isoformat()}: {day.isoformat()} is in the future",
            ErrorCode.DATE_OUT_OF_RANGE)
    if day < SETTLEMENT_DATE_MIN:
        raise ValidationError(
            f"{what} may not be dated before {SETTLEMENT_DATE_MIN.isoformat()} (the first "
            f"year of the holiday data): {day.isoformat()}", ErrorCode.DATE_OUT_OF_RANGE)
    return day


@dataclass(frozen=True, slots=True)
class CalendarWarning:
    """A value the caller turns into an operator alert (never an exception)."""

    code: str
    year: int
    message: str


def coverage_warning(year: int) -> CalendarWarning:
    """The warning for a year ``chinesecalendar`` has no data for."""
    return CalendarWarning(
        WARNING_YEAR_UNCOVERED,
        year,
        f"no holiday data for {year}: workdays fall back to Monday–Friday; "
        "add operator overrides or upgrade chinesecalendar",
    )


@cache
def _library_covers(year: int) -> bool:
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


def _check_date(d: date) -> date:
    # datetime is a subclass of date; a datetime here is almost always a timezone bug, and
    # it would silently miss the override table (datetime never equals date).
    if isinstance(d, datetime) or not isinstance(d, date):
        raise ValidationError(f"expected a business date, got {d!r}")
    return d


class BusinessCalendar:
    """Workdays: operator overrides on top of ``chinesecalendar``; Mon–Fri where it has no data.

    The definition (the override table) is immutable. The only state that changes is a
    log of the uncovered years a lookup fell back for; it never changes an answer and is
    read with :meth:`uncovered_years` / :meth:`alerts`.
    """

    __slots__ = ("_fallback_years", "_overrides")

    def __init__(self, overrides: Mapping[date, bool] | None = None) -> None:
        table: dict[date, bool] = {}
        for day, workday in (overrides or {}).items():
            if not isinstance(workday, bool):
                raise ValidationError(f"override for {day!r} must be a bool, got {workday!r}")
            table[_check_date(day)] = workday
        self._overrides: Mapping[date, bool] = MappingProxyType(table)
        self._fallback_years: set[int] = set()

    def __repr__(self) -> str:
        return f"BusinessCalendar(overrides={len(self._overrides)})"

    @property
    def overrides(self) -> Mapping[date, bool]:
        """The operator table (read-only): True = workday, False = closed."""
        return self._overrides

    def with_overrides(self, overrides: Mapping[date, bool]) -> BusinessCalendar:
        """A new calendar with ``overrides`` added to (and winning over) this one's."""
        return BusinessCalendar({**self._overrides, **overrides})

    @staticmethod
    def covers(year: int) -> bool:
        """Whether ``chinesecalendar`` has holiday data for ``year``."""
        return _library_covers(year)

    def is_workday(self, d: date) -> bool:
        """Whether ``d`` is a workday (overrides first, then the holiday data, then Mon–Fri)."""
        override = self._overrides.get(_check_date(d))
        if override is not None:
            return override
        if _library_covers(d.year):
            return bool(chinese_calendar.is_workday(d))
        self._fallback_years.add(d.year)
        return d.weekday() < 5

    def workday_on_or_after(self, d: date) -> date:
        """``d`` itself if it is a workday, else the next workday."""
        return d if self.is_workday(d) else self.nth_workday_after(d, 1)

    def nth_workday_after(self, d: date, n: int) -> date:
        """The ``n``-th workday strictly after ``d`` (``n >= 1``).

        Unlike ``chinese_calendar.find_workday(1, d)``, a Saturday's first workday after is
        the next workday, not the one after that.
        """
        _check_date(d)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValidationError(f"n must be an int >= 1, got {n!r}")
        day, found, gap = d, 0, 0
        while found < n:
            day = _plus_days(day, 1)
            if self.is_workday(day):
                found, gap = found + 1, 0
                continue
            gap += 1
            if gap > WORKDAY_SEARCH_DAYS_MAX:
                raise ValidationError(
                    f"no workday within {WORKDAY_SEARCH_DAYS_MAX} days after {day - timedelta(gap)}"
                )
        return day

    def uncovered_years(self) -> frozenset[int]:
        """Years for which a lookup so far fell back to Monday–Friday."""
        return frozenset(self._fallback_years)

    def alerts(self) -> list[CalendarWarning]:
        """One warning per year in :meth:`uncovered_years`, oldest first."""
        return [coverage_warning(year) for year in sorted(self._fallback_years)]


def coverage_warnings(days: Iterable[date]) -> list[CalendarWarning]:
    """Warnings for the years among ``days`` that ``chinesecalendar`` does not cover.

    Pure: use it to warn ahead of time, e.g. over the next 90 days of business dates.
    """
    years = sorted({_check_date(d).year for d in days})
    return [coverage_warning(year) for year in years if not _library_covers(year)]


class CycleKind(StrEnum):
    """T counts workdays, D counts calendar days."""

    T = "T"
    D = "D"


_CYCLE_TEXT = re.compile(r"^\s*([TD])\s*\+?\s*(\d{1,3})\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True, order=True)
class Cycle:
    """A settlement cycle T+N or D+N (``0 <= N <= CYCLE_DAYS_MAX``)."""

    kind: CycleKind
    days: int

    def __post_init__(self) -> None:
        if not isinstance(self.kind, CycleKind):
            raise ValidationError(f"cycle kind must be a CycleKind, got {self.kind!r}")
        if isinstance(self.days, bool) or not isinstance(self.days, int) \
                or not 0 <= self.days <= CYCLE_DAYS_MAX:
            raise ValidationError(f"cycle days must be 0..{CYCLE_DAYS_MAX}, got {self.days!r}")

    @classmethod
    def parse(cls, text: str) -> Cycle:
        """Parse ``"T+1"``, ``"t1"``, ``"D + 0"``, ``"T3"`` ... into a cycle."""
        match = _CYCLE_TEXT.match(text) if isinstance(text, str) else None
        if match is None:
            raise ValidationError(f"not a settlement cycle: {text!r} (expected e.g. T+1, D0)")
        return cls(CycleKind(match.group(1).upper()), int(match.group(2)))

    @property
    def code(self) -> str:
        """``"T1"``: the compact form, as stored and as :class:`SettlementCycle` values."""
        return f"{self.kind.value}{self.days}"

    @property
    def is_same_day(self) -> bool:
        """T+0 / D+0: paid in intraday runs (and subject to the same-day surcharge)."""
        return self.days == 0

    def __str__(self) -> str:
        return self.code


class SettlementCycle(StrEnum):
    """The four cycles a merchant can choose; ``.cycle`` gives the general :class:`Cycle`."""

    T0 = "T0"
    T1 = "T1"
    D0 = "D0"
    D1 = "D1"

    @classmethod
    def parse(cls, text: str) -> SettlementCycle:
        """Parse ``"T+1"``, ``"t1"``, ``"T1"``, ``"D+0"`` ... into one of the four cycles."""
        cycle = Cycle.parse(text)
        try:
            return cls(cycle.code)
        except ValueError:
            raise ValidationError(
                f"unsupported settlement cycle {text!r}: one of T0, T1, D0, D1"
            ) from None

    @property
    def cycle(self) -> Cycle:
        """This cycle as a :class:`Cycle` value."""
        return Cycle(CycleKind(self.value[0]), int(self.value[1:]))

    @property
    def is_same_day(self) -> bool:
        """T0 / D0."""
        return self.cycle.is_same_day


def as_cycle(cycle: SettlementCycle | Cycle | str) -> Cycle:
    """Normalise a :class:`SettlementCycle`, a :class:`Cycle` or text like ``"T+1"``."""
    if isinstance(cycle, Cycle):
        return cycle
    if isinstance(cycle, SettlementCycle):
        return cycle.cycle
    if isinstance(cycle, str):
        return Cycle.parse(cycle)
    raise ValidationError(f"not a settlement cycle: {cycle!r}")


def settlement_date(
    business_date: date, cycle: SettlementCycle | Cycle | str, calendar: BusinessCalendar
) -> date:
    """The date a business date's transactions are paid out on under ``cycle``.

    T+N (N >= 1): the N-th workday strictly after; T+0: the date itself if a workday, else
    the next workday; D+N: N calendar days later (D+0 is the date itself). An answer past
    :data:`datetime.date.max` is a ``date_out_of_range`` error.
    """
    _check_date(business_date)
    c = as_cycle(cycle)
    try:
        if c.kind is CycleKind.D:
            return _plus_days(business_date, c.days)
        if c.days == 0:
            return calendar.workday_on_or_after(business_date)
        return calendar.nth_workday_after(business_date, c.days)
    except ValidationError as exc:
        if exc.code is not ErrorCode.DATE_OUT_OF_RANGE:
            raise
        raise ValidationError(
            f"the {c} settlement date of {business_date.isoformat()} would be after "
            f"{date.max.isoformat()}, the last date the calendar can count",
            ErrorCode.DATE_OUT_OF_RANGE) from None
