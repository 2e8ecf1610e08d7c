"""A year of demo data for the console benchmark (``bench/console.py``), written in bulk.

The three demo merchants of ``autosettle demo seed`` (``simulators/demo_seed.py``) trade for
:data:`DAYS` days up to the current business date: about :data:`TRANSACTIONS_FULL` card
transactions in all, on their four terminals, one terminal batch per terminal and day.
Per 1,000 sales about 30 are declined by the issuer, 2 time out and are reversed (冲正), 5
approved sales are voided the same day (消费撤销) and 4 are refunded in part or in full
within a week (退货).

What each record writes is what the services write for it, made by the same domain code:

* the record's state comes from the transaction state machine
  (``domain.transactions``: ``new_transaction`` → ``approve`` / ``decline`` / ``reverse``);
* every money event of an approval is posted through ``domain.payment_postings.posting``
  (the same balanced entry, idempotency key and fingerprint as ``services.payments``);
* every money event becomes a settlement item priced by ``domain.fees`` (``transaction_fee``,
  ``refund_fee_credit``) with the merchant's schedule and due date from
  ``services.settlement_items.read_terms``.

Those rows go in one bulk INSERT per table and day (``store.bulk.insert_rows``), with the
journal entries' ids given by the generator so the lines can name them. On PostgreSQL the
deferred per-row balance trigger is switched off inside each day's load transaction (and on
again before it commits); the generator checks instead, once at the end, that every entry
balances (one ``GROUP BY``). Then the day is settled, paid and confirmed by the real services:
``settlement.settle`` (same-day and next-day cycles), ``payouts.export_payouts`` and
``payouts.confirm_payout`` (one call per payout: a few per day), with the service clock set to
that day. The last day's payouts stay pending or sent, for the console to confirm.

Deterministic for a seed: the same sizes give the same rows (identifiers included).
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select, text

from autosettle.domain import payment_postings as postings
from autosettle.domain import transactions as tm
from autosettle.domain.cards import CardBrand, CardKind, CardRef, luhn_check_digit
from autosettle.domain.fees import FeeSchedule, refund_fee_credit, transaction_fee
from autosettle.domain.ledger import JournalEntry
from autosettle.domain.money import CNY, Money
from autosettle.domain.payouts import PayoutStatus
from autosettle.services import payouts as payout_service
from autosettle.services import settlement
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.services.settlement_items import ItemTerms, read_terms
from autosettle.simulators import demo_seed
from autosettle.store.bulk import insert_rows
from autosettle.store.tables import (
    journal_entries,
    journal_lines,
    settlement_items,
    terminal_batches,
    transactions,
)

TRANSACTIONS_FULL = 2_000_000
TRANSACTIONS_QUICK = 20_000
DAYS = 365
SEED = 20_261_204
SHANGHAI = ZoneInfo("Asia/Shanghai")
CHANNEL = "issuer-sim"  # the demo's channel (simulators/issuer.py)
CARDS = 20_000
REGULARS = 500
CREDIT_EVERY = 3      # card c is a credit card when c % 3 == 0, else debit
DECLINE_PER_MILLE = 30
TIMEOUT_PER_MILLE = 2
VOID_PER_MILLE = 5
REFUND_PER_MILLE = 4
REFUND_DAYS_MAX = 6
DECLINE_CODES = ("51", "51", "51", "55", "05", "54", "61", "75")
ENTRY_MODES = ("071", "071", "051", "021")  # contactless, chip, magnetic stripe
ANSWER_DELAY_MS = (180, 900)
SETTLE_AT = (22, 40)     # local time of the day's settlement runs, before the 23:00 cut-off
OPEN_AT = (7, 0)
CLOSE_AT = (22, 30)


@dataclass(frozen=True, slots=True)
class Shop:
    """How one demo merchant trades: its share of the volume, amounts and busy hours."""

    merchant_id: str
    share: float
    amount_min: int
    amount_max: int
    weekend_factor: float
    hour_weights: tuple[float, ...]  # OPEN_AT..CLOSE_AT, one per hour from 7 to 22


_MEAL = (0.2, 0.6, 0.8, 0.9, 3.0, 2.5, 0.8, 0.5, 0.6, 0.9, 2.6, 2.8, 1.4, 0.6, 0.4, 0.2)
_SHOP = (0.3, 0.6, 1.0, 1.2, 1.3, 1.2, 1.0, 1.0, 1.1, 1.4, 1.8, 1.9, 1.6, 1.1, 0.7, 0.3)
_PHARMACY = (0.5, 1.0, 1.4, 1.4, 1.2, 1.0, 1.1, 1.2, 1.2, 1.2, 1.1, 1.0, 0.9, 0.7, 0.5, 0.3)

SHOPS: tuple[Shop, ...] = (
    Shop("898310054110001", 0.50, 350, 98_000, 1.25, _SHOP),       # Hualian Supermarket
    Shop("898310058120001", 0.20, 1_200, 12_800, 1.10, _MEAL),     # Lao Wang Noodles
    Shop("898310059120001", 0.30, 800, 62_000, 0.90, _PHARMACY),   # Kangjian Pharmacy
)


@dataclass
class Facts:
    """What was generated, and a few rows the benchmark looks up by their details."""

    transactions: int = 0
    approved_sales: int = 0
    declined: int = 0
    reversed: int = 0
    voids: int = 0
    refunds: int = 0
    entries: int = 0
    lines: int = 0
    items: int = 0
    first_day: str = ""
    last_day: str = ""
    batches: int = 0
    payouts: int = 0
    payouts_open: int = 0
    seconds_rows: float = 0.0
    seconds_settlement: float = 0.0
    seconds_total: float = 0.0
    samples: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per merchant: one voided and one refunded sale of the last days (txn_id, last4,
    amount_minor, rrn, auth_code, business_date), for searches and detail pages."""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Clock:
    """A settable service clock: the generator moves it from day to day."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def local(day: date, hour: int, minute: int = 0, second: float = 0.0) -> datetime:
    """A Shanghai wall-clock time of ``day``, as an aware UTC datetime."""
    at = datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)
    return (at + timedelta(seconds=second)).astimezone(UTC)


@dataclass
class _Sale:
    """An approved sale kept for a later refund."""

    txn: tm.Transaction
    row: dict[str, Any]
    fee_minor: int
    card_kind: str


@dataclass
class _DayRows:
    txns: list[dict[str, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    refunded: list[tuple[int, datetime, str, str]] = field(default_factory=list)
    batches: list[dict[str, Any]] = field(default_factory=list)


class Generator:
    """Makes the rows of one day after another; keeps ids, cards and pending refunds."""

    def __init__(self, ctx: ServiceContext, rng: random.Random, terms: dict[str, ItemTerms],
                 terminals: dict[str, tuple[str, ...]], first_entry_id: int,
                 first_day: date) -> None:
        self.ctx = ctx
        self.rng = rng
        self.terms = terms
        self.terminals = terminals
        self.next_entry_id = first_entry_id
        self.first_day = first_day
        self.cards = self._cards()
        self.refunds_due: dict[date, list[tuple[str, _Sale, int]]] = defaultdict(list)
        self.facts = Facts()
        self._priced: dict[tuple[str, date], tuple[FeeSchedule, date]] = {}

    def _cards(self) -> list[CardRef]:
        prefixes = ("622202", "622848", "621700", "622588")
        credit = ("625802", "628262", "628258")
        cards = []
        for c in range(CARDS):
            bins = credit if c % CREDIT_EVERY == 0 else prefixes
            partial = f"{bins[c % len(bins)]}{SEED % 1000:03d}{c:09d}"
            cards.append(self.ctx.tokenizer.describe(partial + luhn_check_digit(partial)))
        return cards

    def _id(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def _post(self, rows: _DayRows, entry: JournalEntry | None, at: datetime) -> None:
        if entry is None:
            return
        entry_id = self.next_entry_id
        self.next_entry_id += 1
        rows.entries.append({
            "entry_id": entry_id, "idempotency_key": entry.idempotency_key,
            "fingerprint": entry.fingerprint(), "kind": entry.kind,
            "merchant_id": entry.merchant_id, "reference": entry.reference, "created_at": at})
        rows.lines.extend({
            "entry_id": entry_id, "account_code": line.account.code,
            "merchant_id": line.account.merchant_id, "currency": line.amount.currency.code,
            "amount_minor": line.amount.amount_minor} for line in entry.lines)

    def _terms_on(self, terms: ItemTerms, day: date) -> tuple[FeeSchedule, date]:
        """The schedule in force on ``day`` and the due date of its items (memoised: the
        default schedule is built afresh by every call of ``schedule_on``)."""
        key = (terms.merchant.merchant_id, day)
        found = self._priced.get(key)
        if found is None:
            found = self._priced[key] = (terms.schedule_on(day), terms.due_date(day))
        return found

    def _item(self, rows: _DayRows, terms: ItemTerms, record: dict[str, Any], kind: str,
              source: str, amount: int, fee: int, at: datetime,
              priced_on: date | None = None) -> None:
        day = record["business_date"]
        schedule = self._terms_on(terms, priced_on or day)[0]
        rows.items.append({
            "merchant_id": record["merchant_id"], "txn_id": record["txn_id"],
            "source_txn_id": source, "kind": kind, "txn_type": record["txn_type"],
            "card_kind": record["card_kind"], "business_date": day,
            "cycle": terms.merchant.settlement_cycle.value,
            "due_date": self._terms_on(terms, day)[1],
            "amount_minor": amount, "fee_minor": fee, "currency": "CNY",
            "fee_schedule": f"{schedule.schedule_id}@v{schedule.version}"[:60],
            "held": False, "batch_id": None, "created_at": at})

    def _record(self, mid: str, terminal_id: str, txn: tm.Transaction, card: CardRef,
                batch_no: str, stan: int, at: datetime, answered: datetime,
                entry_mode: str, original: str | None) -> dict[str, Any]:
        payload = {"type": txn.type.value, "merchant": mid, "terminal": terminal_id,
                   "amount": txn.amount.amount_minor, "currency": "CNY",
                   "card": card.token if original is None else None,
                   "original": [original, None, None, None] if original else None}
        return {
            "merchant_id": mid, "txn_id": txn.id, "terminal_id": terminal_id,
            "txn_type": txn.type.value, "status": txn.status.value,
            "amount_minor": txn.amount.amount_minor, "currency": "CNY",
            "refunded_minor": txn.refunded.amount_minor, "original_txn_id": original,
            "card_token": card.token, "pan_masked": card.masked, "pan_last4": card.last4,
            "card_brand": str(card.brand), "card_kind": str(card.kind),
            "entry_mode": entry_mode, "batch_no": batch_no, "stan": f"{stan:06d}",
            "rrn": f"{self.rng.randrange(10**12):012d}", "auth_code": None,
            "response_code": None, "refusal_reason": None, "channel": CHANNEL,
            "channel_ref": None, "idempotency_key": None,
            "request_fingerprint": hashlib.sha256(
                json.dumps(payload, sort_keys=True).encode()).hexdigest(),
            "business_date": txn.business_date, "expires_on": None, "created_at": at,
            "updated_at": answered, "answered_at": answered}

    def day(self, day: date, count: int, last_at: datetime | None) -> _DayRows:
        """Every row of ``day``: ``count`` sales (and what follows from them) spread over
        the opening hours, none after ``last_at`` (today: the current time)."""
        rows = _DayRows()
        rng = self.rng
        batch_no = f"{(day - self.first_day).days + 1:06d}"
        stans: dict[str, int] = {}
        events: list[tuple[datetime, int, Callable[[], None]]] = []
        order = itertools.count()
        for shop in SHOPS:
            n = round(count * shop.share * (shop.weekend_factor if day.weekday() >= 5 else 1))
            terms = self.terms[shop.merchant_id]
            hours = list(range(OPEN_AT[0], CLOSE_AT[0] + 1))
            cumulative = list(itertools.accumulate(shop.hour_weights))
            for _ in range(n):
                hour = hours[bisect.bisect_left(cumulative, rng.random() * cumulative[-1])]
                at = local(day, hour, 0, rng.random() * 3600)
                if last_at is not None and at > last_at:
                    continue
                events.append((at, next(order), self._sale_maker(rows, shop, terms, day, at,
                                                                 batch_no, stans)))
            for sale_mid, sale, amount in self.refunds_due.pop(day, []):
                if sale_mid != shop.merchant_id:
                    continue
                at = local(day, rng.choice(hours[2:-2]), 0, rng.random() * 3600)
                if last_at is not None and at > last_at:
                    at = last_at - timedelta(seconds=rng.random() * 60)
                events.append((at, next(order), self._refund_maker(rows, shop, terms, day, at,
                                                                   batch_no, stans, sale,
                                                                   amount)))
        for _, _, make in sorted(events, key=lambda e: (e[0], e[1])):
            make()
        for key, last in stans.items():
            mid, terminal_id = key.split(":")
            rows.batches.append({
                "merchant_id": mid, "terminal_id": terminal_id, "batch_no": batch_no,
                "status": "open" if last_at is not None else "closed",
                "next_stan": last + 1, "opened_at": local(day, *OPEN_AT),
                "closed_at": None if last_at is not None else local(day, 22, 50)})
        return rows

    def _next_stan(self, stans: dict[str, int], mid: str, terminal_id: str) -> int:
        key = f"{mid}:{terminal_id}"
        stans[key] = stans.get(key, 0) + 1
        return stans[key]

    def _sale_maker(self, rows: _DayRows, shop: Shop, terms: ItemTerms, day: date,
                    at: datetime, batch_no: str,
                    stans: dict[str, int]) -> Callable[[], None]:
        def make() -> None:
            self._sale(rows, shop, terms, day, at, batch_no, stans)
        return make

    def _refund_maker(self, rows: _DayRows, shop: Shop, terms: ItemTerms, day: date,
                      at: datetime, batch_no: str, stans: dict[str, int], sale: _Sale,
                      amount: int) -> Callable[[], None]:
        def make() -> None:
            self._refund(rows, shop, terms, day, at, batch_no, stans, sale, amount)
        return make

    def _sale(self, rows: _DayRows, shop: Shop, terms: ItemTerms, day: date, at: datetime,
              batch_no: str, stans: dict[str, int]) -> None:
        rng = self.rng
        mid = shop.merchant_id
        terminal_id = rng.choice(self.terminals[mid])
        # One sale in five by a regular (the first REGULARS cards), the rest by anyone.
        card = self.cards[rng.randrange(REGULARS if rng.random() < 0.2 else CARDS)]
        amount = int(shop.amount_min * (shop.amount_max / shop.amount_min) ** rng.random())
        amount -= amount % 10 if rng.random() < 0.6 else 0
        txn = tm.new_transaction(self._id(), tm.TxnType.SALE, Money(amount, CNY), day,
                                 batch_no)
        answered = at + timedelta(milliseconds=rng.randint(*ANSWER_DELAY_MS))
        fate = rng.randrange(1000)
        record = self._record(mid, terminal_id, txn, card, batch_no,
                              self._next_stan(stans, mid, terminal_id), at, answered,
                              rng.choice(ENTRY_MODES), None)
        self.facts.transactions += 1
        if fate < DECLINE_PER_MILLE:
            step = tm.decline(txn)
            assert isinstance(step, tm.Transition)
            record.update(status=step.txn.status.value, response_code=rng.choice(DECLINE_CODES),
                          refusal_reason="issuer_declined")
            rows.txns.append(record)
            self.facts.declined += 1
            return
        if fate < DECLINE_PER_MILLE + TIMEOUT_PER_MILLE:
            step = tm.reverse(txn)
            assert isinstance(step, tm.Transition)
            record.update(status=step.txn.status.value, response_code="98",
                          refusal_reason="channel_timeout",
                          answered_at=at + timedelta(seconds=30),
                          updated_at=at + timedelta(seconds=30))
            rows.txns.append(record)
            self.facts.reversed += 1
            return
        step = tm.approve(txn)
        assert isinstance(step, tm.Transition)
        sale = step.txn
        record.update(status=sale.status.value, response_code="00",
                      auth_code=f"{rng.randrange(10**6):06d}")
        rows.txns.append(record)
        self.facts.approved_sales += 1
        kind = CardKind(card.kind)
        fee = transaction_fee(self._terms_on(terms, day)[0], sale.amount, kind).amount_minor
        for event in step.events:
            self._post(rows, postings.posting(event, sale.type.value, mid), answered)
            self._item(rows, terms, record, "capture", sale.id, amount, fee, answered)
        fate -= DECLINE_PER_MILLE + TIMEOUT_PER_MILLE
        if fate < VOID_PER_MILLE:
            self._void(rows, shop, terms, record, sale, fee, card, batch_no, stans)
        elif fate < VOID_PER_MILLE + REFUND_PER_MILLE:
            later = day + timedelta(days=rng.randint(0, REFUND_DAYS_MAX))
            part = amount if rng.random() < 0.5 else max(1, amount * rng.randint(10, 90) // 100)
            self.refunds_due[later].append((mid, _Sale(sale, record, fee, card.kind), part))

    def _void(self, rows: _DayRows, shop: Shop, terms: ItemTerms, sale_row: dict[str, Any],
              sale: tm.Transaction, fee: int, card: CardRef, batch_no: str,
              stans: dict[str, int]) -> None:
        rng = self.rng
        mid = shop.merchant_id
        at = sale_row["answered_at"] + timedelta(seconds=rng.randint(20, 600))
        answered = at + timedelta(milliseconds=rng.randint(*ANSWER_DELAY_MS))
        void = tm.new_transaction(self._id(), tm.TxnType.VOID, sale.amount, sale.business_date,
                                  batch_no, sale.id)
        step = tm.approve(void, (sale,))
        assert isinstance(step, tm.Transition)
        record = self._record(mid, sale_row["terminal_id"], step.txn, card, batch_no,
                              self._next_stan(stans, mid, sale_row["terminal_id"]), at,
                              answered, sale_row["entry_mode"], sale.id)
        record.update(status=step.txn.status.value, response_code="00",
                      auth_code=f"{rng.randrange(10**6):06d}")
        rows.txns.append(record)
        sale_row.update(status=step.chain[0].status.value, updated_at=answered)
        for event in step.events:
            self._post(rows, postings.posting(event, void.type.value, mid), answered)
        self._item(rows, terms, record, "void", sale.id, -sale.amount.amount_minor, -fee,
                   answered)
        self.facts.transactions += 1
        self.facts.voids += 1
        self.facts.samples.setdefault(mid, {})["voided"] = _sample(sale_row)

    def _refund(self, rows: _DayRows, shop: Shop, terms: ItemTerms, day: date, at: datetime,
                batch_no: str, stans: dict[str, int], sale: _Sale, amount: int) -> None:
        rng = self.rng
        mid = shop.merchant_id
        terminal_id = sale.row["terminal_id"]
        answered = at + timedelta(milliseconds=rng.randint(*ANSWER_DELAY_MS))
        refund = tm.new_transaction(self._id(), tm.TxnType.REFUND, Money(amount, CNY), day,
                                    batch_no, sale.txn.id)
        step = tm.approve(refund, (sale.txn,))
        assert isinstance(step, tm.Transition)
        # A follow-up copies its original's card fields, as the payment service does.
        record = self._record(mid, terminal_id, step.txn, _card_of(sale.row), batch_no,
                              self._next_stan(stans, mid, terminal_id), at, answered,
                              sale.row["entry_mode"], sale.txn.id)
        record.update(status=step.txn.status.value, response_code="00",
                      auth_code=f"{rng.randrange(10**6):06d}")
        rows.txns.append(record)
        after = step.chain[0]
        sale.txn = after
        if sale.row["business_date"] == day:
            sale.row.update(refunded_minor=after.refunded.amount_minor, updated_at=answered)
        else:
            rows.refunded.append((after.refunded.amount_minor, answered, mid, sale.txn.id))
        for event in step.events:
            self._post(rows, postings.posting(event, refund.type.value, mid), answered)
        schedule = self._terms_on(terms, sale.txn.business_date)[0]
        credit = refund_fee_credit(schedule, sale.txn.amount, Money(sale.fee_minor, CNY),
                                   Money(amount, CNY))
        self._item(rows, terms, record, "refund", sale.txn.id, -amount, -credit.amount_minor,
                   answered, priced_on=sale.txn.business_date)
        self.facts.transactions += 1
        self.facts.refunds += 1
        self.facts.samples.setdefault(mid, {})["refunded"] = _sample(sale.row)


def _card_of(row: dict[str, Any]) -> CardRef:
    """The card fields of a stored sale (a follow-up copies them from its original)."""
    return CardRef(token=row["card_token"], masked=row["pan_masked"],
                   brand=CardBrand(row["card_brand"]), kind=CardKind(row["card_kind"]),
                   last4=row["pan_last4"], bin6=row["pan_masked"][:6])


def _sample(row: dict[str, Any]) -> dict[str, Any]:
    return {"txn_id": row["txn_id"], "last4": row["pan_last4"],
            "amount_minor": row["amount_minor"], "rrn": row["rrn"],
            "auth_code": row["auth_code"], "business_date": row["business_date"].isoformat(),
            "terminal_id": row["terminal_id"], "batch_no": row["batch_no"],
            "stan": row["stan"]}


# -- loading, settling, paying ---------------------------------------------------------------

def _daily_base(total: int, days: Sequence[date]) -> float:
    """Sales per day before each shop's share and weekend factor, so the year adds up."""
    weight = sum(shop.share * (shop.weekend_factor if day.weekday() >= 5 else 1.0)
                 for day in days for shop in SHOPS)
    return total / weight


