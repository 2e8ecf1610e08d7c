"""What the web console shows that no other service answers as such: the dashboard's
figures, a transaction's chain, settlement batches and payouts newest first across
merchants, one payout, and the audit log. Access is decided here
(:mod:`autosettle.services.access`), as everywhere: another merchant's object is
``not_found``; the audit log is for operators.

Every read is bounded: a page has a limit, the dashboard reads one day of transactions
through the (status, created_at) index, never a whole table.
"""

from __future__ import annotations

import base64
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from autosettle.domain.access_records import AuditEvent
from autosettle.domain.calendar import SHANGHAI
from autosettle.domain.errors import NotFoundError, ValidationError
from autosettle.domain.payouts import PayoutStatus
from autosettle.domain.settlement_records import BatchRecord, PayoutRecord
from autosettle.domain.transactions import TxnStatus, TxnType
from autosettle.services import transactions
from autosettle.services.access import Area, may_read, require_read
from autosettle.services.context import Principal, ServiceContext
from autosettle.services.transactions import ReceiptView

PAGE_MAX = 200
HOURS = 24
CHAIN_MAX = 100
# Types that ask the issuer for money: their approval rate is the one that matters.
REQUEST_TYPES = frozenset({TxnType.SALE.value, TxnType.PREAUTH.value})
CAPTURED = frozenset({TxnStatus.APPROVED.value, TxnStatus.COMPLETED.value})
# Approved by the issuer, whatever happened next (voided, completed); a reversal (an
# unknown outcome undone) and a pending request count as neither approved nor declined.
WAS_APPROVED = CAPTURED | {TxnStatus.VOIDED.value}


def _scope(who: Principal, area: Area, merchant_id: str | None) -> str | None:
    """The merchant a read is limited to: the caller's own for a merchant user."""
    require_read(who, area, merchant_id)
    if who.is_operator:
        return merchant_id
    if merchant_id is not None and merchant_id != who.merchant_id:
        raise NotFoundError(f"merchant {merchant_id} not found")
    return who.merchant_id or ""


def _limit(limit: int) -> int:
    if not 1 <= limit <= PAGE_MAX:
        raise ValidationError(f"limit must be 1..{PAGE_MAX}")
    return limit


# -- dashboard ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Dashboard:
    day: date
    count_by_hour: tuple[int, ...]
    volume_by_hour: tuple[int, ...]  # fen of captured sales and completions
    captured_count: int
    captured_minor: int
    approved: int
    declined: int
    top_declines: list[tuple[str, int]]  # (response code, count), most first
    payouts_by_status: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def approval_rate_bp(self) -> int | None:
        """Approved share of today's sales and pre-authorizations answered, basis points."""
        answered = self.approved + self.declined
        return None if answered == 0 else self.approved * 10_000 // answered


def dashboard(ctx: ServiceContext, who: Principal, merchant_id: str | None = None,
              decline_codes_max: int = 5) -> Dashboard:
    """Today's (Asia/Shanghai calendar day) activity by hour and the recent payouts."""
    scope = _scope(who, Area.TRANSACTIONS, merchant_id)
    now = ctx.now().astimezone(SHANGHAI)
    day = now.date()
    start = datetime.combine(day, time(0), SHANGHAI)
    bounds = [start + timedelta(hours=h) for h in range(HOURS + 1)]
    with ctx.db.unit_of_work() as uow:
        rows = uow.console_reads.activity(scope, bounds, [s.value for s in TxnStatus])
        payouts = uow.console_reads.payout_status_counts(scope, day - timedelta(days=7)) \
            if may_read(who, Area.SETTLEMENTS, scope) else []
    counts, volume = [0] * HOURS, [0] * HOURS
    declines: Counter[str] = Counter()
    approved = declined = captured_count = captured_minor = 0
    for slot, txn_type, status, code, count, amount in rows:
        slot = min(slot, HOURS - 1)
        counts[slot] += count
        if txn_type in (TxnType.SALE.value, TxnType.COMPLETION.value) and (
                status in CAPTURED or status == TxnStatus.VOIDED.value):
            # What the cashiers took today (voided later or not): the volume chart.
            volume[slot] += amount
            if status in CAPTURED:
                captured_count += count
                captured_minor += amount
        if txn_type in REQUEST_TYPES:
            if status == TxnStatus.DECLINED.value:
                declined += count
                declines[code or "--"] += count
            elif status in WAS_APPROVED:
                approved += count
    return Dashboard(day, tuple(counts), tuple(volume), captured_count, captured_minor,
                     approved, declined, declines.most_common(decline_codes_max),
                     {status: (n, amount) for status, n, amount in payouts})


