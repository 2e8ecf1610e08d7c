"""Maintenance windows, the notices that announce them and calendar overrides, as pure
values (:mod:`autosettle.services.maintenance` works out what a window defers and moves)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True, slots=True)
class Window:
    """A maintenance window: scheduled runs inside it are deferred to its end."""

    window_id: int
    starts_at: datetime
    ends_at: datetime
    note: str

    def contains(self, at: datetime) -> bool:
        """True when ``at`` falls inside the window (start included, end excluded)."""
        return self.starts_at <= at < self.ends_at


@dataclass(frozen=True, slots=True)
class DeferredRun:
    """A scheduled run inside a window, and when it will run instead."""

    job: str
    scheduled_at: datetime
    runs_at: datetime


@dataclass(frozen=True, slots=True)
class ArrivalChange:
    """Money of a cycle normally arriving on ``was`` arrives on ``now`` instead.

    ``amount_minor`` is what the merchant has waiting for that date today (unsettled net
    of fees, plus pending payouts); None for the operator's cycle-wide view.
    """

    cycle: str
    was: date
    now: date
    amount_minor: int | None
    currency: str | None


@dataclass(frozen=True, slots=True)
class Notice:
    """A window as announced to a merchant: the runs it defers, the arrivals it moves."""

    window: Window
    deferred_runs: list[DeferredRun]
    arrivals: list[ArrivalChange]


@dataclass(frozen=True, slots=True)
class CalendarOverride:
    """An operator's declaration that a day is a workday or a closure."""

    day: date
    is_workday: bool
    note: str
