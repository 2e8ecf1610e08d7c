"""The calendar's date limits say what went wrong, in words an operator can act on
(mutation testing found these messages unchecked)."""

from __future__ import annotations

from datetime import date

import pytest

from autosettle.domain.calendar import (
    BusinessCalendar,
    check_settlement_date,
    settlement_date,
)
from autosettle.domain.errors import ErrorCode, ValidationError

CALENDAR = BusinessCalendar()


def test_counting_past_the_last_date_names_the_date_and_the_limit() -> None:
    with pytest.raises(ValidationError) as caught:
        CALENDAR.nth_workday_after(date.max, 1)
    assert caught.value.code is ErrorCode.DATE_OUT_OF_RANGE
    assert str(caught.value.message) == (
        "9999-12-31 + 1 day(s) is past the last date the calendar can count (9999-12-31)")


@pytest.mark.parametrize("cycle", ["D1", "T1"])
def test_a_settlement_date_past_the_last_date_names_the_cycle(cycle: str) -> None:
    with pytest.raises(ValidationError) as caught:
        settlement_date(date.max, cycle, CALENDAR)
    assert caught.value.code is ErrorCode.DATE_OUT_OF_RANGE
    assert caught.value.message.startswith(
        f"the {cycle} settlement date of 9999-12-31 would be after 9999-12-31")


def test_a_future_run_is_refused_as_a_settlement_run_by_default() -> None:
    with pytest.raises(ValidationError) as caught:
        check_settlement_date(date(2026, 9, 19), date(2026, 9, 18))
    assert caught.value.code is ErrorCode.DATE_OUT_OF_RANGE
    assert caught.value.message.startswith(
        "a settlement run may not be dated after the current business date 2026-09-18")
