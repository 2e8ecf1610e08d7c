"""Settlement items: written with each money movement, in the payment's unit of work.

Every movement of a merchant's unsettled money becomes a *settlement item* in the same
database transaction as its ledger entry (:func:`record_items`, called by the payment
service): a capture (+amount, + its fee), a void (−amount, −the voided capture's fee), a
refund (−amount, −the pro-rata fee credit) and a reversal (the exact negation of the items
of the transaction it reverses). The fee is fixed at that moment by the merchant's schedule
in force on the business date, through :mod:`autosettle.domain.fees` (one rounding), and
the due date by the merchant's cycle on the business calendar.

What prices an item (the merchant, its fee schedule versions, the business calendar) comes
as :class:`ItemTerms`. The payment service builds them from the one statement it reads a
payment's context with (:func:`terms_for`), which carries the calendar overrides and the
merchant's fee schedule specs as text (*stamps*); what was parsed from a stamp is kept per
process, keyed by the stamp's exact content, so a change is seen by the very next payment
and nothing is re-read per item. Due dates are memoised per calendar stamp, business date
and cycle. Without terms (a reversal asked for by a terminal), :func:`record_items` reads
them itself.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TypeVar

from autosettle.domain import transactions as tm
from autosettle.domain.calendar import BusinessCalendar, SettlementCycle, settlement_date
from autosettle.domain.cards import CardKind
from autosettle.domain.errors import NotFoundError, UnavailableError
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
from autosettle.domain.payment_records import (
    FEE_STAMP_SEPARATOR,
    PaymentContext,
    TransactionRecord,
)
from autosettle.domain.settlement_records import ItemKind, SettlementItem
from autosettle.store.uow import Database, UnitOfWork

# -- calendar and fee schedules -------------------------------------------------------------

def business_calendar(uow: UnitOfWork) -> BusinessCalendar:
    """The Chinese business calendar with the operator's overrides (bank closures...)."""
    return BusinessCalendar(uow.config.calendar_overrides())


def calendar_at(database_url: str) -> BusinessCalendar | None:
    """:func:`business_calendar` of the database at ``database_url`` in a unit of work of its
    own (for a caller without a service context, such as the calendar commands before
    anything else is set up); ``None`` when that database cannot be read (not created or not
    migrated yet)."""
    db = Database(database_url)
    try:
        with db.unit_of_work() as uow:
            return business_calendar(uow)
    except UnavailableError:
        return None
    finally:
        db.dispose()


def fee_schedule(uow: UnitOfWork, merchant: Merchant, on: date) -> FeeSchedule:
    """The merchant's schedule in force on ``on``, or the default for its type and MCC."""
    return schedule_from_versions(uow.config.fee_schedule_versions(merchant.merchant_id),
                                  merchant, on)


def schedule_from_versions(specs: Sequence[Mapping[str, object]], merchant: Merchant,
                           on: date) -> FeeSchedule:
    """:func:`fee_schedule` from the stored versions of the merchant's schedule."""
    return _schedule_or_default([schedule_from_dict(v) for v in specs], merchant, on)


def _schedule_or_default(schedules: Sequence[FeeSchedule], merchant: Merchant,
                         on: date) -> FeeSchedule:
    """The version in force on ``on``; without one, the default for the merchant's type."""
    if schedules:
        try:
            return schedule_for(schedules, on)
        except NotFoundError:
            pass
    return default_schedule_for(merchant.merchant_type.value, merchant.mcc)


# -- terms: what prices an item, cached per process behind exact stamps ----------------------

CACHE_ENTRIES_MAX = 4096
"""Per cache; beyond it the cache starts again (merchants' schedules, calendars, due dates)."""
_TRUE_TEXT = frozenset({"1", "true", "t"})


@dataclass(frozen=True, slots=True)
class ItemTerms:
    """The merchant, its own fee schedule versions (may be none) and the calendar."""

    merchant: Merchant
    schedules: tuple[FeeSchedule, ...]
    calendar: BusinessCalendar
    calendar_stamp: str | None = None
    """The stamp ``calendar`` was parsed from (None: read without one; due dates uncached)."""

    def schedule_on(self, on: date) -> FeeSchedule:
        """:func:`fee_schedule` without a database read."""
        return _schedule_or_default(self.schedules, self.merchant, on)

    def due_date(self, business_day: date) -> date:
        cycle = self.merchant.settlement_cycle.value
        if self.calendar_stamp is None:
            return settlement_date(business_day, cycle, self.calendar)
        key = (self.calendar_stamp, business_day, cycle)
        due = _due_dates.get(key)
        if due is None:
            due = settlement_date(business_day, cycle, self.calendar)
            _remember(_due_dates, key, due)
        return due


K = TypeVar("K")
V = TypeVar("V")
_cache_lock = threading.Lock()
_calendars: dict[str, BusinessCalendar] = {}
_schedules: dict[str, tuple[FeeSchedule, ...]] = {}
_due_dates: dict[tuple[str, date, str], date] = {}


def _remember(cache: dict[K, V], key: K, value: V) -> None:
    with _cache_lock:
        if len(cache) >= CACHE_ENTRIES_MAX:
            cache.clear()
        cache[key] = value


def calendar_from_stamp(stamp: str) -> BusinessCalendar:
    """The calendar whose overrides ``stamp`` lists (``day:flag`` items, comma-separated)."""
    calendar = _calendars.get(stamp)
    if calendar is None:
        overrides = {}
        for item in filter(None, stamp.split(",")):
            day, _, flag = item.rpartition(":")
            overrides[date.fromisoformat(day.strip()[:10])] = flag.strip().lower() in _TRUE_TEXT
        calendar = BusinessCalendar(overrides)
        _remember(_calendars, stamp, calendar)
    return calendar


