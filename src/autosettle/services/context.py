"""What every service call needs: the database, the clock, secrets, and the caller."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from autosettle.channels.base import Channel
from autosettle.config import Settings
from autosettle.domain.cards import PanTokenizer
from autosettle.domain.errors import AuthError, ErrorCode, NotFoundError, ValidationError
from autosettle.store.uow import Database

Clock = Callable[[], datetime]
AES_NONCE_BYTES = 12


def system_clock() -> datetime:
    """Wall-clock time, timezone-aware UTC."""
    return datetime.now(UTC)


class Role(StrEnum):
    OPERATOR = "operator"
    MERCHANT = "merchant"
    TERMINAL = "terminal"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an operator, a merchant (bound to one merchant) or a terminal."""

    actor: str
    role: Role
    merchant_id: str | None = None
    terminal_id: str | None = None
    origin: str = "internal"

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR

    def can_see_merchant(self, merchant_id: str) -> bool:
        return self.is_operator or self.merchant_id == merchant_id

    def require_merchant(self, merchant_id: str) -> None:
        """404 (not 403) outside the caller's scope: never confirm another tenant exists."""
        if not self.can_see_merchant(merchant_id):
            raise NotFoundError(f"merchant {merchant_id} not found")

    def require_operator(self) -> None:
        if not self.is_operator:
            raise AuthError("operator role required", ErrorCode.FORBIDDEN)


SYSTEM = Principal(actor="system", role=Role.OPERATOR, origin="internal")


class DataSealer:
    """AES-256-GCM for data at rest (account numbers, terminal keys) under the data key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValidationError("the data key must be 32 bytes (64 hex characters)")
        self._aead = AESGCM(key)
        self._digest_key = hashlib.sha256(b"autosettle-digest" + key).digest()

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        nonce = os.urandom(AES_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, context)

    def open(self, sealed: bytes, context: bytes) -> bytes:
        return self._aead.decrypt(sealed[:AES_NONCE_BYTES], sealed[AES_NONCE_BYTES:], context)

    def digest(self, value: str) -> str:
        """A keyed digest for equality lookups without storing the clear value."""
        return hmac.new(self._digest_key, value.encode(), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "DataSealer(<key hidden>)"


@dataclass
class ServiceContext:
    """Dependencies of the services, built once per process."""

    settings: Settings
    db: Database
    clock: Clock = system_clock
    channel: Channel | None = None
    tokenizer: PanTokenizer = field(init=False)
    sealer: DataSealer = field(init=False)

    def __post_init__(self) -> None:
        self.tokenizer = PanTokenizer(self.settings.pan_token_key_bytes())
        self.sealer = DataSealer(self.settings.data_key_bytes())

    def now(self) -> datetime:
        return self.clock()


def build_context(settings: Settings, clock: Clock = system_clock,
                  channel: Channel | None = None) -> ServiceContext:
    """Open the database named by ``settings`` and wire the services.

    The channel is the caller's to choose (the command line builds it from the ``channel``
    setting); without one, operations that need an issuer fail with ``unavailable``.
    """
    return ServiceContext(settings=settings, db=Database(settings.effective_database_url),
                          clock=clock, channel=channel)
