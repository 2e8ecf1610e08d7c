"""The current business date, and the one rule on the dates of settlement runs and payout
exports, shared by every entry point (the scheduler's jobs, ``autosettle settle`` and
``payouts export``, ``POST /v1/settlement-runs``): see
:func:`autosettle.domain.calendar.check_settlement_date`."""

from __future__ import annotations

from datetime import date

from autosettle.domain.calendar import business_date, check_settlement_date
from autosettle.services.context import ServiceContext


def current_business_date(ctx: ServiceContext) -> date:
    """The business date now: the Shanghai date of the context's clock, plus one day at or
    after the cut-off (``AUTOSETTLE_CUTOFF``, default 23:00)."""
    return business_date(ctx.now(), ctx.settings.cutoff)


def require_run_date(ctx: ServiceContext, day: date) -> date:
    """``day`` if a settlement run may be dated on it now; else ``date_out_of_range``
    (after the current business date, or before the holiday data)."""
    return check_settlement_date(day, current_business_date(ctx), "a settlement run")


def require_export_date(ctx: ServiceContext, day: date) -> date:
    """``day`` if a payout export may be dated on it now; else ``date_out_of_range``."""
    return check_settlement_date(day, current_business_date(ctx), "a payout export")
