"""Operator alerts (failed payouts, blocked payouts, uncovered calendar years, open terminal
batches at cut-off...): operators see all of them, a merchant only its own."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from autosettle.domain.calendar import SHANGHAI
from autosettle.domain.errors import NotFoundError, ValidationError
from autosettle.domain.settlement_records import AlertRecord, AlertSeverity
from autosettle.services.access import Area, require_read
from autosettle.services.audit import record
from autosettle.services.context import Principal, ServiceContext

ALERTS_LISTED_MAX = 500
SEVERITIES = tuple(s.value for s in AlertSeverity)


def raise_alert(ctx: ServiceContext, severity: str, kind: str, message: str,
                merchant_id: str | None = None, dedup_key: str | None = None,
                at: datetime | None = None) -> None:
    """Record an alert in a unit of work of its own; the same ``dedup_key`` is raised once."""
    if severity not in SEVERITIES:
        raise ValidationError(f"severity must be one of {', '.join(SEVERITIES)}")
    with ctx.db.unit_of_work() as uow:
        uow.alerts.raise_alert(at or ctx.now(), severity, kind, message, merchant_id,
                               dedup_key)


def list_alerts(ctx: ServiceContext, who: Principal, merchant_id: str | None = None,
                include_resolved: bool = False, limit: int = 100) -> list[AlertRecord]:
    """Newest first. An operator sees every alert (or one merchant's); anyone else only
    the alerts of its own merchant (a terminal key none: ``not_found``)."""
    require_read(who, Area.ALERTS, merchant_id)
    if not 1 <= limit <= ALERTS_LISTED_MAX:
        raise ValidationError(f"limit must be 1..{ALERTS_LISTED_MAX}")
    if who.is_operator:
        scope = merchant_id
    else:
        scope = who.merchant_id
        if scope is None:
            return []
    with ctx.db.unit_of_work() as uow:
        return uow.alerts.alerts(scope, include_resolved, limit)


def resolve_alert(ctx: ServiceContext, who: Principal, alert_id: int) -> AlertRecord:
    """Mark an alert handled (operator). Idempotent."""
    who.require_operator()
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        alert = uow.alerts.alert(alert_id)
        if alert is None:
            raise NotFoundError(f"alert {alert_id} not found")
        if alert.resolved_at is None:
            uow.alerts.resolve(alert_id, now)
            record(uow, who, "alert.resolve", f"alerts/{alert_id}", now)
            alert = uow.alerts.alert(alert_id)
        assert alert is not None
        return alert


# -- the cut-off check ------------------------------------------------------------------------

CUTOFF_MERCHANT_ALERTS_MAX = 200


def cutoff_instant(business_day: date, cutoff: time) -> datetime:
    """The moment business date ``business_day`` began: the cut-off on the day before (or
    plain midnight when the cut-off is 00:00), Asia/Shanghai."""
    if cutoff == time(0, 0):
        return datetime.combine(business_day, cutoff, SHANGHAI)
    return datetime.combine(business_day - timedelta(days=1), cutoff, SHANGHAI)


def cutoff_check(ctx: ServiceContext, business_day: date) -> dict[str, object]:
    """At the cut-off that starts ``business_day``: alert for terminals whose batch opened
    before it is still open (the terminal has not settled its batch, 批结算).

    One alert per merchant (it sees its own), at most :data:`CUTOFF_MERCHANT_ALERTS_MAX`,
    plus one summary for the operator; each raised once per business date.
    """
    since = cutoff_instant(business_day, ctx.settings.cutoff)
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        rows = uow.alerts.open_terminal_batches(since)
        total = sum(count for _, count in rows)
        for merchant_id, count in rows[:CUTOFF_MERCHANT_ALERTS_MAX]:
            uow.alerts.raise_alert(
                now, "warning", "open_terminal_batches",
                f"{count} terminal batch(es) still open at the cut-off of "
                f"{business_day.isoformat()}: settle them (批结算) on the terminal",
                merchant_id, f"cutoff:{business_day.isoformat()}:{merchant_id}")
        if rows:
            uow.alerts.raise_alert(
                now, "warning", "open_terminal_batches",
                f"{total} terminal batch(es) of {len(rows)} merchant(s) still open at the "
                f"cut-off of {business_day.isoformat()}", None,
                f"cutoff:{business_day.isoformat()}")
    return {"business_date": business_day.isoformat(), "cutoff_at": since.isoformat(),
            "open_terminal_batches": total, "merchants_with_open_batches": len(rows)}
