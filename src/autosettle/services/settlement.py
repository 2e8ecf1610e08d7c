"""Automatic settlement: from captured transactions to payout instructions.

**Items.** Every movement of a merchant's unsettled money becomes a *settlement item* in the
same database transaction as its ledger entry (:func:`record_items`, called by the payment
service): a capture (+amount, + its fee), a void (−amount, −the voided capture's fee), a
refund (−amount, −the pro-rata fee credit) and a reversal (the exact negation of the items
of the transaction it reverses). The fee is fixed at that moment by the merchant's schedule
in force on the business date, through :mod:`autosettle.domain.fees` (one rounding), and
the due date by the merchant's cycle on the business calendar.

**Runs.** :func:`settle` settles every item due by a date for the given cycles: per merchant
and cycle, in one database transaction, it claims the items (``UPDATE .. WHERE batch_id IS
NULL``: an item can never be in two batches), nets them, takes the same-day surcharge and
any debt from earlier negative batches, posts one balanced entry and writes the payout
instruction. A negative net becomes debt (``merchant_receivable``), never a negative payout:
``paid + fees + Δdebt = captured − refunded − reversed`` to the fen.

Merchants under review or suspended, and held items, are left out and carried forward.
Re-running a date changes nothing (one batch per merchant per run key).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from autosettle.domain import transactions as tm
from autosettle.domain.calendar import BusinessCalendar, SettlementCycle, settlement_date
from autosettle.domain.cards import CardKind
from autosettle.domain.errors import NotFoundError, ValidationError, require
from autosettle.domain.fees import (
    FeeSchedule,
    default_schedule_for,
    payout_surcharge,
    refund_fee_credit,
    schedule_for,
    schedule_from_dict,
    transaction_fee,
)
from autosettle.domain.ledger import Account, AccountType, JournalEntry, Line
from autosettle.domain.merchants import Merchant, MerchantStatus
from autosettle.domain.money import Currency, Money, currency
from autosettle.services.context import ServiceContext
from autosettle.services.payouts import instruct_payout
from autosettle.store.payments import TransactionRecord
from autosettle.store.settlement import BatchRecord, SettlementItem
from autosettle.store.uow import UnitOfWork

log = logging.getLogger(__name__)

SAME_DAY = (SettlementCycle.T0.value, SettlementCycle.D0.value)
NEXT_DAY = (SettlementCycle.T1.value, SettlementCycle.D1.value)
ALL_CYCLES = SAME_DAY + NEXT_DAY
SETTLEABLE_STATUSES = (MerchantStatus.ACTIVE,)


# -- calendar and fee schedules -------------------------------------------------------------

def business_calendar(uow: UnitOfWork) -> BusinessCalendar:
    """The Chinese business calendar with the operator's overrides (bank closures...)."""
    return BusinessCalendar(uow.config.calendar_overrides())


def fee_schedule(uow: UnitOfWork, merchant: Merchant, on: date) -> FeeSchedule:
    """The merchant's schedule in force on ``on``, or the default for its type and MCC."""
    versions = [schedule_from_dict(v) for v in uow.config.fee_schedule_versions(
        merchant.merchant_id)]
    if versions:
        try:
            return schedule_for(versions, on)
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

    def item(kind: str, source: str, amount: int, fee: int) -> SettlementItem:
        return SettlementItem(
            merchant_id=record.merchant_id, txn_id=record.txn_id, source_txn_id=source,
            kind=kind, txn_type=record.txn_type, card_kind=record.card_kind,
            business_date=record.business_date, cycle=merchant.settlement_cycle.value,
            due_date=due, amount_minor=amount, fee_minor=fee, currency=cur.code,
            fee_schedule=_schedule_name(schedule), held=False, batch_id=None, created_at=now)

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
            credit = _refund_credit(uow, schedule, record.merchant_id, event, by_id)
            return [item("refund", event.target_id, -event.amount.amount_minor,
                         -credit.amount_minor)]
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


