"""Stored risk control records as the layers above the store see them (docs/risk.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from autosettle.domain.risk import Rule


@dataclass(frozen=True, slots=True)
class StoredRule:
    rule: Rule
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Preregistration:
    prereg_id: int
    merchant_id: str
    amount_minor: int
    currency: str
    valid_from: datetime
    valid_to: datetime
    terminal_id: str | None
    card_last4: str | None
    note: str
    status: str
    used_txn_id: str | None
    used_at: datetime | None
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    txn_id: str
    merchant_id: str
    terminal_id: str
    decision: str
    response_code: str
    reason: str
    reason_en: str
    reason_zh: str
    fired: list[str]
    preregistration_id: int | None
    amount_minor: int
    business_date: date
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ScoreRecord:
    merchant_id: str
    business_date: date
    score: int
    reasons: list[dict[str, Any]]
    on_review: bool
    released_at: datetime | None
    released_by: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ScoredTxn:
    """What the cash-out scoring reads of one transaction (no card data but the token)."""

    merchant_id: str
    txn_type: str
    status: str
    amount_minor: int
    card_token: str | None
    card_kind: str | None
    created_at: datetime
    business_date: date
