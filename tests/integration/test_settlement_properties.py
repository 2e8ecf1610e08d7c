"""Hypothesis: whatever the transactions, fee schedules and cycles, settlement accounts for
every fen (SQLite; a fresh database, a copy of the migrated template, per example).

Generated: one to three merchants, each on T0, T1, D0 or D1, each with the default price
list or a random schedule of its own (rates, caps, minimums, fixed fee, same-day surcharge,
refund policy), maybe a new version mid-way; then sales and completions on debit and credit
cards, voids, partial refunds and reversals (冲正) through the payment service against the
issuer simulator, with the clock moving hours or days ahead (across the National Day week),
intraday and next-day settlement runs in between, risk holds and merchants put under review.
At the end holds are released, merchants reactivated and every date up to the last due date
is settled. After every run, and at the end, per merchant:

    paid + fees − debt + unsettled = captured − refunded − voided

to the fen, where *paid* is the sum of batch payouts, *fees* the batch fees and same-day
surcharges, *debt* what the merchant owes us (``merchant_receivable``, carried from negative
batches and recovered from later ones) and *unsettled* the items not settled yet (not due,
held, or merchant under review); reversed transactions count nowhere. The right-hand side
comes from the transaction records, the left from the batches and the ledger. Also: every
payout is positive and matches its batch, every batch matches its items (count, gross,
fees, one merchant), ``Σ batch item counts = settled items`` (no item in two batches), each
capture's fee is what the schedule in force on its business date says, the ledger balances
(every currency, every entry), and settling the same dates again changes nothing.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from autosettle.config import Settings
from autosettle.domain.calendar import SHANGHAI, business_date
from autosettle.domain.cards import CardKind
from autosettle.domain.fees import transaction_fee
from autosettle.domain.ledger import Account, AccountType
from autosettle.domain.merchants import (
    AccountType as BankAccountType,
)
from autosettle.domain.merchants import (
    CycleCode,
    MerchantStatus,
    MerchantType,
)
from autosettle.domain.money import Money
from autosettle.domain.payment_records import TransactionQuery
from autosettle.domain.settlement_records import SettlementItem
from autosettle.domain.transactions import TxnType
from autosettle.services import fee_schedules, merchants, payments, reversals, settlement
from autosettle.services import settlement_items as item_service
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.services.payments import CardInput, OriginalRef, PaymentRequest
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.store.tables import payouts, settlement_batches, settlement_items
from autosettle.store.uow import Database

SHOPS = [("898310054120001", "PT000001"), ("898310054120002", "PT000002"),
         ("898310054120003", "PT000003")]
CARDS = ["6222020200112345679", "6258020000000000004"]   # debit, credit
START = datetime(2026, 9, 28, 1, 0, tzinfo=UTC)           # Monday 09:00 in Shanghai
CAPTURES = ("sale", "completion")
RETURNS = ("void", "completion_void", "refund")

# -- strategies ---------------------------------------------------------------------------

RATES = st.decimals(min_value=0, max_value=Decimal("0.0300"), places=4)


@st.composite
def rate_rules(draw: st.DrawFn) -> dict[str, object]:
    cap = draw(st.none() | st.integers(1, 5_000))
    minimum = draw(st.none() | st.integers(0, cap if cap is not None else 500))
    return {"rate": str(draw(RATES)), "cap_minor": cap, "minimum_minor": minimum}


@st.composite
def fee_specs(draw: st.DrawFn) -> dict[str, object]:
    kinds = draw(st.lists(st.sampled_from(["debit", "credit", "foreign"]), unique=True))
    return {
        "currency": "CNY",
        "rates": {kind: draw(rate_rules()) for kind in kinds},
        "fallback": draw(rate_rules()),
        "fixed_fee_minor": draw(st.sampled_from([0, 0, 1, 10, 50])),
        "same_day_surcharge": {"rate": str(draw(st.sampled_from(
            [Decimal(0), Decimal("0.0005"), Decimal("0.0010")]))),
            "fixed_minor": draw(st.sampled_from([0, 100, 200, 300]))},
        "refund_fee_policy": draw(st.sampled_from(["pro_rata", "none"])),
    }


SHOP = st.integers(0, len(SHOPS) - 1)
REF = st.one_of(st.integers(-3, -1), st.integers(0, 10_000))
"""An earlier transaction, modulo how many there are (negative: one of the latest)."""
SALES = st.tuples(st.just("sale"), SHOP, st.integers(0, 1),
                  st.one_of(st.integers(1, 500), st.integers(1, 500_000)))
OPS = st.one_of(
    SALES, SALES, SALES,
    st.tuples(st.just("preauth"), SHOP, st.integers(0, 1), st.integers(100, 300_000),
              st.integers(50, 115)),
    st.tuples(st.just("void"), REF),
    st.tuples(st.just("refund"), REF, st.integers(1, 100)),
    st.tuples(st.just("refund"), REF, st.integers(1, 100)),
    st.tuples(st.just("reverse"), REF),
    st.tuples(st.just("advance"), st.sampled_from([1, 3, 7, 14, 24, 49, 75])),
    st.tuples(st.just("advance"), st.sampled_from([1, 3, 7, 14, 24, 49, 75])),
    st.tuples(st.just("settle")),
    st.tuples(st.just("settle")),
    st.tuples(st.just("hold"), REF, st.booleans()),
    st.tuples(st.just("hold"), REF, st.just(True)),
    st.tuples(st.just("review"), SHOP, st.booleans()),
    st.tuples(st.just("schedule"), SHOP, fee_specs()),
)


@dataclass(frozen=True)
class Scenario:
    cycles: tuple[str, ...]
    schedules: tuple[dict[str, object] | None, ...]
    ops: tuple[tuple[Any, ...], ...]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    count = draw(st.integers(1, len(SHOPS)))
    cycles = tuple(draw(st.lists(st.sampled_from(["T0", "T1", "D0", "D1"]),
                                 min_size=count, max_size=count)))
    schedules = tuple(draw(st.lists(st.none() | fee_specs(), min_size=count,
                                    max_size=count)))
    ops = tuple(draw(st.lists(SALES, min_size=1, max_size=4))
                + draw(st.lists(OPS, min_size=8, max_size=28)))
    return Scenario(cycles, schedules, ops)


# -- running a scenario -------------------------------------------------------------------

@dataclass
class World:
    ctx: ServiceContext
    clock: list[datetime]
    shops: list[tuple[str, str]]
    txns: list[tuple[str, str, str]] = field(default_factory=list)
    """Approved transactions: (merchant id, terminal id, txn id)."""
    runs: int = 0

    def now(self) -> datetime:
        return self.clock[0]

    def today(self) -> date:
        return business_date(self.now(), self.ctx.settings.cutoff)

    def tick(self) -> None:
        self.clock[0] += timedelta(seconds=37)


@contextmanager
def world(template: Path, workdir: Path, scenario: Scenario) -> Iterator[World]:
    directory = Path(tempfile.mkdtemp(dir=workdir))
    shutil.copyfile(template, directory / "autosettle.db")
    url = f"sqlite:///{directory / 'autosettle.db'}"
    sim = IssuerSimulator(f"sqlite:///{directory / 'issuer-sim.db'}")
    clock = [START]
    config = Settings(data_dir=directory, database_url=url, pan_token_key="11" * 32,
                      data_key="22" * 32)  # type: ignore[arg-type]
    ctx = ServiceContext(settings=config, db=Database(url), clock=lambda: clock[0],
                         channel=sim)
    try:
        shops = SHOPS[:len(scenario.cycles)]
        for (mid, tid), cycle, spec in zip(shops, scenario.cycles, scenario.schedules,
                                           strict=True):
            name = f"Property Shop {mid[-1]} Co., Ltd."
            merchants.create_merchant(ctx, SYSTEM, merchants.NewMerchant(
                mid, name, MerchantType.ENTERPRISE, "5812", settlement_cycle=CycleCode(cycle)))
            merchants.add_settlement_account(ctx, SYSTEM, mid, merchants.NewSettlementAccount(
                "ICBC", "6212260200001234567", name, BankAccountType.CORPORATE))
            merchants.add_terminal(ctx, SYSTEM, mid, merchants.NewTerminal(tid))
            if spec is not None:
                fee_schedules.set_schedule(ctx, SYSTEM, mid, {
                    **spec, "effective_from": business_date(START).isoformat()})
        sim.add_card(CARDS[0], balance_minor=10**11, pin=None)
        sim.add_card(CARDS[1], kind="credit", credit_limit_minor=10**11, pin=None)
        yield World(ctx, clock, shops)
    finally:
        ctx.db.dispose()
        sim.close()
        shutil.rmtree(directory, ignore_errors=True)


def _pay(w: World, txn_type: TxnType, mid: str, tid: str, fen: int | None = None,
         pan: str | None = None, original: str | None = None) -> str | None:
    result = payments.authorize(w.ctx, PaymentRequest(
        txn_type, mid, tid, Money(fen) if fen else None, CardInput(pan) if pan else None,
        OriginalRef(txn_id=original) if original else None))
    w.tick()
    if not result.approved or result.record is None:
        return None
    w.txns.append((mid, tid, result.record.txn_id))
    return result.record.txn_id


def _record(w: World, mid: str, txn_id: str) -> Any:
    with w.ctx.db.unit_of_work() as uow:
        return uow.transactions.get(mid, txn_id)


def apply(w: World, op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind in ("sale", "preauth", "review", "schedule"):
        mid, tid = w.shops[op[1] % len(w.shops)]
    elif kind in ("void", "refund", "reverse", "hold"):
        if not w.txns:
            return
        mid, tid, ref = w.txns[op[1] % len(w.txns)]
    match op:
        case ("sale", _, card, fen):
            _pay(w, TxnType.SALE, mid, tid, fen, CARDS[card])
        case ("preauth", _, card, fen, percent):
            held = _pay(w, TxnType.PREAUTH, mid, tid, fen, CARDS[card])
            if held is not None:
                _pay(w, TxnType.COMPLETION, mid, tid, max(1, fen * percent // 100),
                     original=held)
        case ("void", _):
            record = _record(w, mid, ref)
            void = {"sale": TxnType.VOID, "completion": TxnType.COMPLETION_VOID}.get(
                record.txn_type)
            if void is not None:
                _pay(w, void, mid, tid, original=ref)
        case ("refund", _, percent):
            record = _record(w, mid, ref)
            if record.txn_type in CAPTURES:
                left = record.amount_minor - record.refunded_minor
                if left > 0:
                    _pay(w, TxnType.REFUND, mid, tid, max(1, left * percent // 100),
                         original=ref)
        case ("reverse", _):
            reversals.reverse(w.ctx, mid, tid, OriginalRef(txn_id=ref))
            w.tick()
        case ("advance", hours):
            w.clock[0] += timedelta(hours=hours)
        case ("settle",):
            w.runs += 1
            frozen = not_active(w)
            before = batch_counts(w, frozen)
            settle_day(w, w.today(), f"run{w.runs}")
            assert batch_counts(w, frozen) == before   # carried, not settled
            check(w)
        case ("hold", _, held):
            settlement.hold_transaction(w.ctx, mid, ref, held)
        case ("review", _, under_review):
            merchants.set_merchant_status(w.ctx, SYSTEM, mid, MerchantStatus.UNDER_REVIEW
                                          if under_review else MerchantStatus.ACTIVE)
        case ("schedule", _, spec):
            tomorrow = w.today() + timedelta(days=1)   # today may have captures already
            with w.ctx.db.unit_of_work() as uow:
                taken = any(v["effective_from"] == tomorrow.isoformat()
                            for v in uow.config.fee_schedule_versions(mid))
            if not taken:
                fee_schedules.set_schedule(w.ctx, SYSTEM, mid, {
                    **spec, "effective_from": tomorrow.isoformat()})


def not_active(w: World) -> list[str]:
    with w.ctx.db.unit_of_work() as uow:
        return [mid for mid, _ in w.shops
                if uow.merchants.get(mid).status is not MerchantStatus.ACTIVE]  # type: ignore[union-attr]


def batch_counts(w: World, merchant_ids: list[str]) -> dict[str, int]:
    with w.ctx.db.unit_of_work() as uow:
        return {mid: len(uow.settlement.batches(mid, None, None, 1000)) for mid in merchant_ids}


def settle_day(w: World, day: date, key: str) -> int:
    """An intraday (T0+D0) and a next-day (T1+D1) run for ``day``; the batches made. The
    clock moves to ``day`` first if it is behind (a run is never dated in the future)."""
    w.clock[0] = max(w.clock[0], datetime.combine(day, time(2, 0), SHANGHAI).astimezone(UTC))
    made = 0
    for cycles in (settlement.SAME_DAY, settlement.NEXT_DAY):
        summary = settlement.settle(w.ctx, day, cycles, run_key=f"{key}:{day}:{cycles[0]}")
        assert summary.errors == [] and summary.blocked_payouts == 0, summary
        made += summary.batches
    return made


def finish(w: World) -> None:
    """Release holds, reactivate merchants, settle every due date left; then settle the
    same dates under the same run keys again, which must change nothing."""
    with w.ctx.db.unit_of_work() as uow:
        uow.connection.execute(settlement_items.update().values(held=False))
    for mid, _ in w.shops:
        merchants.set_merchant_status(w.ctx, SYSTEM, mid, MerchantStatus.ACTIVE)
    with w.ctx.db.unit_of_work() as uow:
        due = sorted(set(uow.connection.execute(
            select(settlement_items.c.due_date).select_from(uow.claims.with_cursors())
            .where(uow.claims.unsettled_condition())).scalars()))
    for day in due:   # a run claims everything due by its date (T cycles: on workdays)
        settle_day(w, day, "final")
    check(w, final=True)
    assert sum(settle_day(w, day, "final") for day in due) == 0


# -- the invariants -----------------------------------------------------------------------

def check(w: World, final: bool = False) -> None:
    ctx = w.ctx
    with ctx.db.unit_of_work() as uow:
        conn = uow.connection
        # Batch membership as the cursors define it, worked out in Python item by item
        # (independently of the SQL range sums a run uses).
        member: dict[int, str | None] = {}
        for mid, _ in w.shops:
            member.update(uow.claims.batches_of_items(mid))
        items = [SettlementItem(**{f.name: r._mapping[f.name] for f in fields(SettlementItem)
                                   if f.name != "batch_id"}, batch_id=member[r.item_id])
                 for r in conn.execute(select(settlement_items))]
        batches = [r._mapping for r in conn.execute(select(settlement_batches))]
        payout_rows = {r.batch_id: r for r in conn.execute(select(payouts))}
        records = {mid: uow.transactions.search(TransactionQuery(merchant_id=mid), None, 1000)
                   for mid, _ in w.shops}
        balances = {(mid, t): uow.ledger.balance(Account(t, mid).code, "CNY")
                    for mid, _ in w.shops
                    for t in (AccountType.MERCHANT_UNSETTLED, AccountType.MERCHANT_PAYABLE,
                              AccountType.MERCHANT_RECEIVABLE)}
        fee_income = uow.ledger.balance(Account(AccountType.FEE_INCOME).code, "CNY")
        calendar = item_service.business_calendar(uow)
        imbalance = uow.ledger.imbalance_by_currency()
        unbalanced = uow.ledger.unbalanced_entries()
        found = {mid: uow.merchants.get(mid) for mid, _ in w.shops}
        expected_fees = {}
        for i in items:
            if i.kind == "capture":
                schedule = item_service.fee_schedule(uow, found[i.merchant_id], i.business_date)
                kind = CardKind(i.card_kind) if i.card_kind else CardKind.OTHER
                expected_fees[(i.merchant_id, i.txn_id)] = transaction_fee(
                    schedule, Money(i.amount_minor), kind).amount_minor
    assert all(v == 0 for v in imbalance.values()), imbalance
    assert unbalanced == []
    for i in items:
        if i.kind == "capture":
            assert i.fee_minor == expected_fees[(i.merchant_id, i.txn_id)], i

    assert [i for i in items if i.held and i.batch_id is not None] == []
    by_batch: dict[str, list[SettlementItem]] = {}
    for i in items:
        if i.batch_id is not None:
            by_batch.setdefault(i.batch_id, []).append(i)
    assert sum(int(b["item_count"]) for b in batches) == sum(map(len, by_batch.values()))
    assert {b["batch_id"] for b in batches} == set(by_batch)
    all_fees = 0
    for b in batches:
        mine = by_batch[b["batch_id"]]
        assert {(i.merchant_id, i.cycle, i.currency) for i in mine} == {
            (b["merchant_id"], b["cycle"], b["currency"])}
        assert len(mine) == b["item_count"]
        assert sum(i.amount_minor for i in mine) == b["gross_minor"]
        assert sum(i.fee_minor for i in mine) == b["fee_minor"]
        assert all(i.due_date <= b["settlement_date"] for i in mine)
        assert b["payout_minor"] >= 0 and b["surcharge_minor"] >= 0
        assert b["cycle"] in ("T0", "D0") or b["surcharge_minor"] == 0
        assert b["cycle"].startswith("D") or calendar.is_workday(b["settlement_date"])
        assert b["debt_added_minor"] >= 0 and b["debt_recovered_minor"] >= 0
        assert (b["gross_minor"] - b["fee_minor"] - b["surcharge_minor"] - b["payout_minor"]
                - b["debt_recovered_minor"] + b["debt_added_minor"]) == 0
        if b["payout_minor"] > 0:
            payout = payout_rows[b["batch_id"]]
            assert (payout.amount_minor, payout.status) == (b["payout_minor"], "pending")
        else:
            assert b["batch_id"] not in payout_rows
        all_fees += b["fee_minor"] + b["surcharge_minor"]
    assert -fee_income == all_fees

    for mid, _ in w.shops:
        txns = records[mid]
        captured = sum(r.amount_minor for r in txns
                       if r.txn_type in CAPTURES and r.status in ("approved", "voided"))
        returned = sum(r.amount_minor for r in txns
                       if r.txn_type in RETURNS and r.status == "approved")
        mine = [i for i in items if i.merchant_id == mid]
        unsettled = sum(i.amount_minor for i in mine if i.batch_id is None)
        theirs = [b for b in batches if b["merchant_id"] == mid]
        paid = sum(b["payout_minor"] for b in theirs)
        fees = sum(b["fee_minor"] + b["surcharge_minor"] for b in theirs)
        debt = balances[(mid, AccountType.MERCHANT_RECEIVABLE)]
        assert sum(i.amount_minor for i in mine) == captured - returned
        assert -balances[(mid, AccountType.MERCHANT_UNSETTLED)] == unsettled
        assert -balances[(mid, AccountType.MERCHANT_PAYABLE)] == paid
        assert debt >= 0
        owed = 0   # debt is recovered before anything is paid out
        for b in sorted((b for b in theirs if b["entry_id"] is not None),
                        key=lambda b: b["entry_id"]):
            owed += b["debt_added_minor"] - b["debt_recovered_minor"]
            assert owed >= 0 and (b["payout_minor"] == 0 or owed == 0), b
        assert owed == debt
        assert paid + fees - debt + unsettled == captured - returned, (
            mid, paid, fees, debt, unsettled, captured, returned)
        if final:
            assert [i for i in mine if i.batch_id is None] == []


@pytest.mark.slow
@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenario=scenarios())
def test_every_fen_is_accounted_for(sqlite_template: Path,
                                    tmp_path_factory: pytest.TempPathFactory,
                                    scenario: Scenario) -> None:
    with world(sqlite_template, tmp_path_factory.getbasetemp(), scenario) as w:
        for op in scenario.ops:
            apply(w, op)
        check(w)
        finish(w)
        with w.ctx.db.unit_of_work() as uow:
            batches = uow.settlement.batches(None, None, None, 1000)
        event(f"transactions approved: {min(len(w.txns) // 5 * 5, 20)}+")
        event(f"batches: {min(len(batches) // 3 * 3, 12)}+")
        event("a batch carried debt" if any(b.debt_added_minor for b in batches)
              else "no debt")
        event("a same-day surcharge" if any(b.surcharge_minor for b in batches)
              else "no surcharge")