# -- transactions ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Chain:
    """A transaction with its original (if it is a follow-up) and every follow-up of the
    original: sale → void / refund / completion ...; a reversal shows as a status."""

    shown: ReceiptView
    root: ReceiptView
    follow_ups: list[ReceiptView]


def chain(ctx: ServiceContext, who: Principal, txn_id: str) -> Chain:
    shown = transactions.get(ctx, who, txn_id)  # not_found outside the caller's scope
    record = shown.record
    root = shown
    if record.original_txn_id:
        root = transactions.get(ctx, who, record.original_txn_id)
    with ctx.db.unit_of_work() as uow:
        children = uow.transactions.children(record.merchant_id, root.record.txn_id)
    children = children[:CHAIN_MAX]
    return Chain(shown, root, [transactions.view(c, shown.merchant_name) for c in children])


# -- settlements and payouts ----------------------------------------------------------------

def batches(ctx: ServiceContext, who: Principal, merchant_id: str | None,
            date_from: date | None, date_to: date | None, limit: int) -> list[BatchRecord]:
    """Settlement batches newest first (all merchants for an operator)."""
    scope = _scope(who, Area.SETTLEMENTS, merchant_id)
    with ctx.db.unit_of_work() as uow:
        return uow.settlement.batches(scope, date_from, date_to, _limit(limit))


@dataclass(frozen=True, slots=True)
class PayoutPage:
    items: list[PayoutRecord]
    next_cursor: str | None


def _payout_cursor(p: PayoutRecord) -> str:
    return base64.urlsafe_b64encode(f"{p.created_at.isoformat()}|{p.payout_id}"
                                    .encode()).decode()


def payouts(ctx: ServiceContext, who: Principal, merchant_id: str | None,
            status: PayoutStatus | None, cursor: str | None, limit: int) -> PayoutPage:
    """Payouts newest first, keyset-paged (a merchant user: its own)."""
    scope = _scope(who, Area.SETTLEMENTS, merchant_id)
    before = None
    if cursor:
        try:
            at, _, pid = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
            before = (datetime.fromisoformat(at), pid)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValidationError("bad cursor") from exc
    limit = _limit(limit)
    with ctx.db.unit_of_work() as uow:
        rows = uow.console_reads.payouts_page(scope, status.value if status else None,
                                              before, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return PayoutPage(rows, _payout_cursor(rows[-1]) if more and rows else None)


def payout(ctx: ServiceContext, who: Principal, payout_id: str) -> PayoutRecord:
    """One payout (``not_found`` when it is another merchant's)."""
    with ctx.db.unit_of_work() as uow:
        found = uow.settlement.payout(payout_id)
    if found is None or not may_read(who, Area.SETTLEMENTS, found.merchant_id):
        raise NotFoundError(f"payout {payout_id} not found")
    return found


# -- audit ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AuditPage:
    items: list[tuple[int, AuditEvent]]
    next_before: int | None


def audit_log(ctx: ServiceContext, who: Principal, before_id: int | None, limit: int,
              actor: str | None = None, action: str | None = None) -> AuditPage:
    """The audit log newest first (operators only: anyone else ``not_found``)."""
    if not who.is_operator:
        raise NotFoundError("not found")
    limit = _limit(limit)
    with ctx.db.unit_of_work() as uow:
        rows = uow.console_reads.audit_page(before_id, limit + 1, actor or None, action or None)
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(rows, rows[-1][0] if more and rows else None)
