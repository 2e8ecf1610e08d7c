"""The queries behind the reports (:mod:`autosettle.reports`): every one set-based.

Each method sums in SQL (``GROUP BY``) or reads one bounded page by keyset, so a report over
two million transactions or a statement of a merchant with hundreds of thousands of journal
lines never loads them all into Python. Rows are small named tuples; the reports turn them
into their tabular model.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import NamedTuple

from sqlalchemy import Connection, and_, case, func, select

from autosettle.store.tables import (
    journal_entries,
    journal_lines,
    merchants,
    payouts,
    settlement_batches,
    settlement_items,
    terminals,
    transactions,
)


class SummaryRow(NamedTuple):
    """Transactions of one business date with the same merchant, terminal, card kind, type,
    response code and status; ``net_minor`` / ``fee_minor`` from their settlement items."""

    merchant_id: str
    terminal_id: str
    card_kind: str | None
    txn_type: str
    response_code: str | None
    status: str
    currency: str
    txn_count: int
    amount_minor: int
    net_minor: int
    fee_minor: int


class BatchRow(NamedTuple):
    """A settlement batch with its payout's status."""

    batch_id: str
    merchant_id: str
    cycle: str
    settlement_date: date
    item_count: int
    gross_minor: int
    fee_minor: int
    surcharge_minor: int
    debt_recovered_minor: int
    debt_added_minor: int
    payout_minor: int
    currency: str
    status: str
    expected_arrival: date
    payout_id: str | None
    payout_status: str | None


class MovementRow(NamedTuple):
    """One journal entry's effect on a merchant: ``amount_minor`` is what it adds to what
    the platform owes the merchant (the negated sum of the entry's lines on the merchant's
    accounts: credits to a liability raise it)."""

    entry_id: int
    created_at: datetime
    kind: str
    reference: str | None
    amount_minor: int


class KindTotal(NamedTuple):
    kind: str
    entries: int
    amount_minor: int


class FeeRow(NamedTuple):
    """A merchant's captures and fees on the items of a period."""

    merchant_id: str
    currency: str
    captures: int
    capture_minor: int
    net_minor: int
    fee_minor: int


class TerminalActivity(NamedTuple):
    """One terminal's transactions of a business date."""

    merchant_id: str
    terminal_id: str
    txn_count: int
    approved: int
    net_minor: int


class MerchantName(NamedTuple):
    merchant_id: str
    legal_name: str
    short_name: str
    settlement_cycle: str
    currency: str


