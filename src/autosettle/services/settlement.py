"""Automatic settlement: from captured transactions to payout instructions.

**Items** are written with each money movement by :mod:`.settlement_items` (re-exported
here: :func:`record_items`, :func:`business_calendar`, :func:`fee_schedule`).

**Runs.** :func:`settle` settles every item due by a date for the given cycles: per merchant
and cycle, in one database transaction, it sums the due items past the merchant's cursor
and moves the cursor (:mod:`autosettle.store.settlement_claims`: an item can never be in two
batches, and no item row is written by a run), nets them, takes the same-day surcharge and
any debt from earlier negative batches, posts one balanced entry and writes the payout
instruction. A negative net becomes debt (``merchant_receivable``), never a negative payout:
``paid + fees + Δdebt = captured − refunded − reversed`` to the fen.

Merchants under review or suspended, and held items, are left out and carried forward.
Re-running a date changes nothing (one batch per merchant per run key).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from autosettle.domain.calendar import BusinessCalendar, SettlementCycle, settlement_date
from autosettle.domain.errors import ValidationError, require
from autosettle.domain.fees import (
    payout_surcharge,
)
from autosettle.domain.ledger import Account, AccountType, JournalEntry, Line
from autosettle.domain.merchants import Merchant, MerchantStatus
from autosettle.domain.money import Currency, Money, currency
from autosettle.domain.settlement_records import BatchRecord, BatchStatus, ItemTotals
from autosettle.domain.settlement_scan import Claim, DueScan
from autosettle.services.access import Area, require_read
from autosettle.services.business_dates import require_run_date
from autosettle.services.context import SYSTEM, Principal, ServiceContext
from autosettle.services.payouts import instruct_payouts
from autosettle.services.settlement_items import (
    business_calendar,
    schedule_from_versions,
)
from autosettle.store.uow import UnitOfWork

log = logging.getLogger(__name__)

SAME_DAY = (SettlementCycle.T0.value, SettlementCycle.D0.value)
NEXT_DAY = (SettlementCycle.T1.value, SettlementCycle.D1.value)
ALL_CYCLES = SAME_DAY + NEXT_DAY
SETTLEABLE_STATUSES = (MerchantStatus.ACTIVE,)


# -- the settlement run ---------------------------------------------------------------------

CHUNK_MERCHANTS_MAX = 500
"""Merchants settled per database transaction (each batch is still all-or-nothing)."""
RUN_KEY_LENGTH_MAX = 40
_BATCH_KEY_PREFIX = 20  # + "~" + 12 hex digits + ":T1:CNY" = 40 characters


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

    def add(self, part: RunSummary) -> None:
        """Count in the work of one committed chunk."""
        self.batches += part.batches
        self.skipped_existing += part.skipped_existing
        self.carried_merchants.extend(m for m in part.carried_merchants
                                      if m not in self.carried_merchants)
        self.blocked_payouts += part.blocked_payouts
        self.items += part.items
        self.gross_minor += part.gross_minor
        self.fee_minor += part.fee_minor
        self.payout_minor += part.payout_minor
        self.errors.extend(part.errors)


def settle(ctx: ServiceContext, run_date: date, cycles: Sequence[str] = NEXT_DAY,
           run_key: str | None = None,
           progress: object | None = None) -> RunSummary:
    """Settle every item due by ``run_date`` in ``cycles``; one batch per merchant.

    ``run_key`` names the run (default ``<date>:<cycles>``): the same key never settles a
    merchant twice, so re-running changes nothing. T cycles only settle on workdays.

    Merchants are settled in chunks, one database transaction per chunk (every batch with
    its entry, payout and cursor move commits or rolls back whole). If a chunk fails, its
    merchants are settled again one by one, so one merchant's failure never stops the
    others; ``progress``, if callable, is called once per merchant looked at.

    ``run_date`` may not be after the current business date (nor before the holiday data):
    ``date_out_of_range``, and nothing is settled (:mod:`.business_dates`).
    """
    require_run_date(ctx, run_date)
    cycles = tuple(SettlementCycle.parse(c).value for c in cycles)
    key = run_key or f"{run_date.isoformat()}:{'+'.join(cycles)}"
    if len(key) > RUN_KEY_LENGTH_MAX:
        raise ValidationError(f"run key is longer than {RUN_KEY_LENGTH_MAX} characters")
    summary = RunSummary(run_date, key, cycles)
    with ctx.db.unit_of_work() as uow:
        calendar = business_calendar(uow)
        merchant_ids = uow.claims.merchant_ids()
    workday = calendar.is_workday(run_date)
    run_cycles = tuple(c for c in cycles if workday or not c.startswith("T"))
    for chunk in _chunks(merchant_ids) if run_cycles else []:
        try:
            summary.add(_settle_chunk(ctx, chunk, run_cycles, run_date, key, calendar))
        except Exception:
            log.warning("settlement chunk of %d merchants failed; settling them one by one",
                        len(chunk), exc_info=True)
            for merchant_id in chunk:
                try:
                    summary.add(_settle_chunk(ctx, [merchant_id], run_cycles, run_date, key,
                                              calendar))
                except Exception as exc:  # one merchant's failure never stops the others
                    log.exception("settlement of %s failed", merchant_id)
                    summary.errors.append(f"{merchant_id}: {type(exc).__name__}: {exc}")
                    _alert(ctx, "error", "settlement_failed", merchant_id,
                           f"settlement of {merchant_id} on {run_date} failed: {exc}",
                           f"settle:{key}:{merchant_id}")
        if progress is not None and callable(progress):
            for _ in chunk:
                progress()
    for warning in calendar.alerts():
        _alert(ctx, "warning", warning.code, None, warning.message,
               f"calendar:{warning.code}:{warning.year}")
    return summary


def merchant_count(ctx: ServiceContext) -> int:
    """How many merchants a run looks at (the length of its progress bar)."""
    with ctx.db.unit_of_work() as uow:
        return len(uow.claims.merchant_ids())


def _chunks(merchant_ids: Sequence[str]) -> list[list[str]]:
    """Merchants per database transaction: :data:`CHUNK_MERCHANTS_MAX` at a time. A run
    writes a few rows per merchant whatever its item count, so chunks stay short."""
    return [list(merchant_ids[k:k + CHUNK_MERCHANTS_MAX])
            for k in range(0, len(merchant_ids), CHUNK_MERCHANTS_MAX)]


def batch_key(run_key: str, cycle: str, cur_code: str) -> str:
    """The batch's run key: one batch per merchant, run, cycle and currency.

    Fits the 40-character column without cutting off what tells two batches apart: a long
    run key is shortened and made unique again with a digest of the whole.
    """
    full = f"{run_key}:{cycle}:{cur_code}"
    if len(full) <= RUN_KEY_LENGTH_MAX:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:12]
    return f"{run_key[:_BATCH_KEY_PREFIX]}~{digest}:{cycle}:{cur_code}"[:RUN_KEY_LENGTH_MAX]


@dataclass(frozen=True, slots=True)
class _Planned:
    merchant: Merchant
    claim: Claim
    run_key: str
    totals: ItemTotals
    surcharge: int
    plan: NetPlan
    entry: JournalEntry | None


def _claims(uow: UnitOfWork, scan: DueScan, found: dict[str, Merchant], key: str,
            part: RunSummary) -> list[tuple[Merchant, Claim, str]]:
    """One claim per due (merchant, cycle, currency) group that may be settled now.

    A (merchant, cycle) is settled whole or not at all: its cursor covers every currency,
    so if one of its batches already exists for this run key (a re-run), none is made.
    """
    groups = scan.groups
    merchant_ids = sorted({g.merchant_id for g in groups})
    keys = {(g.cycle, g.currency): batch_key(key, g.cycle, g.currency) for g in groups}
    taken = uow.settlement.batch_runs(merchant_ids, list(keys.values()))
    skipped = {(g.merchant_id, g.cycle) for g in groups
               if (g.merchant_id, keys[(g.cycle, g.currency)]) in taken}
    counts: dict[date, dict[str, int]] = {}
    claims: list[tuple[Merchant, Claim, str]] = []
    for group in groups:
        merchant = found.get(group.merchant_id)
        if merchant is None:
            continue
        if (group.merchant_id, group.cycle) in skipped:
            part.skipped_existing += 1
            continue
        if merchant.status not in SETTLEABLE_STATUSES:
            if group.merchant_id not in part.carried_merchants:
                part.carried_merchants.append(group.merchant_id)
            continue
        # The batch's date: the run's, or the cursor's when that is later (see
        # store/settlement_claims.py); batch ids count the batches of that date.
        day = scan.new_cursor(group.merchant_id, group.cycle).through_date
        if day not in counts:
            counts[day] = uow.settlement.batch_counts(merchant_ids, day)
        seq = counts[day].get(group.merchant_id, 0) + 1
        counts[day][group.merchant_id] = seq
        batch_id = f"{group.merchant_id}-{day:%Y%m%d}-{group.cycle}-{seq:02d}"
        claims.append((merchant, Claim(batch_id, group.merchant_id, group.cycle,
                                       group.currency), keys[(group.cycle, group.currency)]))
    return claims


def _settle_chunk(ctx: ServiceContext, merchant_ids: Sequence[str], cycles: Sequence[str],
                  run_date: date, key: str, calendar: BusinessCalendar) -> RunSummary:
    """Settle a few merchants in one unit of work; what it did."""
    now = ctx.now()
    part = RunSummary(run_date, key, ())
    with ctx.db.unit_of_work() as uow:
        found = uow.settlement.lock_merchants(merchant_ids)
        uow.claims.lock_merchants_for_run(merchant_ids)
        scan = uow.claims.scan_due(merchant_ids, cycles, run_date, uow.claims.upto_item_id())
        claims = _claims(uow, scan, found, key, part)
        if not claims:
            return part
        totals = {(g.merchant_id, g.cycle, g.currency): ItemTotals(
            g.item_count, g.gross_minor, g.fee_minor) for g in scan.groups}
        by_batch = {c.batch_id: totals[(c.merchant_id, c.cycle, c.currency)]
                    for _, c, _ in claims}
        planned = _plan_chunk(uow, claims, by_batch, run_date)
        posted = iter(uow.ledger.post_batch([p.entry for p in planned if p.entry], now))
        arrival: dict[tuple[str, date], date] = {}
        batches: list[tuple[Merchant, BatchRecord]] = []
        for p in planned:
            entry_id = next(posted).entry_id if p.entry is not None else None
            before = scan.cursors.get((p.claim.merchant_id, p.claim.cycle))
            after = scan.new_cursor(p.claim.merchant_id, p.claim.cycle)
            day = after.through_date
            if (p.claim.cycle, day) not in arrival:
                arrival[(p.claim.cycle, day)] = _arrival(day, p.claim.cycle, calendar)
            batches.append((p.merchant, BatchRecord(
                batch_id=p.claim.batch_id, merchant_id=p.claim.merchant_id,
                cycle=SettlementCycle(p.claim.cycle),
                settlement_date=day, run_key=p.run_key, item_count=p.totals.item_count,
                gross_minor=p.totals.gross_minor, fee_minor=p.totals.fee_minor,
                surcharge_minor=p.surcharge, debt_recovered_minor=p.plan.debt_recovered,
                debt_added_minor=p.plan.debt_added, payout_minor=p.plan.payout,
                currency=p.claim.currency, status=BatchStatus.SETTLED,
                expected_arrival=arrival[(p.claim.cycle, day)], entry_id=entry_id,
                created_at=now,
                from_date=before.through_date if before else None,
                from_item_id=before.through_item_id if before else None,
                through_date=after.through_date, through_item_id=after.through_item_id)))
        uow.settlement.add_batches([b for _, b in batches])
        uow.claims.advance(scan, [c for _, c, _ in claims], now)
        # The checks before money leaves compare each batch with its items as summed by the
        # scan in this transaction (no second read of a million rows).
        blocked = instruct_payouts(uow, batches, now, {
            c.batch_id: {c.merchant_id: by_batch[c.batch_id]} for _, c, _ in claims})
    for p in planned:
        part.batches += 1
        part.items += p.totals.item_count
        part.gross_minor += p.totals.gross_minor
        part.fee_minor += p.totals.fee_minor + p.surcharge
        part.payout_minor += p.plan.payout
    part.blocked_payouts += len(blocked)
    return part


def _plan_chunk(uow: UnitOfWork, claims: Sequence[tuple[Merchant, Claim, str]],
                totals: dict[str, ItemTotals], run_date: date) -> list[_Planned]:
    """Net each claimed batch against the merchant's debt and the same-day surcharge.

    Debt is read once for the chunk and carried from one batch of a merchant to its next
    (a merchant may have a batch per cycle and currency in the same run).
    """
    receivable = {m.merchant_id: Account(AccountType.MERCHANT_RECEIVABLE, m.merchant_id).code
                  for m, _, _ in claims}
    balances = uow.settlement.account_balances(list(receivable.values()))
    debts = {(c.merchant_id, c.currency): balances.get((receivable[c.merchant_id], c.currency), 0)
             for _, c, _ in claims}
    same_day = sorted({c.merchant_id for _, c, _ in claims if c.cycle in SAME_DAY})
    specs = uow.config.fee_schedule_versions_for(same_day)
    planned: list[_Planned] = []
    for merchant, claim, run_key in claims:
        cur = currency(claim.currency)
        total = totals[claim.batch_id]
        gross, fees = total.gross_minor, total.fee_minor
        debt = max(debts[(claim.merchant_id, claim.currency)], 0)
        available = gross - fees - debt
        surcharge = 0
        schedule = schedule_from_versions(specs.get(claim.merchant_id, []), merchant,
                                          run_date) if claim.cycle in SAME_DAY else None
        # A schedule prices its own currency: a batch in another one (an item in a foreign
        # currency) pays no surcharge rather than failing the merchant's whole run.
        if schedule is not None and schedule.currency == cur:
            surcharge = payout_surcharge(schedule, claim.cycle,
                                         Money(max(available, 0), cur)).amount_minor
            if surcharge >= available:
                surcharge = 0  # no payout this time, so no same-day payout to charge for
        available -= surcharge
        plan = _plan(gross, fees + surcharge, debt, available)
        debts[(claim.merchant_id, claim.currency)] += plan.debt_added - plan.debt_recovered
        entry = _settlement_entry(claim.batch_id, claim.merchant_id, cur, gross,
                                  fees + surcharge, plan)
        planned.append(_Planned(merchant, claim, run_key, total, surcharge, plan, entry))
    return planned


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
        return uow.claims.set_held(merchant_id, txn_id, held)


def expected_settlement(ctx: ServiceContext, business_day: date, cycle: str,
                        who: Principal = SYSTEM) -> date:
    """The settlement date of a business date on a cycle, on the operator's calendar
    (``not_found`` for a caller that may not read the calendar)."""
    require_read(who, Area.CALENDAR)
    with ctx.db.unit_of_work() as uow:
        calendar = business_calendar(uow)
    return settlement_date(business_day, cycle, calendar)
