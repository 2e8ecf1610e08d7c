"""Ledger facts as the layers above the store see them: where a posted entry landed and an
account's balance. The store maps its rows to these values (``store/ledger.py``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PostedEntry:
    """Where an entry landed; ``created`` is False when the key had been posted before."""

    entry_id: int
    idempotency_key: str
    created: bool


@dataclass(frozen=True, slots=True)
class BalanceRow:
    """One account's balance in one currency, in minor units."""

    account_code: str
    currency: str
    balance_minor: int


@dataclass(frozen=True, slots=True)
class CheckpointWritten:
    """What writing a ledger balance checkpoint did (docs/ledger.md)."""

    through_entry_id: int
    previous_entry_id: int
    accounts: int
    created: bool


@dataclass(frozen=True, slots=True)
class CheckpointMismatch:
    """An account whose checkpointed balance is not the sum of its lines."""

    account_code: str
    currency: str
    checkpoint_minor: int
    lines_minor: int