class ReportRepository:
    """Aggregates and pages for the reports."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def merchant_names(self, merchant_ids: Sequence[str] | None) -> dict[str, MerchantName]:
        """Names, cycle and currency of the given merchants (all when None)."""
        m = merchants.c
        query = select(m.merchant_id, m.legal_name, m.short_name, m.settlement_cycle,
                       m.currency).order_by(m.merchant_id)
        if merchant_ids is not None:
            query = query.where(m.merchant_id.in_(list(merchant_ids)))
        return {r[0]: MerchantName(*r) for r in self._conn.execute(query)}

    def daily_summary(self, business_date: date, merchant_id: str | None) -> list[SummaryRow]:
        """Transactions of a business date grouped by merchant, terminal, card kind, type,
        response code and status, with the net and fees of their settlement items."""
        t = transactions.c
        i = settlement_items.c
        items = (select(i.merchant_id, i.txn_id, func.sum(i.amount_minor).label("net"),
                        func.sum(i.fee_minor).label("fee"))
                 .where(i.business_date == business_date)
                 .group_by(i.merchant_id, i.txn_id))
        if merchant_id is not None:
            items = items.where(i.merchant_id == merchant_id)
        totals = items.subquery("item_totals")
        keys = (t.merchant_id, t.terminal_id, t.card_kind, t.txn_type, t.response_code,
                t.status, t.currency)
        query = (
            select(*keys, func.count(), func.sum(t.amount_minor),
                   func.sum(func.coalesce(totals.c.net, 0)),
                   func.sum(func.coalesce(totals.c.fee, 0)))
            .select_from(transactions.outerjoin(totals, and_(
                totals.c.merchant_id == t.merchant_id, totals.c.txn_id == t.txn_id)))
            .where(t.business_date == business_date)
            .group_by(*keys).order_by(*keys))
        if merchant_id is not None:
            query = query.where(t.merchant_id == merchant_id)
        return [SummaryRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], int(r[7]), int(r[8]),
                           int(r[9]), int(r[10])) for r in self._conn.execute(query)]

    def batches(self, date_from: date, date_to: date, merchant_id: str | None,
                after: str | None, limit: int) -> list[BatchRow]:
        """Settlement batches with a settlement date in the period, by batch id (keyset)."""
        b, p = settlement_batches.c, payouts.c
        query = (
            select(b.batch_id, b.merchant_id, b.cycle, b.settlement_date, b.item_count,
                   b.gross_minor, b.fee_minor, b.surcharge_minor, b.debt_recovered_minor,
                   b.debt_added_minor, b.payout_minor, b.currency, b.status,
                   b.expected_arrival, p.payout_id, p.status)
            .select_from(settlement_batches.outerjoin(payouts, p.batch_id == b.batch_id))
            .where(b.settlement_date >= date_from, b.settlement_date <= date_to)
            .order_by(b.batch_id).limit(limit))
        if merchant_id is not None:
            query = query.where(b.merchant_id == merchant_id)
        if after is not None:
            query = query.where(b.batch_id > after)
        return [BatchRow._make(r) for r in self._conn.execute(query)]

    def batch_totals(self, date_from: date, date_to: date,
                     merchant_id: str | None) -> tuple[int, dict[str, int]]:
        """(count, column → sum) of the batches :meth:`batches` pages through."""
        b = settlement_batches.c
        columns = ("item_count", "gross_minor", "fee_minor", "surcharge_minor",
                   "debt_recovered_minor", "debt_added_minor", "payout_minor")
        query = (select(func.count(), *(func.coalesce(func.sum(b[c]), 0) for c in columns))
                 .where(b.settlement_date >= date_from, b.settlement_date <= date_to))
        if merchant_id is not None:
            query = query.where(b.merchant_id == merchant_id)
        row = self._conn.execute(query).one()
        return int(row[0]), {c: int(v) for c, v in zip(columns, row[1:], strict=True)}

    def payouts_by_date(self, date_from: date, date_to: date,
                        merchant_id: str | None) -> list[tuple[date, int]]:
        """(settlement date, payout total) of the period's batches."""
        b = settlement_batches.c
        query = (select(b.settlement_date, func.sum(b.payout_minor))
                 .where(b.settlement_date >= date_from, b.settlement_date <= date_to)
                 .group_by(b.settlement_date).order_by(b.settlement_date))
        if merchant_id is not None:
            query = query.where(b.merchant_id == merchant_id)
        return [(r[0], int(r[1])) for r in self._conn.execute(query)]

    # -- the merchant statement -----------------------------------------------------------
    def merchant_position(self, merchant_id: str, currency: str, before: datetime,
                          entry_id_max: int) -> int:
        """What the platform owed the merchant just before ``before``: the negated sum of
        every line on the merchant's accounts of entries made earlier (and not after the
        statement's snapshot ``entry_id_max``)."""
        line, entry = journal_lines.c, journal_entries.c
        value = self._conn.execute(
            select(func.coalesce(func.sum(line.amount_minor), 0))
            .select_from(journal_lines.join(journal_entries,
                                            entry.entry_id == line.entry_id))
            .where(line.merchant_id == merchant_id, line.currency == currency,
                   entry.created_at < before, line.entry_id <= entry_id_max)).scalar()
        return -int(value or 0)

    def last_entry_id(self) -> int:
        """The newest journal entry: a statement reads up to it, so rows appended while it
        streams do not make its totals disagree."""
        return int(self._conn.execute(
            select(func.coalesce(func.max(journal_entries.c.entry_id), 0))).scalar() or 0)

    def movement_totals(self, merchant_id: str, currency: str, start: datetime,
                        end: datetime, entry_id_max: int) -> list[KindTotal]:
        """Per entry kind: entries and their total effect on the merchant in [start, end)."""
        line, entry = journal_lines.c, journal_entries.c
        query = (
            select(entry.kind, func.count(func.distinct(entry.entry_id)),
                   func.sum(line.amount_minor))
            .select_from(journal_lines.join(journal_entries,
                                            entry.entry_id == line.entry_id))
            .where(line.merchant_id == merchant_id, line.currency == currency,
                   entry.created_at >= start, entry.created_at < end,
                   line.entry_id <= entry_id_max)
            .group_by(entry.kind).order_by(entry.kind))
        return [KindTotal(r[0], int(r[1]), -int(r[2])) for r in self._conn.execute(query)]

    def movements(self, merchant_id: str, currency: str, start: datetime, end: datetime,
                  entry_id_max: int, after_entry_id: int, limit: int) -> list[MovementRow]:
        """One page of the merchant's movements in [start, end), by entry id (keyset)."""
        line, entry = journal_lines.c, journal_entries.c
        total = func.sum(line.amount_minor)
        query = (
            select(entry.entry_id, entry.created_at, entry.kind, entry.reference, total)
            .select_from(journal_lines.join(journal_entries,
                                            entry.entry_id == line.entry_id))
            .where(line.merchant_id == merchant_id, line.currency == currency,
                   entry.created_at >= start, entry.created_at < end,
                   line.entry_id <= entry_id_max, line.entry_id > after_entry_id)
            .group_by(entry.entry_id, entry.created_at, entry.kind, entry.reference)
            .order_by(entry.entry_id).limit(limit))
        return [MovementRow(r[0], r[1], r[2], r[3], -int(r[4]))
                for r in self._conn.execute(query)]

    # -- fees -------------------------------------------------------------------------------
    def fee_totals(self, date_from: date, date_to: date,
                   merchant_id: str | None) -> list[FeeRow]:
        """Per merchant and currency: captures, their amount, the net of every item and the
        fees of the items with a business date in the period."""
        i = settlement_items.c
        is_capture = i.kind == "capture"
        query = (
            select(i.merchant_id, i.currency,
                   func.sum(case((is_capture, 1), else_=0)),
                   func.sum(case((is_capture, i.amount_minor), else_=0)),
                   func.sum(i.amount_minor), func.sum(i.fee_minor))
            .where(i.business_date >= date_from, i.business_date <= date_to)
            .group_by(i.merchant_id, i.currency).order_by(i.merchant_id, i.currency))
        if merchant_id is not None:
            query = query.where(i.merchant_id == merchant_id)
        return [FeeRow(r[0], r[1], int(r[2]), int(r[3]), int(r[4]), int(r[5]))
                for r in self._conn.execute(query)]

    # -- terminals --------------------------------------------------------------------------
    def terminal_activity(self, business_date: date,
                          merchant_id: str | None) -> dict[tuple[str, str], TerminalActivity]:
        """Per terminal: transactions of the business date, how many approved, their net."""
        t = transactions.c
        i = settlement_items.c
        items = (select(i.merchant_id, i.txn_id, func.sum(i.amount_minor).label("net"))
                 .where(i.business_date == business_date)
                 .group_by(i.merchant_id, i.txn_id).subquery("item_totals"))
        query = (
            select(t.merchant_id, t.terminal_id, func.count(),
                   func.sum(case((t.response_code == "00", 1), else_=0)),
                   func.sum(func.coalesce(items.c.net, 0)))
            .select_from(transactions.outerjoin(items, and_(
                items.c.merchant_id == t.merchant_id, items.c.txn_id == t.txn_id)))
            .where(t.business_date == business_date)
            .group_by(t.merchant_id, t.terminal_id))
        if merchant_id is not None:
            query = query.where(t.merchant_id == merchant_id)
        return {(r[0], r[1]): TerminalActivity(r[0], r[1], int(r[2]), int(r[3]), int(r[4]))
                for r in self._conn.execute(query)}

    def terminal_count(self, merchant_id: str | None) -> int:
        query = select(func.count()).select_from(terminals)
        if merchant_id is not None:
            query = query.where(terminals.c.merchant_id == merchant_id)
        return int(self._conn.execute(query).scalar() or 0)
