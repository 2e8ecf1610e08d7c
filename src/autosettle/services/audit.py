"""Audit trail helper: every state-changing service call records who, what, where, outcome;
and an object's history, read by the object (``resource``) rather than from the newest N
records of the log."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from autosettle.domain.access_records import AuditEvent
from autosettle.domain.errors import NotFoundError, ValidationError
from autosettle.services.context import Principal, ServiceContext
from autosettle.store.uow import UnitOfWork

HISTORY_MAX: Final = 1000


def record(uow: UnitOfWork, who: Principal, action: str, resource: str, at: datetime,
           outcome: str = "ok", detail: dict[str, Any] | None = None) -> None:
    """Append an audit event in the caller's unit of work (same commit as the change)."""
    uow.audit.append(AuditEvent(at=at, actor=who.actor, action=action, resource=resource,
                                origin=who.origin, outcome=outcome, detail=detail))


def history(ctx: ServiceContext, who: Principal, resource: str,
            limit: int = HISTORY_MAX) -> list[AuditEvent]:
    """Every audit record of one object (``recon/discrepancies/7``), oldest first, however
    many other records the log holds (index ``(resource, audit_id)``). Operators only: the
    audit log is theirs (anyone else ``not_found``). At most ``limit`` records."""
    if not who.is_operator:
        raise NotFoundError("not found")
    if not 1 <= limit <= HISTORY_MAX:
        raise ValidationError(f"limit must be 1..{HISTORY_MAX}")
    with ctx.db.unit_of_work() as uow:
        return uow.audit.for_resource(resource, limit=limit)