def _refund_credit(uow: UnitOfWork, schedule: FeeSchedule, merchant_id: str,
                   event: tm.Event, by_id: dict[str, TransactionRecord]) -> Money:
    captured = _capture_of(uow, merchant_id, event.target_id)
    original = by_id.get(event.target_id)
    if captured is None or original is None:
        return Money.zero(event.amount.currency)
    cur = event.amount.currency
    earlier = [i for i in uow.settlement.items_for_source(merchant_id, event.target_id)
               if i.kind in ("refund", "rev-refund")]
    done_amount = -sum(i.amount_minor for i in earlier)
    done_fee = -sum(i.fee_minor for i in earlier)
    return refund_fee_credit(
        schedule, Money(original.amount_minor, cur), Money(captured.fee_minor, cur),
        event.amount, already_refunded_amount=Money(done_amount, cur),
        already_refunded_fee=Money(done_fee, cur))


# -- the settlement run ---------------------------------------------------------------------

@dataclass
class RunSummary:
    run_date: date
    run_key: str
    cycles: tuple[str, ...]
    batches: int = 0
    skipped_existing: int = 0
    carried_merchants: list[str] = field(default_factory=list)
    blocked_payouts: int = 0
    items: int = 0
    gross_minor: int = 0
    fee_minor: int = 0
    payout_minor: int = 0
    errors: list[str] = field(default_factory=list)


def settle(ctx: ServiceContext, run_date: date, cycles: Sequence[str] = NEXT_DAY,
           run_key: str | None = None,
           progress: object | None = None) -> RunSummary:
    """Settle every item due by ``run_date`` in ``cycles``; one batch per merchant.

    ``run_key`` names the run (default ``<date>:<cycles>``): the same key never settles a
    merchant twice, so re-running changes nothing. T cycles only settle on workdays.
    """
    cycles = tuple(SettlementCycle.parse(c).value for c in cycles)
    key = run_key or f"{run_date.isoformat()}:{'+'.join(cycles)}"
    if len(key) > 40:
        raise ValidationError("run key is longer than 40 characters")
    summary = RunSummary(run_date, key, cycles)
    with ctx.db.unit_of_work() as uow:
        calendar = business_calendar(uow)
        groups = uow.settlement.due_groups(run_date, cycles)
    workday = calendar.is_workday(run_date)
    for group in groups:
        if group.cycle.startswith("T") and not workday:
            continue
        try:
            _settle_one(ctx, summary, group.merchant_id, group.cycle, group.currency,
                        run_date, key, calendar)
        except Exception as exc:  # one merchant's failure never stops the others
            log.exception("settlement of %s failed", group.merchant_id)
            summary.errors.append(f"{group.merchant_id}: {type(exc).__name__}: {exc}")
            _alert(ctx, "error", "settlement_failed", group.merchant_id,
                   f"settlement of {group.merchant_id} on {run_date} failed: {exc}",
                   f"settle:{key}:{group.merchant_id}")
        if progress is not None and callable(progress):
            progress()
    for warning in calendar.alerts():
        _alert(ctx, "warning", warning.code, None, warning.message,
               f"calendar:{warning.code}:{warning.year}")
    return summary


def _settle_one(ctx: ServiceContext, summary: RunSummary, merchant_id: str, cycle: str,
                cur_code: str, run_date: date, key: str, calendar: BusinessCalendar) -> None:
    now = ctx.now()
    cur = currency(cur_code)
    batch_key = f"{key}:{cycle}:{cur_code}"[:40]
    with ctx.db.unit_of_work() as uow:
        merchant = uow.merchants.get(merchant_id, for_update=True)
        if merchant is None:
            return
        if uow.settlement.batch_for_run(merchant_id, batch_key) is not None:
            summary.skipped_existing += 1
            return
        if merchant.status not in SETTLEABLE_STATUSES:
            summary.carried_merchants.append(merchant_id)
            return
        seq = uow.settlement.batch_count(merchant_id, run_date) + 1
        batch_id = f"{merchant_id}-{run_date:%Y%m%d}-{cycle}-{seq:02d}"
        count, gross, fees = uow.settlement.claim(batch_id, merchant_id, cycle, cur_code,
                                                  run_date)
        if count == 0:
            return
        schedule = fee_schedule(uow, merchant, run_date)
        debt = uow.ledger.balance(Account(AccountType.MERCHANT_RECEIVABLE, merchant_id).code,
                                  cur_code)
        available = gross - fees - max(debt, 0)
        surcharge = payout_surcharge(schedule, cycle, Money(max(available, 0), cur)).amount_minor
        if surcharge >= available:
            surcharge = 0  # no payout this time, so no same-day payout to charge for
        available -= surcharge
        plan = _plan(gross, fees + surcharge, max(debt, 0), available)
        entry = _settlement_entry(batch_id, merchant_id, cur, gross, fees + surcharge, plan)
        posted = uow.ledger.post(entry, now) if entry is not None else None
        arrival = _arrival(run_date, cycle, calendar)
        batch = BatchRecord(
            batch_id=batch_id, merchant_id=merchant_id, cycle=cycle, settlement_date=run_date,
            run_key=batch_key, item_count=count, gross_minor=gross, fee_minor=fees,
            surcharge_minor=surcharge, debt_recovered_minor=plan.debt_recovered,
            debt_added_minor=plan.debt_added, payout_minor=plan.payout, currency=cur_code,
            status="settled", expected_arrival=arrival,
            entry_id=posted.entry_id if posted else None, created_at=now)
        uow.settlement.add_batch(batch)
        blocked = instruct_payout(uow, merchant, batch, now)
        summary.batches += 1
        summary.items += count
        summary.gross_minor += gross
        summary.fee_minor += fees + surcharge
        summary.payout_minor += plan.payout
        summary.blocked_payouts += int(blocked)


