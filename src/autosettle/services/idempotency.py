"""Stripe-like idempotency for requests from outside.

The first request with a key claims it; its answer is stored and replayed to every retry
with the same key and the same content; the same key with different content is a conflict.
A claim whose request died before answering (process killed) goes stale after
:data:`CLAIM_STALE_S` seconds and may be claimed again. Operations that move money are
idempotent themselves as well (their key lives in the same transaction as the money), so a
stale re-claim can never move money twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from autosettle.domain.errors import ConflictError, ErrorCode, ValidationError
from autosettle.services.context import ServiceContext

KEY_LENGTH_MAX = 200
CLAIM_STALE_S = 60


@dataclass(frozen=True, slots=True)
class Replay:
    status: int
    body: str


def fingerprint(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def check_key(key: str) -> str:
    if not key or len(key) > KEY_LENGTH_MAX or not key.isprintable() or not key.isascii():
        raise ValidationError(f"Idempotency-Key must be 1..{KEY_LENGTH_MAX} printable ASCII "
                              "characters")
    return key


def begin(ctx: ServiceContext, scope: str, key: str, content: str) -> Replay | None:
    """Claim ``key`` for this request (None), or return the stored answer to replay."""
    check_key(key)
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        if uow.idempotency.claim(scope, key, content, now):
            return None
        stored = uow.idempotency.get(scope, key)
        if stored is None:  # released between our insert and read: claim again
            if uow.idempotency.claim(scope, key, content, now):
                return None
            raise ConflictError("request with this Idempotency-Key is in progress",
                                ErrorCode.IDEMPOTENCY_IN_PROGRESS)
        if stored.fingerprint != content:
            raise ConflictError("Idempotency-Key was used with a different request",
                                ErrorCode.IDEMPOTENCY_CONFLICT)
        if stored.state == "done" and stored.response_status is not None:
            return Replay(stored.response_status, stored.response_body or "")
    if _take_over_stale(ctx, scope, key, content):
        return None
    raise ConflictError("request with this Idempotency-Key is in progress",
                        ErrorCode.IDEMPOTENCY_IN_PROGRESS)


def _take_over_stale(ctx: ServiceContext, scope: str, key: str, content: str) -> bool:
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        if not uow.idempotency.release(scope, key, now - timedelta(seconds=CLAIM_STALE_S)):
            return False
        return uow.idempotency.claim(scope, key, content, now)


def finish(ctx: ServiceContext, scope: str, key: str, status: int, body: str) -> None:
    """Store the answer for replay."""
    with ctx.db.unit_of_work() as uow:
        uow.idempotency.complete(scope, key, status, body, ctx.now())


def release(ctx: ServiceContext, scope: str, key: str) -> None:
    """Forget a claim whose request failed by a fault, so a retry runs it again."""
    with ctx.db.unit_of_work() as uow:
        uow.idempotency.release(scope, key)