def _load(ctx: ServiceContext, rows: _DayRows) -> None:
    """One day's rows in one transaction, one bulk INSERT per table."""
    with ctx.db.unit_of_work() as uow:
        conn = uow.connection
        postgres = conn.dialect.name == "postgresql"
        if postgres:  # the per-row deferred check; checked for the whole year at the end
            conn.exec_driver_sql(
                "ALTER TABLE journal_lines DISABLE TRIGGER journal_lines_balanced")
        insert_rows(conn, transactions, rows.txns)
        insert_rows(conn, journal_entries, rows.entries)
        insert_rows(conn, journal_lines, rows.lines)
        insert_rows(conn, settlement_items, rows.items)
        insert_rows(conn, terminal_batches, rows.batches)
        if rows.refunded:
            conn.execute(text(
                "UPDATE transactions SET refunded_minor = :refunded, updated_at = :at "
                "WHERE merchant_id = :mid AND txn_id = :txn"),
                [{"refunded": r, "at": _bind_time(conn, at), "mid": m, "txn": t}
                 for r, at, m, t in rows.refunded])
        if postgres:
            conn.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('journal_entries', 'entry_id'), "
                "(SELECT max(entry_id) FROM journal_entries))")
            conn.exec_driver_sql(
                "ALTER TABLE journal_lines ENABLE TRIGGER journal_lines_balanced")


