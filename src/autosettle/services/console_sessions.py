"""Console logins and server-side sessions.

A login that succeeds creates a session: a random id (256 bits) goes to the browser in a
signed cookie, the database keeps only its SHA-256 digest, with the user, a CSRF token,
and two expiries (idle: ``console_session_idle_s``; absolute: ``console_session_max_s``).
A wrong password counts towards a lock-out (``console_login_attempts_max`` in a row lock the
user for ``console_lockout_s``). Every login, failure, lock and logout is audited. A failed
login is a value (:class:`LoginResult`), not an exception, so its counter is committed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from autosettle.domain.access_records import AuditEvent
from autosettle.domain.console_users import ConsoleUser, SessionRecord, after_failure
from autosettle.services.context import Principal, Role, ServiceContext
from autosettle.services.users import password_matches, principal_of
from autosettle.store.uow import UnitOfWork

SESSION_ID_BYTES = 32
CSRF_TOKEN_BYTES = 32
TOUCH_AFTER = timedelta(seconds=60)
"""A session's idle expiry is pushed forward at most once a minute (not a write per page)."""
USERNAME_AUDITED_MAX = 60
EXPIRED_SWEEP_MAX = 100


class LoginOutcome(StrEnum):
    OK = "ok"
    BAD_CREDENTIALS = "bad_credentials"  # unknown user or wrong password: one answer
    LOCKED = "locked"


@dataclass(frozen=True, slots=True)
class LoginResult:
    outcome: LoginOutcome
    session_token: str | None = None
    user: ConsoleUser | None = None
    locked_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A live session: who it is, as whom it acts, and its CSRF token."""

    user: ConsoleUser
    principal: Principal
    csrf_token: str
    expires_at: datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _audit(uow: UnitOfWork, actor: str, action: str, resource: str, origin: str,
           at: datetime, outcome: str = "ok", detail: dict[str, object] | None = None) -> None:
    uow.audit.append(AuditEvent(at=at, actor=actor, action=action, resource=resource,
                                origin=origin, outcome=outcome, detail=detail))


def login(ctx: ServiceContext, username: str, password: str, origin: str) -> LoginResult:
    """Check a username and password; on success open a session (its token returned)."""
    settings = ctx.settings
    name = username.strip().lower()[:USERNAME_AUDITED_MAX]
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        found = uow.users.by_username(name)
    user = found.user if found else None
    if user is not None and user.locked_at(now):
        with ctx.db.unit_of_work() as uow:
            _audit(uow, f"user:{name}", "console.login", f"users/{name}", origin, now,
                   "locked")
        return LoginResult(LoginOutcome.LOCKED, locked_until=user.locked_until)
    # Verified outside any transaction: argon2 takes tens of milliseconds on purpose.
    if not password_matches(found.password_hash if found else None, password) or user is None:
        return _failed(ctx, user, name, origin, now)
    token = secrets.token_urlsafe(SESSION_ID_BYTES)
    session = SessionRecord(_digest(token), user.user_id, secrets.token_urlsafe(CSRF_TOKEN_BYTES),
                            now, now, now + timedelta(seconds=settings.console_session_idle_s))
    with ctx.db.unit_of_work() as uow:
        uow.users.set_failures(user.user_id, 0, None)
        uow.console_sessions.add(session)
        uow.console_sessions.delete_expired(now, EXPIRED_SWEEP_MAX)
        _audit(uow, f"user:{user.username}", "console.login", f"users/{user.username}",
               origin, now)
    return LoginResult(LoginOutcome.OK, token, user)


def _failed(ctx: ServiceContext, user: ConsoleUser | None, name: str, origin: str,
            now: datetime) -> LoginResult:
    settings = ctx.settings
    with ctx.db.unit_of_work() as uow:
        _audit(uow, f"user:{name}", "console.login", f"users/{name}", origin, now,
               "bad_credentials")
        if user is None:
            return LoginResult(LoginOutcome.BAD_CREDENTIALS)
        current = uow.users.get(user.user_id)  # the counter as of now, not of the read
        failed = current.failed_logins if current is not None else user.failed_logins
        step = after_failure(failed, now, settings.console_login_attempts_max,
                             timedelta(seconds=settings.console_lockout_s))
        uow.users.set_failures(user.user_id, step.failed_logins, step.locked_until)
        if step.locked_until is not None:
            _audit(uow, "system", "console.lock", f"users/{user.username}", origin, now,
                   detail={"until": step.locked_until.isoformat(),
                           "attempts": settings.console_login_attempts_max})
    return LoginResult(LoginOutcome.BAD_CREDENTIALS)


def resolve(ctx: ServiceContext, token: str, origin: str) -> ConsoleSession | None:
    """The live session of ``token``, or None (unknown, expired, or its user gone)."""
    now = ctx.now()
    digest = _digest(token)
    with ctx.db.unit_of_work() as uow:
        session = uow.console_sessions.get(digest)
        if session is None:
            return None
        absolute = session.created_at + timedelta(seconds=ctx.settings.console_session_max_s)
        if now >= session.expires_at or now >= absolute:
            uow.console_sessions.delete(digest)
            return None
        user = uow.users.get(session.user_id)
        if user is None:
            return None
        expires_at = session.expires_at
        if now - session.last_seen_at >= TOUCH_AFTER:
            expires_at = min(now + timedelta(seconds=ctx.settings.console_session_idle_s),
                             absolute)
            uow.console_sessions.touch(digest, now, expires_at)
    return ConsoleSession(user, principal_of(user, origin), session.csrf_token, expires_at)


def logout(ctx: ServiceContext, token: str, origin: str) -> None:
    """End the session of ``token`` (audited); nothing happens for an unknown token."""
    now = ctx.now()
    digest = _digest(token)
    with ctx.db.unit_of_work() as uow:
        session = uow.console_sessions.get(digest)
        if session is None:
            return
        user = uow.users.get(session.user_id)
        uow.console_sessions.delete(digest)
        name = user.username if user else session.user_id
        _audit(uow, f"user:{name}", "console.logout", f"users/{name}", origin, now)


def csrf_ok(session: ConsoleSession, presented: str | None) -> bool:
    """Whether a form or header carried this session's CSRF token."""
    return presented is not None and hmac.compare_digest(session.csrf_token.encode(),
                                                         presented.encode())


# -- the signed cookie -----------------------------------------------------------------------

def _signature(ctx: ServiceContext, value: str) -> str:
    return ctx.sealer.digest(f"console-cookie:{value}")[:32]


def sign(ctx: ServiceContext, value: str) -> str:
    """``value.signature``, the signature keyed by the data key (HMAC-SHA256)."""
    return f"{value}.{_signature(ctx, value)}"


def unsign(ctx: ServiceContext, signed: str | None) -> str | None:
    """The value of a cookie :func:`sign` made, or None when it was tampered with."""
    if not signed:
        return None
    value, sep, signature = signed.rpartition(".")
    if not sep or not value:
        return None
    if not hmac.compare_digest(signature.encode(), _signature(ctx, value).encode()):
        return None
    return value


def new_login_token() -> str:
    """A random token for the login form (double-submitted: cookie and field)."""
    return secrets.token_urlsafe(CSRF_TOKEN_BYTES)


def is_operator(session: ConsoleSession) -> bool:
    return session.principal.role is Role.OPERATOR
