"""Settlement items, batches, payouts and alerts as pure values.

The store maps its rows to and from these; services and adapters see only them. A payout's
lifecycle is in :mod:`autosettle.domain.payouts`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from autosettle.domain.calendar import SettlementCycle
from autosettle.domain.payouts import PayoutStatus

__all__ = ["AlertRecord", "AlertSeverity", "BatchDetail", "BatchRecord", "BatchStatus", "ItemKind",
           "ItemTotals", "PayoutRecord", "PayoutStatus", "SettlementItem"]


class ItemKind(StrEnum):
    """What a settlement item records: an approved capture, a void or refund of one, or the
    reversal (``rev-``) of one of those."""

    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"
    REV_CAPTURE = "rev-capture"
    REV_VOID = "rev-void"
    REV_REFUND = "rev-refund"

    @property
    def reversal(self) -> ItemKind | None:
        """The kind of the item that reverses this one (None: a reversal is final)."""
        if self.value.startswith("rev-"):
            return None
        return ItemKind(f"rev-{self.value}")


class BatchStatus(StrEnum):
    """A settlement batch: ``settled``, or ``payout_blocked`` while its payout is blocked."""

    SETTLED = "settled"
    PAYOUT_BLOCKED = "payout_blocked"


class AlertSeverity(StrEnum):
    """How urgent an operator alert is."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class SettlementItem:
    """One money movement of a transaction that a settlement batch will carry."""

    merchant_id: str
    txn_id: str
    source_txn_id: str
    kind: ItemKind
    txn_type: str
    card_kind: str | None
    business_date: date
    cycle: SettlementCycle
    due_date: date
    amount_minor: int
    fee_minor: int
    currency: str
    fee_schedule: str
    held: bool
    batch_id: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ItemTotals:
    """Count, gross and fees of some items."""

    item_count: int
    gross_minor: int
    fee_minor: int

    @staticmethod
    def total(parts: Iterable[ItemTotals]) -> ItemTotals:
        """The sum of several totals."""
        count = gross = fee = 0
        for part in parts:
            count, gross, fee = (count + part.item_count, gross + part.gross_minor,
                                 fee + part.fee_minor)
        return ItemTotals(count, gross, fee)


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """One settlement batch: a merchant's items of one cycle and currency, netted."""

    batch_id: str
    merchant_id: str
    cycle: SettlementCycle
    settlement_date: date
    run_key: str
    item_count: int
    gross_minor: int
    fee_minor: int
    surcharge_minor: int
    debt_recovered_minor: int
    debt_added_minor: int
    payout_minor: int
    currency: str
    status: BatchStatus
    expected_arrival: date
    entry_id: int | None
    created_at: datetime
    from_date: date | None = None
    from_item_id: int | None = None
    through_date: date | None = None
    through_item_id: int | None = None


@dataclass(frozen=True, slots=True)
class PayoutRecord:
    """The payout instruction of a batch."""

    payout_id: str
    merchant_id: str
    batch_id: str
    account_id: str | None
    amount_minor: int
    currency: str
    status: PayoutStatus
    attempts: int
    expected_arrival: date
    file_name: str | None
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """An operator alert (a merchant sees its own)."""

    alert_id: int
    at: datetime
    severity: AlertSeverity
    kind: str
    merchant_id: str | None
    message: str
    resolved_at: datetime | None


@dataclass(frozen=True, slots=True)
class BatchDetail:
    """A settlement batch as shown: with its payout (None when it pays nothing) and the
    first of its items."""

    batch: BatchRecord
    payout: PayoutRecord | None
    items: list[SettlementItem]
