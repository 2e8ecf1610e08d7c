"""Access facts as the layers above the store see them: API keys (stored as digests) and
audit events. The store maps its rows to and from these values (``store/auth.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """One API key: its digest (never the secret), role and scope."""

    key_id: str
    secret_digest: str
    role: str
    merchant_id: str | None
    terminal_id: str | None
    name: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """Who did what to which resource, from where, with what outcome (PCI DSS 10.2)."""

    at: datetime
    actor: str
    action: str
    resource: str
    origin: str
    outcome: str
    detail: dict[str, Any] | None = None