def _bind_time(conn: Connection, at: datetime) -> Any:
    """``at`` as the UTCDateTime column stores it (naive UTC on SQLite)."""
    return at.replace(tzinfo=None) if conn.dialect.name == "sqlite" else at


def _max_entry_id(ctx: ServiceContext) -> int:
    with ctx.db.unit_of_work() as uow:
        return int(uow.connection.execute(
            select(func.coalesce(func.max(journal_entries.c.entry_id), 0))).scalar() or 0)


def _settle_and_pay(ctx: ServiceContext, day: date, last: bool,
                    out_dir: Path, fail_one: bool) -> None:
    """The day's settlement runs, then yesterday's payouts confirmed and today's sent
    (the last day: runs only; its payouts stay pending, the day before's sent)."""
    settlement.settle(ctx, day, settlement.SAME_DAY)
    settlement.settle(ctx, day, settlement.NEXT_DAY)
    if last:
        return
    with ctx.db.unit_of_work() as uow:
        sent = uow.settlement.payouts(status=PayoutStatus.SENT.value, limit=None)
    for number, payout in enumerate(sent):
        if fail_one and number == 0:  # the bank returns one: failed, retried, sent again
            payout_service.fail_payout(ctx, payout.payout_id, "account frozen (bench)")
            payout_service.retry_payout(ctx, SYSTEM, payout.payout_id)
            continue
        payout_service.confirm_payout(ctx, payout.payout_id)
    payout_service.export_payouts(ctx, day, out_dir)


