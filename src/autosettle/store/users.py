"""Console users and sessions (tables ``console_users`` and ``console_sessions``), and the
paged reads of the console that no other repository answers (audit log pages, today's
transaction counts by hour)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, case, delete, func, insert, or_, select, update

from autosettle.domain.access_records import AuditEvent
from autosettle.domain.console_users import ConsoleUser, Credentials, SessionRecord, UserRole
from autosettle.domain.settlement_records import PayoutRecord
from autosettle.store.settlement import _build
from autosettle.store.tables import (
    audit_log,
    console_sessions,
    console_users,
    payouts,
    transactions,
)


def _user(row: Any) -> ConsoleUser:
    m = row._mapping
    return ConsoleUser(m["user_id"], m["username"], UserRole(m["role"]), m["merchant_id"],
                       m["display_name"], m["failed_logins"], m["locked_until"],
                       m["password_changed_at"], m["created_at"])


class UserRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, user: ConsoleUser, password_hash: str) -> None:
        self._conn.execute(insert(console_users).values(
            user_id=user.user_id, username=user.username, role=user.role.value,
            merchant_id=user.merchant_id, display_name=user.display_name,
            password_hash=password_hash, failed_logins=user.failed_logins,
            locked_until=user.locked_until, password_changed_at=user.password_changed_at,
            created_at=user.created_at))

    def by_username(self, username: str) -> Credentials | None:
        row = self._conn.execute(select(console_users)
                                 .where(console_users.c.username == username)).first()
        return Credentials(_user(row), row.password_hash) if row is not None else None

    def get(self, user_id: str) -> ConsoleUser | None:
        row = self._conn.execute(select(console_users)
                                 .where(console_users.c.user_id == user_id)).first()
        return _user(row) if row is not None else None

    def list(self, limit: int) -> list[ConsoleUser]:
        rows = self._conn.execute(select(console_users).order_by(console_users.c.username)
                                  .limit(limit))
        return [_user(r) for r in rows]

    def set_failures(self, user_id: str, failed_logins: int,
                     locked_until: datetime | None) -> None:
        self._conn.execute(update(console_users).where(console_users.c.user_id == user_id)
                           .values(failed_logins=failed_logins, locked_until=locked_until))

    def set_password(self, user_id: str, password_hash: str, at: datetime) -> None:
        self._conn.execute(update(console_users).where(console_users.c.user_id == user_id)
                           .values(password_hash=password_hash, password_changed_at=at,
                                   failed_logins=0, locked_until=None))


class ConsoleSessionRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, session: SessionRecord) -> None:
        self._conn.execute(insert(console_sessions).values(
            session_digest=session.session_digest, user_id=session.user_id,
            csrf_token=session.csrf_token, created_at=session.created_at,
            last_seen_at=session.last_seen_at, expires_at=session.expires_at))

    def get(self, session_digest: str) -> SessionRecord | None:
        row = self._conn.execute(select(console_sessions).where(
            console_sessions.c.session_digest == session_digest)).first()
        if row is None:
            return None
        m = row._mapping
        return SessionRecord(m["session_digest"], m["user_id"], m["csrf_token"],
                             m["created_at"], m["last_seen_at"], m["expires_at"])

    def touch(self, session_digest: str, at: datetime, expires_at: datetime) -> None:
        self._conn.execute(update(console_sessions).where(
            console_sessions.c.session_digest == session_digest)
            .values(last_seen_at=at, expires_at=expires_at))

    def delete(self, session_digest: str) -> None:
        self._conn.execute(delete(console_sessions).where(
            console_sessions.c.session_digest == session_digest))

    def delete_for_user(self, user_id: str) -> int:
        result = self._conn.execute(delete(console_sessions).where(
            console_sessions.c.user_id == user_id))
        return int(result.rowcount or 0)

    def delete_expired(self, before: datetime, limit: int) -> int:
        """Remove up to ``limit`` sessions that expired before ``before``."""
        digests = select(console_sessions.c.session_digest).where(
            console_sessions.c.expires_at < before).limit(limit).scalar_subquery()
        result = self._conn.execute(delete(console_sessions).where(
            console_sessions.c.session_digest.in_(digests)))
        return int(result.rowcount or 0)


class ConsoleReads:
    """Index-backed reads for console pages: never a whole-table count or sum."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def audit_page(self, before_id: int | None, limit: int, actor: str | None,
                   action: str | None) -> list[tuple[int, AuditEvent]]:
        """Audit events newest first (keyset on the id), optionally of one actor/action."""
        a = audit_log.c
        query = select(audit_log).order_by(a.audit_id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(a.audit_id < before_id)
        if actor:
            query = query.where(a.actor == actor)
        if action:
            query = query.where(a.action == action)
        return [(r.audit_id, AuditEvent(r.at, r.actor, r.action, r.resource, r.origin,
                                        r.outcome, json.loads(r.detail) if r.detail else None))
                for r in self._conn.execute(query)]

    def activity(self, merchant_id: str | None, bounds: Sequence[datetime],
                 statuses: Sequence[str]) -> list[tuple[int, str, str, str | None, int, int]]:
        """Transactions created between ``bounds[0]`` and ``bounds[-1]``, grouped by slot
        (``bounds[i] <= created_at < bounds[i+1]`` is slot ``i``), type, status and response
        code: (slot, type, status, code, count, amount). The status index (status,
        created_at) narrows the scan to the period; a merchant's adds its merchant id."""
        t = transactions.c
        slot = case(*[(t.created_at < bound, i) for i, bound in enumerate(bounds[1:])],
                     else_=len(bounds) - 1)
        query = (select(slot.label("slot"), t.txn_type, t.status, t.response_code,
                        func.count(), func.coalesce(func.sum(t.amount_minor), 0))
                 .where(t.status.in_(list(statuses)), t.created_at >= bounds[0],
                        t.created_at < bounds[-1])
                 .group_by(slot, t.txn_type, t.status, t.response_code))
        if merchant_id is not None:
            query = query.where(t.merchant_id == merchant_id)
        return [(int(r[0]), r[1], r[2], r[3], int(r[4]), int(r[5]))
                for r in self._conn.execute(query)]

    def payouts_page(self, merchant_id: str | None, status: str | None,
                     before: tuple[datetime, str] | None, limit: int) -> list[PayoutRecord]:
        """Payouts newest first, keyset-paged on (created_at, payout_id)."""
        p = payouts.c
        query = select(payouts).order_by(p.created_at.desc(), p.payout_id.desc()).limit(limit)
        if merchant_id is not None:
            query = query.where(p.merchant_id == merchant_id)
        if status is not None:
            query = query.where(p.status == status)
        if before is not None:
            at, payout_id = before
            query = query.where(or_(p.created_at < at,
                                    and_(p.created_at == at, p.payout_id < payout_id)))
        return [_build(PayoutRecord, r) for r in self._conn.execute(query)]

    def payout_status_counts(self, merchant_id: str | None,
                             since: Any) -> list[tuple[str, int, int]]:
        """Payouts expected on or after ``since``, by status: (status, count, amount)."""
        p = payouts.c
        query = (select(p.status, func.count(), func.coalesce(func.sum(p.amount_minor), 0))
                 .where(p.expected_arrival >= since).group_by(p.status))
        if merchant_id is not None:
            query = query.where(p.merchant_id == merchant_id)
        return [(r[0], int(r[1]), int(r[2])) for r in self._conn.execute(query)]
