"""Settlement items: written with each money movement, in the payment's unit of work.

Every movement of a merchant's unsettled money becomes a *settlement item* in the same
database transaction as its ledger entry (:func:`record_items`, called by the payment
service): a capture (+amount, + its fee), a void (−amount, −the voided capture's fee), a
refund (−amount, −the pro-rata fee credit) and a reversal (the exact negation of the items
of the transaction it reverses). The fee is fixed at that moment by the merchant's schedule
in force on the business date, through :mod:`autosettle.domain.fees` (one rounding), and
the due date by the merchant's cycle on the business calendar.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime

from autosettle.domain import transactions as tm
from autosettle.domain.calendar import BusinessCalendar, settlement_date
from autosettle.domain.cards import CardKind
from autosettle.domain.errors import NotFoundError
from autosettle.domain.fees import (
    FeeSchedule,
    default_schedule_for,
    refund_fee_credit,
    schedule_for,
    schedule_from_dict,
    transaction_fee,
)
from autosettle.domain.merchants import Merchant
from autosettle.domain.money import Money, currency
from autosettle.store.payments import TransactionRecord
from autosettle.store.settlement import SettlementItem
from autosettle.store.uow import UnitOfWork

# -- calendar and fee schedules -------------------------------------------------------------

def business_calendar(uow: UnitOfWork) -> BusinessCalendar:
    """The Chinese business calendar with the operator's overrides (bank closures...)."""
    return BusinessCalendar(uow.config.calendar_overrides())


def fee_schedule(uow: UnitOfWork, merchant: Merchant, on: date) -> FeeSchedule:
    """The merchant's schedule in force on ``on``, or the default for its type and MCC."""
    return schedule_from_versions(uow.config.fee_schedule_versions(merchant.merchant_id),
                                  merchant, on)


def schedule_from_versions(specs: Sequence[Mapping[str, object]], merchant: Merchant,
                           on: date) -> FeeSchedule:
    """:func:`fee_schedule` from the stored versions of the merchant's schedule."""
    if specs:
        try:
            return schedule_for([schedule_from_dict(v) for v in specs], on)
        except NotFoundError:
            pass
    return default_schedule_for(merchant.merchant_type.value, merchant.mcc)


def _schedule_name(schedule: FeeSchedule) -> str:
    return f"{schedule.schedule_id}@v{schedule.version}"[:60]


# -- items, written with each money movement -----------------------------------------------

def record_items(uow: UnitOfWork, record: TransactionRecord,
                 chain: Sequence[TransactionRecord], events: Sequence[tm.Event],
                 now: datetime) -> None:
    """Turn a transaction's money events into settlement items (same unit of work)."""
    merchant = uow.merchants.get(record.merchant_id)
    if merchant is None:
        return
    by_id = {r.txn_id: r for r in (record, *chain)}
    for event in events:
        for item in _items_for(uow, merchant, record, by_id, event, now):
            uow.settlement.add_item(item)


def _items_for(uow: UnitOfWork, merchant: Merchant, record: TransactionRecord,
               by_id: dict[str, TransactionRecord], event: tm.Event,
               now: datetime) -> list[SettlementItem]:
    cur = currency(record.currency)
    with_calendar = business_calendar(uow)
    due = settlement_date(record.business_date, merchant.settlement_cycle.value, with_calendar)
    schedule = fee_schedule(uow, merchant, record.business_date)

    def item(kind: str, source: str, amount: int, fee: int,
             priced_by: FeeSchedule = schedule) -> SettlementItem:
        return SettlementItem(
            merchant_id=record.merchant_id, txn_id=record.txn_id, source_txn_id=source,
            kind=kind, txn_type=record.txn_type, card_kind=record.card_kind,
            business_date=record.business_date, cycle=merchant.settlement_cycle.value,
            due_date=due, amount_minor=amount, fee_minor=fee, currency=cur.code,
            fee_schedule=_schedule_name(priced_by), held=False, batch_id=None, created_at=now)

    match event.kind:
        case tm.EventKind.CAPTURED | tm.EventKind.HOLD_CAPTURED:
            kind = CardKind(record.card_kind) if record.card_kind else CardKind.OTHER
            fee = transaction_fee(schedule, event.amount, kind)
            return [item("capture", record.txn_id, event.amount.amount_minor, fee.amount_minor)]
        case tm.EventKind.VOIDED:
            captured = _capture_of(uow, record.merchant_id, event.target_id)
            voided_fee = captured.fee_minor if captured else 0
            return [item("void", event.target_id, -event.amount.amount_minor, -voided_fee)]
        case tm.EventKind.REFUNDED:
            captured = _capture_of(uow, record.merchant_id, event.target_id)
            # The sale's own terms govern its refunds: a later version (say, one that keeps
            # fees on refunds) applies to transactions from its effective date only.
            terms = fee_schedule(uow, merchant, captured.business_date) if captured \
                else schedule
            credit = _refund_credit(uow, terms, captured, event, by_id)
            return [item("refund", event.target_id, -event.amount.amount_minor,
                         -credit.amount_minor, terms)]
        case tm.EventKind.REVERSED:
            return [
                item(f"rev-{old.kind}"[:12], old.source_txn_id, -old.amount_minor,
                     -old.fee_minor)
                for old in uow.settlement.items_of_txn(record.merchant_id, event.txn_id)
                if not old.kind.startswith("rev-")
            ]
        case _:
            return []  # holds move no merchant money


def _capture_of(uow: UnitOfWork, merchant_id: str, txn_id: str) -> SettlementItem | None:
    for candidate in uow.settlement.items_of_txn(merchant_id, txn_id):
        if candidate.kind == "capture":
            return candidate
    return None


def _refund_credit(uow: UnitOfWork, schedule: FeeSchedule, captured: SettlementItem | None,
                   event: tm.Event, by_id: dict[str, TransactionRecord]) -> Money:
    original = by_id.get(event.target_id)
    if captured is None or original is None:
        return Money.zero(event.amount.currency)
    cur = event.amount.currency
    earlier = [i for i in uow.settlement.items_for_source(captured.merchant_id,
                                                          event.target_id)
               if i.kind in ("refund", "rev-refund")]
    done_amount = -sum(i.amount_minor for i in earlier)
    done_fee = -sum(i.fee_minor for i in earlier)
    return refund_fee_credit(
        schedule, Money(original.amount_minor, cur), Money(captured.fee_minor, cur),
        event.amount, already_refunded_amount=Money(done_amount, cur),
        already_refunded_fee=Money(done_fee, cur))