def schedules_from_stamp(stamp: str) -> tuple[FeeSchedule, ...]:
    """The fee schedule versions whose stored specs ``stamp`` joins (see PaymentContext)."""
    schedules = _schedules.get(stamp)
    if schedules is None:
        schedules = tuple(schedule_from_dict(json.loads(spec))
                          for spec in stamp.split(FEE_STAMP_SEPARATOR) if spec)
        _remember(_schedules, stamp, schedules)
    return schedules


def terms_for(context: PaymentContext) -> ItemTerms:
    """Terms from a payment's context, without a read: parsed once per distinct content."""
    return ItemTerms(context.merchant, schedules_from_stamp(context.fee_stamp),
                     calendar_from_stamp(context.calendar_stamp), context.calendar_stamp)


def read_terms(uow: UnitOfWork, merchant_id: str) -> ItemTerms | None:
    """Terms read afresh (no stamps at hand); None when the merchant does not exist."""
    merchant = uow.merchants.get(merchant_id)
    if merchant is None:
        return None
    schedules = tuple(schedule_from_dict(v) for v in
                      uow.config.fee_schedule_versions(merchant_id))
    return ItemTerms(merchant, schedules, business_calendar(uow))


def _schedule_name(schedule: FeeSchedule) -> str:
    return f"{schedule.schedule_id}@v{schedule.version}"[:60]


# -- items, written with each money movement -----------------------------------------------

def record_items(uow: UnitOfWork, record: TransactionRecord,
                 chain: Sequence[TransactionRecord], events: Sequence[tm.Event],
                 now: datetime, terms: ItemTerms | None = None, held: bool = False) -> None:
    """Turn a transaction's money events into settlement items (same unit of work).

    ``terms``: as the payment read them (:func:`terms_for`); read here when not given.
    ``held``: the items start held (risk review, ``services.risk``).
    """
    if not events:
        return
    if terms is None:
        terms = read_terms(uow, record.merchant_id)
        if terms is None:
            return
    by_id = {r.txn_id: r for r in (record, *chain)}
    for event in events:
        for item in _items_for(uow, terms, record, by_id, event, now):
            uow.settlement.add_item(replace(item, held=True) if held else item)


def _items_for(uow: UnitOfWork, terms: ItemTerms, record: TransactionRecord,
               by_id: dict[str, TransactionRecord], event: tm.Event,
               now: datetime) -> list[SettlementItem]:
    if event.kind in (tm.EventKind.HOLD_PLACED, tm.EventKind.HOLD_RELEASED):
        return []  # holds move no merchant money
    merchant = terms.merchant
    cur = currency(record.currency)
    due = terms.due_date(record.business_date)
    schedule = terms.schedule_on(record.business_date)

    def item(kind: ItemKind, source: str, amount: int, fee: int,
             priced_by: FeeSchedule = schedule) -> SettlementItem:
        return SettlementItem(
            merchant_id=record.merchant_id, txn_id=record.txn_id, source_txn_id=source,
            kind=kind, txn_type=record.txn_type, card_kind=record.card_kind,
            business_date=record.business_date, cycle=SettlementCycle(merchant.settlement_cycle),
            due_date=due, amount_minor=amount, fee_minor=fee, currency=cur.code,
            fee_schedule=_schedule_name(priced_by), held=False, batch_id=None, created_at=now)

    match event.kind:
        case tm.EventKind.CAPTURED | tm.EventKind.HOLD_CAPTURED:
            kind = CardKind(record.card_kind) if record.card_kind else CardKind.OTHER
            fee = transaction_fee(schedule, event.amount, kind)
            return [item(ItemKind.CAPTURE, record.txn_id, event.amount.amount_minor,
                         fee.amount_minor)]
        case tm.EventKind.VOIDED:
            captured = _capture_of(uow, record.merchant_id, event.target_id)
            voided_fee = captured.fee_minor if captured else 0
            return [item(ItemKind.VOID, event.target_id, -event.amount.amount_minor, -voided_fee)]
        case tm.EventKind.REFUNDED:
            captured = _capture_of(uow, record.merchant_id, event.target_id)
            # The sale's own terms govern its refunds: a later version (say, one that keeps
            # fees on refunds) applies to transactions from its effective date only.
            priced = terms.schedule_on(captured.business_date) if captured else schedule
            credit = _refund_credit(uow, priced, captured, event, by_id)
            return [item(ItemKind.REFUND, event.target_id, -event.amount.amount_minor,
                         -credit.amount_minor, priced)]
        case tm.EventKind.REVERSED:
            return [
                item(undo, old.source_txn_id, -old.amount_minor, -old.fee_minor)
                for old in uow.settlement.items_of_txn(record.merchant_id, event.txn_id)
                if (undo := old.kind.reversal) is not None
            ]
        case _:
            return []  # holds move no merchant money


def _capture_of(uow: UnitOfWork, merchant_id: str, txn_id: str) -> SettlementItem | None:
    for candidate in uow.settlement.items_of_txn(merchant_id, txn_id):
        if candidate.kind is ItemKind.CAPTURE:
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
               if i.kind in (ItemKind.REFUND, ItemKind.REV_REFUND)]
    done_amount = -sum(i.amount_minor for i in earlier)
    done_fee = -sum(i.fee_minor for i in earlier)
    return refund_fee_credit(
        schedule, Money(original.amount_minor, cur), Money(captured.fee_minor, cur),
        event.amount, already_refunded_amount=Money(done_amount, cur),
        already_refunded_fee=Money(done_fee, cur))
