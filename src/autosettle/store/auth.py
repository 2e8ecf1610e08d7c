"""API keys (stored as digests), idempotency records and the append-only audit log."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from autosettle.domain.access_records import ApiKeyRecord, AuditEvent
from autosettle.store.tables import api_keys, audit_log, idempotency_records


class ApiKeyRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, record: ApiKeyRecord) -> None:
        self._conn.execute(insert(api_keys).values(
            key_id=record.key_id, secret_digest=record.secret_digest, role=record.role,
            merchant_id=record.merchant_id, terminal_id=record.terminal_id, name=record.name,
            created_at=record.created_at, revoked_at=record.revoked_at))

    def get(self, key_id: str) -> ApiKeyRecord | None:
        row = self._conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
        if row is None:
            return None
        return ApiKeyRecord(**dict(row._mapping))

    def list(self) -> list[ApiKeyRecord]:
        rows = self._conn.execute(select(api_keys).order_by(api_keys.c.created_at))
        return [ApiKeyRecord(**dict(r._mapping)) for r in rows]

    def revoke(self, key_id: str, at: datetime) -> None:
        self._conn.execute(update(api_keys).where(api_keys.c.key_id == key_id)
                           .values(revoked_at=at))


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    scope: str
    idempotency_key: str
    fingerprint: str
    state: str
    response_status: int | None
    response_body: str | None


class IdempotencyRepository:
    """Stripe-like idempotency: the first request with a key owns it; retries replay."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def claim(self, scope: str, key: str, fingerprint: str, at: datetime) -> bool:
        """Insert an in-progress record; False when the (scope, key) exists already."""
        module: Any = postgresql if self._conn.dialect.name == "postgresql" else sqlite
        result = self._conn.execute(
            module.insert(idempotency_records)
            .values(scope=scope, idempotency_key=key, fingerprint=fingerprint,
                    state="in_progress", created_at=at)
            .on_conflict_do_nothing(index_elements=["scope", "idempotency_key"])
            .returning(idempotency_records.c.scope))
        return result.first() is not None

    def get(self, scope: str, key: str) -> IdempotencyRecord | None:
        row = self._conn.execute(select(idempotency_records).where(
            idempotency_records.c.scope == scope,
            idempotency_records.c.idempotency_key == key)).first()
        if row is None:
            return None
        m = row._mapping
        return IdempotencyRecord(m["scope"], m["idempotency_key"], m["fingerprint"],
                                 m["state"], m["response_status"], m["response_body"])

    def complete(self, scope: str, key: str, status: int, body: str, at: datetime) -> None:
        self._conn.execute(update(idempotency_records).where(
            idempotency_records.c.scope == scope,
            idempotency_records.c.idempotency_key == key,
        ).values(state="done", response_status=status, response_body=body, completed_at=at))

    def release(self, scope: str, key: str, claimed_before: datetime | None = None) -> bool:
        """Delete an in-progress claim (only one made before ``claimed_before`` if given);
        True when one was deleted."""
        c = idempotency_records.c
        query = delete(idempotency_records).where(
            c.scope == scope, c.idempotency_key == key, c.state == "in_progress")
        if claimed_before is not None:
            query = query.where(c.created_at < claimed_before)
        return bool(self._conn.execute(query).rowcount == 1)


class AuditRepository:
    """Append-only: the database refuses UPDATE and DELETE on this table."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def append(self, event: AuditEvent) -> None:
        self._conn.execute(insert(audit_log).values(
            at=event.at, actor=event.actor, action=event.action, resource=event.resource,
            origin=event.origin, outcome=event.outcome,
            detail=json.dumps(event.detail, ensure_ascii=False, sort_keys=True)
            if event.detail is not None else None))

    def for_resource(self, resource: str, limit: int = 500) -> list[AuditEvent]:
        """The first ``limit`` records about one object (``resource``, e.g.
        ``recon/discrepancies/7``), oldest first (index ``(resource, audit_id)``, 0014)."""
        a = audit_log.c
        return [_event(r) for r in self._conn.execute(
            select(audit_log).where(a.resource == resource).order_by(a.audit_id).limit(limit))]

    def recent(self, limit: int = 100) -> list[AuditEvent]:
        rows = self._conn.execute(select(audit_log).order_by(audit_log.c.audit_id.desc())
                                  .limit(limit))
        return [_event(r) for r in rows]


def _event(r: Any) -> AuditEvent:
    return AuditEvent(r.at, r.actor, r.action, r.resource, r.origin, r.outcome,
                      json.loads(r.detail) if r.detail else None)
