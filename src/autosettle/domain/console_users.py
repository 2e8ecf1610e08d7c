"""Console users and sessions as values, and the lock-out rule (pure, no I/O).

A console user is an operator (sees every merchant) or a merchant user bound to exactly one
merchant. Password hashes (argon2id) are opaque strings here; hashing happens in
``services/users.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from autosettle.domain.errors import ValidationError

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{2,59}$")
PASSWORD_LENGTH_MIN = 10
PASSWORD_LENGTH_MAX = 200
DISPLAY_NAME_LENGTH_MAX = 100


class UserRole(StrEnum):
    OPERATOR = "operator"
    MERCHANT = "merchant"


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """One person who logs in to the console (no password hash: see :class:`Credentials`)."""

    user_id: str
    username: str
    role: UserRole
    merchant_id: str | None
    display_name: str
    failed_logins: int
    locked_until: datetime | None
    password_changed_at: datetime
    created_at: datetime

    def locked_at(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user with the password hash the store keeps for it."""

    user: ConsoleUser
    password_hash: str


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A server-side session: the digest of its id, its user and its CSRF token."""

    session_digest: str
    user_id: str
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class FailedLogin:
    """What one more failed password does to a user's counter."""

    failed_logins: int
    locked_until: datetime | None


def after_failure(failed_so_far: int, now: datetime, attempts_max: int,
                  lock: timedelta) -> FailedLogin:
    """The ``attempts_max``-th failure in a row locks the user for ``lock``; the counter
    starts again from zero once the lock is set."""
    failed = failed_so_far + 1
    if failed >= attempts_max:
        return FailedLogin(0, now + lock)
    return FailedLogin(failed, None)


def check_username(value: str) -> str:
    username = value.strip().lower()
    if not USERNAME_PATTERN.fullmatch(username):
        raise ValidationError("username: 3-60 of a-z 0-9 . _ - (starting with a letter or digit)")
    return username


def check_password(value: str) -> str:
    if not PASSWORD_LENGTH_MIN <= len(value) <= PASSWORD_LENGTH_MAX:
        raise ValidationError(f"password must be {PASSWORD_LENGTH_MIN}..{PASSWORD_LENGTH_MAX} "
                              "characters")
    return value
