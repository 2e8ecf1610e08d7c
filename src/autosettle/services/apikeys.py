"""API keys: created once (the secret is shown once), stored as a SHA-256 digest.

A key reads ``ask_<key id>_<secret>``. The key id is public and indexes the record; the
secret is 32 random bytes, so a plain SHA-256 digest is safe to store (no password
stretching is needed for high-entropy secrets), and it is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from autosettle.domain.access_records import ApiKeyRecord
from autosettle.domain.errors import AuthError, ErrorCode, NotFoundError, ValidationError
from autosettle.services.audit import record
from autosettle.services.context import Principal, Role, ServiceContext

KEY_PREFIX = "ask"
KEY_ID_BYTES = 8
SECRET_BYTES = 32
NAME_LENGTH_MAX = 100


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """The one moment the full key exists outside the caller's hands."""

    key_id: str
    key: str
    role: Role
    merchant_id: str | None
    terminal_id: str | None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(ctx: ServiceContext, who: Principal, role: Role, name: str,
                   merchant_id: str | None = None,
                   terminal_id: str | None = None) -> IssuedKey:
    """Issue a key. Merchant keys name a merchant; terminal keys a merchant and terminal."""
    who.require_operator()
    role = Role(role)
    if role is Role.OPERATOR and (merchant_id or terminal_id):
        raise ValidationError("an operator key is not bound to a merchant")
    if role is Role.MERCHANT and (not merchant_id or terminal_id):
        raise ValidationError("a merchant key needs merchant_id (and no terminal_id)")
    if role is Role.TERMINAL and not (merchant_id and terminal_id):
        raise ValidationError("a terminal key needs merchant_id and terminal_id")
    if not name.strip() or len(name) > NAME_LENGTH_MAX:
        raise ValidationError(f"name must be 1..{NAME_LENGTH_MAX} characters")
    key_id = secrets.token_hex(KEY_ID_BYTES)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        if merchant_id and uow.merchants.get(merchant_id) is None:
            raise NotFoundError(f"merchant {merchant_id} not found")
        if terminal_id and merchant_id and uow.terminals.get(merchant_id, terminal_id) is None:
            raise NotFoundError(f"terminal {terminal_id} not found")
        uow.api_keys.add(ApiKeyRecord(
            key_id=key_id, secret_digest=_digest(secret), role=role.value,
            merchant_id=merchant_id, terminal_id=terminal_id, name=name.strip(),
            created_at=now, revoked_at=None))
        record(uow, who, "api_key.create", f"api-keys/{key_id}", now,
               detail={"role": role.value, "merchant_id": merchant_id,
                       "terminal_id": terminal_id})
    return IssuedKey(key_id, f"{KEY_PREFIX}_{key_id}_{secret}", role, merchant_id,
                     terminal_id)


def authenticate(ctx: ServiceContext, presented: str, origin: str = "api") -> Principal:
    """Turn a presented key into a :class:`Principal`, or raise ``unauthenticated``."""
    parts = presented.strip().split("_", 2) if presented else []
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        raise AuthError("invalid API key", ErrorCode.UNAUTHENTICATED)
    _, key_id, secret = parts
    with ctx.db.unit_of_work() as uow:
        stored = uow.api_keys.get(key_id)
    if stored is None or stored.revoked_at is not None or not hmac.compare_digest(
        stored.secret_digest, _digest(secret)
    ):
        raise AuthError("invalid API key", ErrorCode.UNAUTHENTICATED)
    return Principal(actor=f"key:{key_id}", role=Role(stored.role),
                     merchant_id=stored.merchant_id, terminal_id=stored.terminal_id,
                     origin=origin)


def revoke_api_key(ctx: ServiceContext, who: Principal, key_id: str) -> None:
    who.require_operator()
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        stored = uow.api_keys.get(key_id)
        if stored is None:
            raise NotFoundError(f"api key {key_id} not found")
        if stored.revoked_at is not None:
            return  # revoked already: the first revocation (and its audit) stands
        uow.api_keys.revoke(key_id, now)
        record(uow, who, "api_key.revoke", f"api-keys/{key_id}", now)