@dataclass(frozen=True, slots=True)
class NetPlan:
    payout: int
    debt_recovered: int
    debt_added: int


def _plan(gross: int, fees: int, debt: int, available: int) -> NetPlan:
    """Split a batch: pay out what is left after fees and old debt; a shortfall is debt."""
    if gross - fees >= debt:
        plan = NetPlan(payout=max(available, 0), debt_recovered=debt, debt_added=0)
    elif gross - fees > 0:
        plan = NetPlan(payout=0, debt_recovered=gross - fees, debt_added=0)
    else:
        plan = NetPlan(payout=0, debt_recovered=0, debt_added=fees - gross)
    require(plan.payout >= 0 and plan.debt_added >= 0 and plan.debt_recovered >= 0,
            "a settlement plan cannot be negative")
    require(gross - fees - plan.payout - plan.debt_recovered + plan.debt_added == 0,
            "settlement plan does not add up")
    return plan


def _settlement_entry(batch_id: str, merchant_id: str, cur: Currency, gross: int, fees: int,
                      plan: NetPlan) -> JournalEntry | None:
    lines = [
        Line(Account(AccountType.MERCHANT_UNSETTLED, merchant_id), Money(gross, cur)),
        Line(Account(AccountType.FEE_INCOME), Money(-fees, cur)),
        Line(Account(AccountType.MERCHANT_PAYABLE, merchant_id), Money(-plan.payout, cur)),
        Line(Account(AccountType.MERCHANT_RECEIVABLE, merchant_id),
             Money(plan.debt_added - plan.debt_recovered, cur)),
    ]
    lines = [line for line in lines if line.amount.amount_minor != 0]
    if not lines:
        return None
    return JournalEntry.build(f"settle:{batch_id}", "settlement", lines,
                              merchant_id=merchant_id, reference=batch_id)


def _arrival(run_date: date, cycle: str, calendar: BusinessCalendar) -> date:
    """When the money reaches the merchant: same day for intraday and next-day runs (the
    run itself happens on the settlement date); banks credit on workdays for T cycles."""
    if cycle.startswith("T") and not calendar.is_workday(run_date):
        return calendar.nth_workday_after(run_date, 1)
    return run_date


def _alert(ctx: ServiceContext, severity: str, kind: str, merchant_id: str | None,
           message: str, dedup_key: str | None = None) -> None:
    with ctx.db.unit_of_work() as uow:
        uow.alerts.raise_alert(ctx.now(), severity, kind, message, merchant_id, dedup_key)


def hold_transaction(ctx: ServiceContext, merchant_id: str, txn_id: str,
                     held: bool = True) -> int:
    """Keep a transaction's unsettled items out of settlement (risk hold), or release them."""
    with ctx.db.unit_of_work() as uow:
        return uow.settlement.set_held(merchant_id, txn_id, held)


def expected_settlement(ctx: ServiceContext, business_day: date, cycle: str) -> date:
    """The settlement date of a business date on a cycle, on the operator's calendar."""
    with ctx.db.unit_of_work() as uow:
        calendar = business_calendar(uow)
    return settlement_date(business_day, cycle, calendar)
