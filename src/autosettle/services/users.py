"""Console users: operators and merchant users (bound to one merchant), with argon2id
password hashes. Creating a user and resetting a password are operator changes, audited;
the clear password is never stored, logged or returned."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from autosettle.domain.console_users import (
    DISPLAY_NAME_LENGTH_MAX,
    ConsoleUser,
    UserRole,
    check_password,
    check_username,
)
from autosettle.domain.errors import ConflictError, ErrorCode, NotFoundError, ValidationError
from autosettle.domain.merchants import check_name
from autosettle.services.audit import record
from autosettle.services.context import Principal, Role, ServiceContext

USERS_LISTED_MAX = 500
_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters
_DUMMY_HASH = _HASHER.hash("autosettle-timing-equaliser")


@dataclass(frozen=True, slots=True)
class NewUser:
    username: str
    password: str
    role: UserRole
    merchant_id: str | None = None
    display_name: str | None = None


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def password_matches(password_hash: str | None, password: str) -> bool:
    """Verify ``password``; an unknown user (``None``) still costs one hash, so the answer
    time does not tell which usernames exist."""
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and \
            password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def principal_of(user: ConsoleUser, origin: str) -> Principal:
    """The caller a console user acts as in every service."""
    role = Role.OPERATOR if user.role is UserRole.OPERATOR else Role.MERCHANT
    return Principal(actor=f"user:{user.username}", role=role, merchant_id=user.merchant_id,
                     origin=origin)


def create_user(ctx: ServiceContext, who: Principal, new: NewUser) -> ConsoleUser:
    """Add a console user (operator). A merchant user names an existing merchant."""
    who.require_operator()
    username = check_username(new.username)
    password = check_password(new.password)
    role = UserRole(new.role)
    if (role is UserRole.MERCHANT) != (new.merchant_id is not None):
        raise ValidationError("a merchant user names its merchant; an operator names none")
    display = check_name(new.display_name or username, "display name", DISPLAY_NAME_LENGTH_MAX)
    password_hash = hash_password(password)
    now = ctx.now()
    user = ConsoleUser(uuid.uuid4().hex, username, role, new.merchant_id, display, 0, None,
                       now, now)
    with ctx.db.unit_of_work() as uow:
        if uow.users.by_username(username) is not None:
            raise ConflictError(f"user {username} exists", ErrorCode.ALREADY_EXISTS)
        if new.merchant_id is not None and uow.merchants.get(new.merchant_id) is None:
            raise NotFoundError(f"merchant {new.merchant_id} not found")
        uow.users.add(user, password_hash)
        record(uow, who, "user.create", f"users/{username}", now,
               detail={"role": role.value, "merchant_id": new.merchant_id})
    return user


def reset_password(ctx: ServiceContext, who: Principal, username: str,
                   password: str) -> ConsoleUser:
    """Set a new password (operator): unlocks the user and ends its sessions."""
    who.require_operator()
    password = check_password(password)
    password_hash = hash_password(password)
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        found = uow.users.by_username(check_username(username))
        if found is None:
            raise NotFoundError(f"user {username} not found")
        uow.users.set_password(found.user.user_id, password_hash, now)
        ended = uow.console_sessions.delete_for_user(found.user.user_id)
        record(uow, who, "user.reset_password", f"users/{found.user.username}", now,
               detail={"sessions_ended": ended})
        user = uow.users.get(found.user.user_id)
    assert user is not None
    return user


def get_user(ctx: ServiceContext, who: Principal, username: str) -> ConsoleUser:
    """One user (operator)."""
    who.require_operator()
    with ctx.db.unit_of_work() as uow:
        found = uow.users.by_username(check_username(username))
    if found is None:
        raise NotFoundError(f"user {username} not found")
    return found.user


def list_users(ctx: ServiceContext, who: Principal,
               limit: int = USERS_LISTED_MAX) -> list[ConsoleUser]:
    """Every console user by username (operator), at most ``limit``."""
    who.require_operator()
    with ctx.db.unit_of_work() as uow:
        return uow.users.list(max(1, min(limit, USERS_LISTED_MAX)))
