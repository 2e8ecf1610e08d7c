"""Audit trail helper: every state-changing service call records who, what, where, outcome."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from autosettle.domain.access_records import AuditEvent
from autosettle.services.context import Principal
from autosettle.store.uow import UnitOfWork


def record(uow: UnitOfWork, who: Principal, action: str, resource: str, at: datetime,
           outcome: str = "ok", detail: dict[str, Any] | None = None) -> None:
    """Append an audit event in the caller's unit of work (same commit as the change)."""
    uow.audit.append(AuditEvent(at=at, actor=who.actor, action=action, resource=resource,
                                origin=who.origin, outcome=outcome, detail=detail))