def _check(ctx: ServiceContext) -> None:
    with ctx.db.unit_of_work() as uow:
        imbalance = uow.ledger.imbalance_by_currency()
        unbalanced = uow.ledger.unbalanced_entries(limit=5)
    if any(imbalance.values()) or unbalanced:
        raise RuntimeError(f"generated ledger does not balance: {imbalance}, entries "
                           f"{unbalanced}")


@dataclass
class Target:
    """One database being filled: its service context and that context's clock."""

    ctx: ServiceContext
    clock: Clock
    label: str
    settle_seconds: float = 0.0
    load_seconds: float = 0.0


def build(targets: Sequence[Target], total: int, now: datetime, out_dir: Path,
          progress: Callable[[str], None]) -> Facts:
    """Seed the demo data set and generate a year of trading up to ``now`` in each target's
    (migrated, empty) database: the rows are made once and loaded into every target, then
    each target's own services settle and pay the day (each clock is moved day by day)."""
    started = time.perf_counter()
    shanghai_now = now.astimezone(SHANGHAI)
    end_day = (shanghai_now + timedelta(hours=1 if shanghai_now.hour >= 23 else 0)).date()
    days = [end_day - timedelta(days=DAYS - 1 - n) for n in range(DAYS)]
    terms: dict[str, ItemTerms] = {}
    for target in targets:
        target.clock.at = local(days[0], 6)
        demo_seed.seed(target.ctx)
        with target.ctx.db.unit_of_work() as uow:
            for shop in SHOPS:
                found = read_terms(uow, shop.merchant_id)
                if found is None:
                    raise RuntimeError(f"demo merchant {shop.merchant_id} is missing")
                terms[shop.merchant_id] = found
    terminals = {d.merchant.merchant_id: tuple(t.terminal_id for t in d.terminals)
                 for d in demo_seed.DEMO_MERCHANTS}
    gen = Generator(targets[0].ctx, random.Random(SEED), terms, terminals, 0, days[0])
    base = _daily_base(total, days)
    rows_seconds = 0.0
    for number, day in enumerate(days):
        last = day == end_day
        mark = time.perf_counter()
        gen.next_entry_id = 0  # ids within the day; each database adds its own offset
        rows = gen.day(day, round(base), now if last else None)
        gen.facts.entries += len(rows.entries)
        gen.facts.lines += len(rows.lines)
        gen.facts.items += len(rows.items)
        rows_seconds += time.perf_counter() - mark
        for target in targets:
            mark = time.perf_counter()
            _load(target.ctx, _offset(rows, _max_entry_id(target.ctx) + 1))
            target.load_seconds += time.perf_counter() - mark
            mark = time.perf_counter()
            target.clock.at = min(now, local(day, *SETTLE_AT))
            _settle_and_pay(target.ctx, day, last, out_dir / target.label,
                            fail_one=number == DAYS // 2)
            target.settle_seconds += time.perf_counter() - mark
        if number % 30 == 29 or last:
            progress(f"console data: {day} done, {gen.facts.transactions:,} transactions "
                     f"(rows {rows_seconds:.0f} s; " + ", ".join(
                         f"{t.label} load {t.load_seconds:.0f} s, settlement "
                         f"{t.settle_seconds:.0f} s" for t in targets) + ")")
    facts = gen.facts
    facts.first_day, facts.last_day = days[0].isoformat(), end_day.isoformat()
    facts.seconds_rows = rows_seconds
    for target in targets:
        target.clock.at = now
        _finish(target.ctx)
    with targets[0].ctx.db.unit_of_work() as uow:
        conn = uow.connection
        facts.batches = int(conn.exec_driver_sql(
            "SELECT count(*) FROM settlement_batches").scalar() or 0)
        facts.payouts = int(conn.exec_driver_sql("SELECT count(*) FROM payouts").scalar() or 0)
        facts.payouts_open = int(conn.exec_driver_sql(
            "SELECT count(*) FROM payouts WHERE status <> 'confirmed'").scalar() or 0)
    facts.seconds_settlement = sum(t.settle_seconds for t in targets)
    facts.seconds_total = time.perf_counter() - started
    return facts


def _offset(rows: _DayRows, first_entry_id: int) -> _DayRows:
    """``rows`` with the day's entry ids moved to start at ``first_entry_id``."""
    return _DayRows(
        txns=rows.txns, items=rows.items, refunded=rows.refunded, batches=rows.batches,
        entries=[dict(e, entry_id=e["entry_id"] + first_entry_id) for e in rows.entries],
        lines=[dict(ln, entry_id=ln["entry_id"] + first_entry_id) for ln in rows.lines])


def _finish(ctx: ServiceContext) -> None:
    """The whole year's ledger balances; PostgreSQL's statistics as autovacuum leaves them."""
    _check(ctx)
    if ctx.db.is_postgres:
        with ctx.db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("VACUUM ANALYZE")


# -- made once, reused: the files and databases of the benchmark ------------------------------

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "var" / "bench"
"""Where the SQLite file, the markers and the data directory live (git-ignored)."""
FRESH_ENV = "AUTOSETTLE_BENCH_CONSOLE_FRESH"
SQLITE_CACHE_KIB = 262_144  # the load's page cache: random txn ids spread over the B-tree


@dataclass(frozen=True, slots=True)
class Prepared:
    """A database holding the year: where it is and what is in it."""

    database: str
    url: str
    facts: dict[str, Any]
    reused: bool


def sqlite_path(total: int) -> Path:
    return DATA_DIR / f"console-{total}.db"


def postgres_name(total: int) -> str:
    return f"autosettle_bench_console_{total}"


def _marker(database: str, total: int) -> Path:
    return DATA_DIR / f"console-{database}-{total}.json"


def context_for(url: str, clock: Clock) -> ServiceContext:
    """A service context on ``url`` with the bench keys and ``clock``."""
    from autosettle.store.uow import Database
    from bench.core import bench_settings
    return ServiceContext(settings=bench_settings(url, DATA_DIR), db=Database(url),
                          clock=clock)


def prepare(total: int, wanted: Sequence[tuple[str, str, Callable[[], None]]],
            progress: Callable[[str], None]) -> list[Prepared]:
    """The year in each wanted database ``(name, url, make_empty)``: reused when its marker
    says it holds ``total`` transactions (set ``AUTOSETTLE_BENCH_CONSOLE_FRESH=1`` to make
    it again), else made (``make_empty`` drops what is there). Reused ones are migrated to
    the newest schema and seeded again (the demo seed only adds what is missing)."""
    import os

    from autosettle.store import migrate

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    fresh = os.environ.get(FRESH_ENV) == "1"
    done: list[Prepared] = []
    targets: list[tuple[str, str, Target]] = []
    now = datetime.now(UTC)
    for name, url, make_empty in wanted:
        marker = _marker(name, total)
        if marker.exists() and not fresh:
            migrate.upgrade(url)
            facts = json.loads(marker.read_text())
            clock = Clock(datetime.fromisoformat(facts["now"]))
            ctx = context_for(url, clock)
            try:
                demo_seed.seed(ctx)
            finally:
                ctx.db.dispose()
            done.append(Prepared(name, url, facts, reused=True))
            continue
        marker.unlink(missing_ok=True)
        make_empty()
        migrate.upgrade(url)
        clock = Clock(now)
        targets.append((name, url, Target(context_for(url, clock), clock, name)))
    if targets:
        progress(f"console data: generating {total:,} transactions into "
                 f"{', '.join(n for n, _, _ in targets)} (made once, then reused)")
        for _, url, target in targets:
            if url.startswith("sqlite"):
                _grow_cache(target.ctx)
        try:
            facts = build([t for _, _, t in targets], total, now, DATA_DIR / "payouts",
                          progress)
        finally:
            for _, _, target in targets:
                target.ctx.db.dispose()
        for name, url, target in targets:
            document = {**facts.as_dict(), "now": now.isoformat(),
                        "load_seconds": round(target.load_seconds, 1),
                        "settle_seconds": round(target.settle_seconds, 1),
                        "rows_seconds": round(facts.seconds_rows, 1)}
            _marker(name, total).write_text(json.dumps(document, indent=2) + "\n")
            done.append(Prepared(name, url, document, reused=False))
    return done


def _grow_cache(ctx: ServiceContext) -> None:
    """A bigger SQLite page cache on every connection of the load (the app's own is small)."""
    from sqlalchemy import event

    @event.listens_for(ctx.db.engine, "connect")
    def _pragma(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.close()


def wanted_databases(total: int, sqlite_only: bool) -> tuple[
        list[tuple[str, str, Callable[[], None]]], list[str]]:
    """``(name, url, make_empty)`` of the SQLite file and (unless ``sqlite_only`` or
    unreachable) the PostgreSQL database of ``total`` transactions; and notes."""
    from bench.core import connect_postgres

    path = sqlite_path(total)

    def empty_sqlite() -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

    wanted = [("sqlite", f"sqlite:///{path.as_posix()}", empty_sqlite)]
    notes: list[str] = []
    if sqlite_only:
        notes.append("PostgreSQL skipped (--sqlite-only)")
        return wanted, notes
    server, note = connect_postgres()
    notes.append(note)
    if server is None:
        return wanted, notes
    name = postgres_name(total)
    url = server.display_url  # replaced below with the database's own URL
    from sqlalchemy.engine import make_url

    from autosettle.store.engine import normalize_url
    url = make_url(normalize_url(server._admin_url.render_as_string(hide_password=False))) \
        .set(database=name).render_as_string(hide_password=False)

    def empty_postgres() -> None:
        server._drop(name)
        with server._admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')

    with server._admin.connect() as conn:
        exists = conn.exec_driver_sql(
            "SELECT 1 FROM pg_database WHERE datname = %(n)s", {"n": name}).first()
    if not exists:
        _marker("postgresql", total).unlink(missing_ok=True)
    wanted.append(("postgresql", url, empty_postgres))
    notes.append(f"PostgreSQL version {server.version}")
    return wanted, notes


def main() -> None:
    """``python -m bench.console_data [--quick] [--sqlite-only]``: make (or find) the year."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m bench.console_data")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    total = TRANSACTIONS_QUICK if args.quick else TRANSACTIONS_FULL
    wanted, notes = wanted_databases(total, args.sqlite_only)
    for note in notes:
        print(note, file=sys.stderr)
    for found in prepare(total, wanted, lambda m: print(m, file=sys.stderr, flush=True)):
        print(f"{found.database}: {found.url.split('@')[-1]} "
              f"({'reused' if found.reused else 'made'}) "
              f"{ {k: v for k, v in found.facts.items() if k != 'samples'} }")


if __name__ == "__main__":
    main()
