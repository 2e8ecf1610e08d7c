"""Settlement batch membership by cursor (``store/settlement_claims.py``, migration 0005).

Each (merchant, cycle) has a cursor (through_date, through_item_id); a batch records the
cursor before and after it, and held items a cursor passes are listed in
``settlement_carried`` until a later batch takes them. These tests check, on both databases,
that every item ends up in exactly one batch and never in two:

* items recorded after a run but due by its date (a late sale after an intraday run, a
  back-dated item) are taken by the next run; items recorded before a run but not yet due
  are left out and taken by the run on their due date (the "fallen due" range);
* held items are carried past the cursor and taken, once released, by a later batch that
  names them; holding a settled transaction changes nothing;
* re-running a run key changes nothing; a run for an earlier date after a later one neither
  loses nor double-counts items; a merchant that changes cycle settles each cycle's items
  on that cycle's cursor; a merchant under review keeps its cursor until it is active;
* a random walk of sales, holds, cycle and status changes and runs keeps every invariant;
* PostgreSQL: a run waits for an item insert that is still uncommitted, so its cursor never
  passes an item it cannot see;
* migration 0005 on legacy data (items marked with ``batch_id``): cursors cover the settled
  items, unsettled items inside them are carried and settled by the next run, legacy batches
  still list their items.

Every check reads membership back three ways and requires them to agree: ``items_of_batch``
per batch (and ``batch_item_totals``), ``batches_of_items`` per merchant, and the
``unsettled_condition`` used by holds and reports; and each batch's count, gross and fees
must equal the sums of the items it lists.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from jobtools import add_merchant, advance_clock_to, fee_of
from migrationtools import database_at
from sqlalchemy import create_engine, select, text, update

from autosettle.config import Settings
from autosettle.domain.merchants import MerchantStatus
from autosettle.domain.settlement_records import BatchRecord, ItemTotals, SettlementItem
from autosettle.domain.settlement_scan import Cursor
from autosettle.services import merchants, settlement
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.services.settlement_items import business_calendar
from autosettle.store import migrate
from autosettle.store.engine import normalize_url
from autosettle.store.settlement import item_lock_key
from autosettle.store.tables import merchants as merchants_table
from autosettle.store.tables import (
    settlement_batches,
    settlement_carried,
    settlement_cursors,
    settlement_items,
)
from autosettle.store.uow import Database

SHOP = "898310054120001"
CAFE = "898310058120002"
KIOSK = "898310059990003"
MON, TUE, WED, THU, FRI, SAT = (date(2026, 9, d) for d in range(14, 20))
NEXT_MON = date(2026, 9, 21)


# -- helpers ----------------------------------------------------------------------------------

def new_item(merchant_id: str, cycle: str, due: date, amount: int, at: datetime,
             txn: str | None = None, currency: str = "CNY",
             batch_id: str | None = None, held: bool = False) -> SettlementItem:
    txn = txn or uuid.uuid4().hex
    business_day = due - timedelta(days=1) if cycle.endswith("1") else due
    return SettlementItem(
        merchant_id=merchant_id, txn_id=txn, source_txn_id=txn, kind="capture",
        txn_type="sale", card_kind="debit", business_date=business_day, cycle=cycle,
        due_date=due, amount_minor=amount, fee_minor=fee_of(amount), currency=currency,
        fee_schedule="test@v1", held=held, batch_id=batch_id, created_at=at)


def record(ctx: ServiceContext, merchant_id: str, due: date, amount: int = 10_000,
           currency: str = "CNY") -> str:
    """An item as the payment service records it, in the merchant's current cycle; its
    transaction id (one item per transaction)."""
    with ctx.db.unit_of_work() as uow:
        merchant = uow.merchants.get(merchant_id)
        assert merchant is not None
        item = new_item(merchant_id, merchant.settlement_cycle.value, due, amount, ctx.now(),
                        currency=currency)
        assert uow.settlement.add_item(item)
    return item.txn_id


def item_ids(ctx: ServiceContext, merchant_id: str) -> dict[str, int]:
    i = settlement_items.c
    with ctx.db.unit_of_work() as uow:
        return {r[0]: int(r[1]) for r in uow.connection.execute(
            select(i.txn_id, i.item_id).where(i.merchant_id == merchant_id))}


def cursor(ctx: ServiceContext, merchant_id: str, cycle: str) -> Cursor | None:
    with ctx.db.unit_of_work() as uow:
        return uow.claims.cursors([merchant_id], [cycle]).get((merchant_id, cycle))


def all_cursors(ctx: ServiceContext) -> list[tuple[str, str, date, int]]:
    c = settlement_cursors.c
    with ctx.db.unit_of_work() as uow:
        return [(r[0], r[1], r[2], int(r[3])) for r in uow.connection.execute(
            select(c.merchant_id, c.cycle, c.through_date, c.through_item_id)
            .order_by(c.merchant_id, c.cycle))]


def carried(ctx: ServiceContext, merchant_id: str) -> dict[str, str | None]:
    """Carried items of the merchant: transaction id → the batch that took it (or None)."""
    i, k = settlement_items.c, settlement_carried.c
    with ctx.db.unit_of_work() as uow:
        return {r[0]: r[1] for r in uow.connection.execute(
            select(i.txn_id, k.batch_id)
            .select_from(settlement_carried.join(settlement_items, i.item_id == k.item_id))
            .where(k.merchant_id == merchant_id))}


def set_cycle(ctx: ServiceContext, merchant_id: str, cycle: str) -> None:
    """Change the merchant's settlement cycle. No service does this yet, so the row is
    updated directly; later items are recorded on the new cycle (see :func:`record`)."""
    with ctx.db.unit_of_work() as uow:
        uow.connection.execute(update(merchants_table)
                               .where(merchants_table.c.merchant_id == merchant_id)
                               .values(settlement_cycle=cycle))


@dataclass
class Books:
    """Where every item of one merchant is, as read back from the database."""

    batch_of: dict[str, str | None]
    """transaction id → batch id (None: not settled)."""
    items: dict[str, list[str]]
    """batch id → transaction ids of its items, in item order."""
    batches: dict[str, BatchRecord]

    def batch_by_key(self, run_key_prefix: str) -> BatchRecord:
        found = [b for b in self.batches.values() if b.run_key.startswith(run_key_prefix)]
        assert len(found) == 1, (run_key_prefix, sorted(self.batches))
        return found[0]

    def unsettled(self) -> set[str]:
        return {t for t, b in self.batch_of.items() if b is None}


def books(ctx: ServiceContext, merchant_id: str) -> Books:
    """Read membership three ways and check that they agree, and that each batch's totals
    are the sums of the items it lists."""
    i, b = settlement_items.c, settlement_batches.c
    with ctx.db.unit_of_work() as uow:
        rows = {int(r.item_id): r for r in uow.connection.execute(
            select(i.item_id, i.txn_id, i.cycle, i.currency, i.due_date, i.held, i.amount_minor)
            .where(i.merchant_id == merchant_id))}
        batch_ids = [r[0] for r in uow.connection.execute(
            select(b.batch_id).where(b.merchant_id == merchant_id).order_by(b.batch_id))]
        batches: dict[str, BatchRecord] = {}
        listed: dict[str, list[SettlementItem]] = {}
        totals = uow.claims.batch_item_totals(batch_ids)
        for batch_id in batch_ids:
            batch = uow.settlement.batch(batch_id)
            assert batch is not None
            batches[batch_id] = batch
            listed[batch_id] = uow.claims.items_of_batch(batch_id)
        by_item = uow.claims.batches_of_items(merchant_id)
        unsettled = {int(r[0]) for r in uow.connection.execute(
            select(i.item_id).select_from(uow.claims.with_cursors())
            .where(i.merchant_id == merchant_id, uow.claims.unsettled_condition()))}
    seen: dict[str, str] = {}
    for batch_id, items in listed.items():
        batch = batches[batch_id]
        for item in items:
            assert item.txn_id not in seen, f"{item.txn_id} in {seen[item.txn_id]} and {batch_id}"
            seen[item.txn_id] = batch_id
            assert (item.merchant_id, item.cycle, item.currency) == (
                merchant_id, batch.cycle, batch.currency), (batch_id, item)
            if batch.through_date is not None:
                assert item.due_date <= batch.through_date, (batch_id, item)
        count, gross, fee = (len(items), sum(x.amount_minor for x in items),
                             sum(x.fee_minor for x in items))
        assert (batch.item_count, batch.gross_minor, batch.fee_minor) == (count, gross, fee), \
            f"batch {batch_id} says {batch.item_count}/{batch.gross_minor}/{batch.fee_minor}, " \
            f"its items {count}/{gross}/{fee}"
        expected_totals = {merchant_id: ItemTotals(count, gross, fee)} if count else {}
        assert totals.get(batch_id, {}) == expected_totals, batch_id
    assert set(by_item) == set(rows)
    for item_id, row in rows.items():
        assert by_item[item_id] == seen.get(row.txn_id), \
            f"item {item_id}: batches_of_items says {by_item[item_id]}, " \
            f"items_of_batch says {seen.get(row.txn_id)}"
        assert (item_id in unsettled) == (seen.get(row.txn_id) is None), \
            f"item {item_id} unsettled_condition={item_id in unsettled}, " \
            f"batch={seen.get(row.txn_id)}"
        if seen.get(row.txn_id) is not None:
            assert not row.held, f"settled item {item_id} is held"
    return Books({r.txn_id: seen.get(r.txn_id) for r in rows.values()},
                 {k: [x.txn_id for x in v] for k, v in listed.items()}, batches)


def span(batch: BatchRecord) -> tuple[Cursor | None, Cursor]:
    """The cursor before and after a batch."""
    assert batch.through_date is not None and batch.through_item_id is not None
    before = (Cursor(batch.from_date, batch.from_item_id)
              if batch.from_date is not None and batch.from_item_id is not None else None)
    return before, Cursor(batch.through_date, batch.through_item_id)


# -- 1. late items and items not yet due ------------------------------------------------------

def test_items_recorded_after_an_intraday_run_land_in_the_next_batch(
        ctx: ServiceContext) -> None:
    add_merchant(ctx, SHOP, "D0")
    first = record(ctx, SHOP, WED, 10_000)
    later = record(ctx, SHOP, FRI, 40_000)  # recorded first, due after both runs
    run1 = settlement.settle(ctx, WED, ("D0",), run_key="wed-d0-1")
    assert (run1.batches, run1.items, run1.gross_minor) == (1, 1, 10_000)
    ids = item_ids(ctx, SHOP)
    assert cursor(ctx, SHOP, "D0") == Cursor(WED, ids[later])

    late = record(ctx, SHOP, WED, 20_000)  # another sale the same day, after the run
    backdated = record(ctx, SHOP, TUE, 30_000)  # due before the cursor's date
    before = books(ctx, SHOP)
    assert before.items == {before.batch_by_key("wed-d0-1").batch_id: [first]}
    assert before.unsettled() == {later, late, backdated}

    run2 = settlement.settle(ctx, WED, ("D0",), run_key="wed-d0-2")
    assert (run2.batches, run2.items, run2.gross_minor) == (1, 2, 50_000)
    ids = item_ids(ctx, SHOP)
    after = books(ctx, SHOP)
    b1, b2 = after.batch_by_key("wed-d0-1"), after.batch_by_key("wed-d0-2")
    assert after.items == {b1.batch_id: [first], b2.batch_id: [late, backdated]}
    assert after.unsettled() == {later}
    assert span(b1) == (None, Cursor(WED, ids[later]))
    assert span(b2) == (Cursor(WED, ids[later]), Cursor(WED, ids[backdated]))
    assert (b2.item_count, b2.gross_minor, b2.fee_minor) == (2, 50_000, fee_of(20_000)
                                                             + fee_of(30_000))

    run3 = settlement.settle(ctx, FRI, ("D0",), run_key="fri-d0-1")
    assert (run3.batches, run3.items, run3.gross_minor) == (1, 1, 40_000)
    final = books(ctx, SHOP)
    b3 = final.batch_by_key("fri-d0-1")
    assert final.items[b3.batch_id] == [later]  # fallen due: recorded before the cursor
    assert final.items[b1.batch_id] == [first] and final.items[b2.batch_id] == [late, backdated]
    assert final.unsettled() == set()
    assert span(b3) == (Cursor(WED, ids[backdated]), Cursor(FRI, ids[backdated]))


def test_items_not_yet_due_are_left_out_and_settled_on_their_due_date(
        ctx: ServiceContext) -> None:
    add_merchant(ctx, SHOP, "T1")
    due_tue = record(ctx, SHOP, TUE, 10_000)
    due_wed = record(ctx, SHOP, WED, 20_000)  # captured before the TUE run, due WED
    due_thu = record(ctx, SHOP, THU, 30_000)
    tue = settlement.settle(ctx, TUE)
    assert (tue.batches, tue.items) == (1, 1)
    ids = item_ids(ctx, SHOP)
    # The cursor passes every recorded item by id, but only up to TUE by due date.
    assert cursor(ctx, SHOP, "T1") == Cursor(TUE, ids[due_thu])
    state = books(ctx, SHOP)
    b_tue = state.batch_by_key(f"{TUE.isoformat()}:")
    assert state.items == {b_tue.batch_id: [due_tue]}
    assert state.unsettled() == {due_wed, due_thu}
    assert b_tue.settlement_date == TUE

    recorded_after = record(ctx, SHOP, WED, 40_000)
    wed = settlement.settle(ctx, WED)
    assert (wed.batches, wed.items, wed.gross_minor) == (1, 2, 60_000)
    ids = item_ids(ctx, SHOP)
    state = books(ctx, SHOP)
    b_wed = state.batch_by_key(f"{WED.isoformat()}:")
    assert state.items[b_wed.batch_id] == [due_wed, recorded_after]
    assert span(b_wed) == (Cursor(TUE, ids[due_thu]), Cursor(WED, ids[recorded_after]))
    assert state.unsettled() == {due_thu}

    thu = settlement.settle(ctx, THU)
    assert (thu.batches, thu.items, thu.gross_minor) == (1, 1, 30_000)
    state = books(ctx, SHOP)
    b_thu = state.batch_by_key(f"{THU.isoformat()}:")
    assert state.items == {b_tue.batch_id: [due_tue], b_wed.batch_id: [due_wed, recorded_after],
                           b_thu.batch_id: [due_thu]}
    assert state.unsettled() == set()


# -- 2. holds ---------------------------------------------------------------------------------

def test_held_item_is_carried_and_taken_by_a_later_batch_once_released(
        ctx: ServiceContext) -> None:
    add_merchant(ctx, SHOP, "D0")
    held = record(ctx, SHOP, WED, 7_000)
    plain = record(ctx, SHOP, WED, 10_000)
    brief = record(ctx, SHOP, WED, 3_000)  # held and released before any run
    assert settlement.hold_transaction(ctx, SHOP, held) == 1
    assert settlement.hold_transaction(ctx, SHOP, brief) == 1
    assert settlement.hold_transaction(ctx, SHOP, brief, held=False) == 1

    run1 = settlement.settle(ctx, WED, ("D0",), run_key="h-1")
    assert (run1.batches, run1.items, run1.gross_minor) == (1, 2, 13_000)
    ids = item_ids(ctx, SHOP)
    state = books(ctx, SHOP)
    b1 = state.batch_by_key("h-1")
    assert state.items == {b1.batch_id: [plain, brief]}
    assert state.unsettled() == {held}
    assert carried(ctx, SHOP) == {held: None}  # passed by the cursor while held
    c1 = cursor(ctx, SHOP, "D0")
    assert c1 == Cursor(WED, max(ids.values())) and ids[held] <= c1.through_item_id
    with ctx.db.unit_of_work() as uow:
        assert uow.claims.unsettled_item_ids(SHOP, held) == [ids[held]]

    still = settlement.settle(ctx, WED, ("D0",), run_key="h-1b")  # still held: nothing
    assert (still.batches, still.items) == (0, 0)
    assert carried(ctx, SHOP) == {held: None}
    assert cursor(ctx, SHOP, "D0") == c1

    assert settlement.hold_transaction(ctx, SHOP, held, held=False) == 1
    run2 = settlement.settle(ctx, WED, ("D0",), run_key="h-2")
    assert (run2.batches, run2.items, run2.gross_minor) == (1, 1, 7_000)
    state = books(ctx, SHOP)
    b2 = state.batch_by_key("h-2")
    assert state.items == {b1.batch_id: [plain, brief], b2.batch_id: [held]}
    assert carried(ctx, SHOP) == {held: b2.batch_id}
    assert span(b2) == (c1, c1)  # nothing new recorded: only the carried item it names
    assert state.unsettled() == set()

    # Holding (or releasing) a settled transaction changes nothing.
    for txn in (held, plain, brief):
        assert settlement.hold_transaction(ctx, SHOP, txn) == 0
        assert settlement.hold_transaction(ctx, SHOP, txn, held=False) == 0
    with ctx.db.unit_of_work() as uow:
        assert not any(uow.settlement.items_of_txn(SHOP, t)[0].held for t in (held, plain))
    run3 = settlement.settle(ctx, WED, ("D0",), run_key="h-3")
    assert run3.batches == 0
    assert books(ctx, SHOP).items == state.items
    assert carried(ctx, SHOP) == {held: b2.batch_id}


def test_held_item_of_another_currency_falling_due_later(ctx: ServiceContext) -> None:
    """A held item in the "fallen due" range of a merchant with items in two currencies
    (the cursor is per merchant and cycle, batches per currency) is carried when its due
    date comes, and taken by a batch of its own currency once released."""
    add_merchant(ctx, SHOP, "T1")
    cny_tue = record(ctx, SHOP, TUE, 10_000)
    hkd_thu = record(ctx, SHOP, THU, 5_000, currency="HKD")  # held before it is due
    hkd_tue = record(ctx, SHOP, TUE, 6_000, currency="HKD")
    cny_thu = record(ctx, SHOP, THU, 20_000)
    assert settlement.hold_transaction(ctx, SHOP, hkd_thu) == 1

    tue = settlement.settle(ctx, TUE)
    assert tue.batches == 2  # one per currency, sharing the (merchant, cycle) cursor
    state = books(ctx, SHOP)
    by_currency = {b.currency: b for b in state.batches.values()}
    assert state.items == {by_currency["CNY"].batch_id: [cny_tue],
                           by_currency["HKD"].batch_id: [hkd_tue]}
    assert span(by_currency["CNY"]) == span(by_currency["HKD"])
    assert carried(ctx, SHOP) == {}  # not due yet, so not passed

    wed = settlement.settle(ctx, WED)
    assert wed.batches == 0
    thu = settlement.settle(ctx, THU)
    assert (thu.batches, thu.items, thu.gross_minor) == (1, 1, 20_000)
    assert carried(ctx, SHOP) == {hkd_thu: None}
    state = books(ctx, SHOP)
    assert state.unsettled() == {hkd_thu}

    assert settlement.hold_transaction(ctx, SHOP, hkd_thu, held=False) == 1
    fri = settlement.settle(ctx, FRI)
    assert (fri.batches, fri.items, fri.gross_minor) == (1, 1, 5_000)
    state = books(ctx, SHOP)
    b_fri = state.batch_by_key(f"{FRI.isoformat()}:")
    assert b_fri.currency == "HKD"
    assert state.items[b_fri.batch_id] == [hkd_thu]
    assert carried(ctx, SHOP) == {hkd_thu: b_fri.batch_id}
    assert state.unsettled() == set()
    assert sorted(t for ts in state.items.values() for t in ts) == sorted(
        [cny_tue, hkd_thu, hkd_tue, cny_thu])


def test_same_day_item_in_a_foreign_currency_does_not_block_the_merchant(
        ctx: ServiceContext) -> None:
    """A D0 merchant's schedule prices CNY; an HKD item gets its own batch, no surcharge,
    and the CNY batch is settled and charged as usual (it used to fail the whole run)."""
    add_merchant(ctx, SHOP, "D0")
    cny = record(ctx, SHOP, TUE, 10_000)
    hkd = record(ctx, SHOP, TUE, 6_000, currency="HKD")
    summary = settlement.settle(ctx, TUE, ("D0",))
    assert summary.errors == [] and (summary.batches, summary.items) == (2, 2)
    state = books(ctx, SHOP)
    by_currency = {b.currency: b for b in state.batches.values()}
    assert state.items[by_currency["CNY"].batch_id] == [cny]
    assert state.items[by_currency["HKD"].batch_id] == [hkd]
    assert by_currency["HKD"].surcharge_minor == 0
    assert by_currency["CNY"].payout_minor > 0 and by_currency["HKD"].payout_minor > 0


def test_hold_after_settlement_touches_only_the_unsettled_refund(ctx: ServiceContext) -> None:
    """A risk hold on a sale whose capture is settled holds its later refund only; the
    refund is carried, then settled on its own once released (as debt: it is negative)."""
    add_merchant(ctx, SHOP, "D1")
    sale = record(ctx, SHOP, TUE, 50_000)
    assert settlement.settle(ctx, TUE).items == 1
    refund = replace(new_item(SHOP, "D1", WED, -20_000, ctx.now()), source_txn_id=sale,
                     kind="refund")
    with ctx.db.unit_of_work() as uow:
        assert uow.settlement.add_item(refund)
    other = record(ctx, SHOP, WED, 30_000)
    assert settlement.hold_transaction(ctx, SHOP, sale) == 1  # the refund, not the capture
    with ctx.db.unit_of_work() as uow:
        assert [i.held for i in uow.settlement.items_for_source(SHOP, sale)] == [False, True]

    wed = settlement.settle(ctx, WED)
    assert (wed.batches, wed.items, wed.gross_minor) == (1, 1, 30_000)
    assert carried(ctx, SHOP) == {refund.txn_id: None}
    state = books(ctx, SHOP)
    assert state.unsettled() == {refund.txn_id} and state.batch_of[other] is not None

    assert settlement.hold_transaction(ctx, SHOP, sale, held=False) == 1
    thu = settlement.settle(ctx, THU)
    assert (thu.batches, thu.items, thu.gross_minor) == (1, 1, -20_000)
    state = books(ctx, SHOP)
    b_thu = state.batch_by_key(f"{THU.isoformat()}:")
    assert state.items[b_thu.batch_id] == [refund.txn_id]
    assert b_thu.payout_minor == 0 and b_thu.debt_added_minor > 0
    assert carried(ctx, SHOP) == {refund.txn_id: b_thu.batch_id}
    assert settlement.hold_transaction(ctx, SHOP, sale) == 0
    assert state.unsettled() == set()


# -- 3. re-runs and out-of-order runs ---------------------------------------------------------

def test_rerunning_a_run_key_changes_nothing(ctx: ServiceContext) -> None:
    add_merchant(ctx, SHOP, "T1")
    add_merchant(ctx, CAFE, "D1")
    a = record(ctx, SHOP, TUE, 10_000)
    b = record(ctx, SHOP, TUE, 20_000)
    c = record(ctx, CAFE, TUE, 30_000)
    first = settlement.settle(ctx, TUE)
    assert (first.batches, first.items) == (2, 3)
    cursors_before = all_cursors(ctx)
    shop_before, cafe_before = books(ctx, SHOP), books(ctx, CAFE)
    assert list(shop_before.items.values()) == [[a, b]]
    assert list(cafe_before.items.values()) == [[c]]

    again = settlement.settle(ctx, TUE)
    assert (again.batches, again.items, again.skipped_existing) == (0, 0, 0)
    assert all_cursors(ctx) == cursors_before
    assert books(ctx, SHOP) == shop_before and books(ctx, CAFE) == cafe_before

    late = record(ctx, SHOP, TUE, 40_000)  # due, but this run key has already settled SHOP
    third = settlement.settle(ctx, TUE)
    assert (third.batches, third.items, third.skipped_existing) == (0, 0, 1)
    assert all_cursors(ctx) == cursors_before
    assert books(ctx, SHOP).unsettled() == {late}

    fourth = settlement.settle(ctx, TUE, run_key="tue-late")
    assert (fourth.batches, fourth.items, fourth.gross_minor) == (1, 1, 40_000)
    state = books(ctx, SHOP)
    assert state.items[state.batch_by_key("tue-late").batch_id] == [late]
    assert state.unsettled() == set()


def test_a_run_for_an_earlier_date_after_a_later_one(ctx: ServiceContext) -> None:
    add_merchant(ctx, SHOP, "T1")
    amounts: dict[str, int] = {}

    def sale(due: date, amount: int) -> str:
        txn = record(ctx, SHOP, due, amount)
        amounts[txn] = amount
        return txn

    a, b, c = sale(TUE, 1_000), sale(WED, 2_000), sale(THU, 4_000)
    wed = settlement.settle(ctx, WED)
    assert (wed.batches, wed.items) == (1, 2)
    wed_cursor = cursor(ctx, SHOP, "T1")
    assert wed_cursor is not None and wed_cursor.through_date == WED
    late_tue, late_wed = sale(TUE, 8_000), sale(WED, 16_000)
    late_thu, late_fri = sale(THU, 32_000), sale(FRI, 64_000)

    # An earlier date, after the WED run. Whether such a run takes the late items due by
    # the cursor's date is up to the design; it must neither lose nor double-count them,
    # and must not move the cursor back.
    tue = settlement.settle(ctx, TUE)
    assert not tue.errors
    state = books(ctx, SHOP)
    b_wed = state.batch_by_key(f"{WED.isoformat()}:")
    assert state.items[b_wed.batch_id] == [a, b]
    assert state.batch_of[c] is None and state.batch_of[late_thu] is None
    assert state.batch_of[late_fri] is None
    taken_by_tue = {t for t in (late_tue, late_wed) if state.batch_of[t] is not None}
    assert tue.items == len(taken_by_tue)
    after_tue = cursor(ctx, SHOP, "T1")
    assert after_tue is not None and after_tue.through_date == WED  # never moves back
    assert after_tue.through_item_id >= wed_cursor.through_item_id

    settlement.settle(ctx, THU)
    state = books(ctx, SHOP)
    assert state.batch_of[c] == state.batch_of[late_thu] == \
        state.batch_by_key(f"{THU.isoformat()}:").batch_id
    for t in (late_tue, late_wed):  # settled once: by the TUE run or else by this one
        assert state.batch_of[t] is not None
        if t not in taken_by_tue:
            assert state.batch_of[t] == state.batch_of[c]
    assert state.batch_of[late_fri] is None
    settlement.settle(ctx, FRI)
    state = books(ctx, SHOP)
    assert state.unsettled() == set()
    assert state.batch_of[late_fri] == state.batch_by_key(f"{FRI.isoformat()}:").batch_id
    assert sum(x.gross_minor for x in state.batches.values()) == sum(amounts.values())
    assert sum(x.item_count for x in state.batches.values()) == len(amounts)


# -- 4. cycle changes and merchants under review ----------------------------------------------

def test_cycle_change_settles_each_cycle_on_its_own_cursor(ctx: ServiceContext) -> None:
    add_merchant(ctx, SHOP, "T1")
    t_tue = record(ctx, SHOP, TUE, 1_000)
    t_wed = record(ctx, SHOP, WED, 2_000)  # T1, captured TUE before the change
    tue = settlement.settle(ctx, TUE, settlement.ALL_CYCLES)
    assert (tue.batches, tue.items) == (1, 1)
    assert list(books(ctx, SHOP).items.values()) == [[t_tue]]
    t1_after_tue = cursor(ctx, SHOP, "T1")

    set_cycle(ctx, SHOP, "D0")
    d_tue = record(ctx, SHOP, TUE, 4_000)
    intraday = settlement.settle(ctx, TUE, settlement.SAME_DAY, run_key="tue-d0")
    assert (intraday.batches, intraday.items, intraday.gross_minor) == (1, 1, 4_000)
    ids = item_ids(ctx, SHOP)
    assert cursor(ctx, SHOP, "T1") == t1_after_tue  # the other cycle's cursor stays put
    assert cursor(ctx, SHOP, "D0") == Cursor(TUE, ids[d_tue])
    state = books(ctx, SHOP)
    assert state.unsettled() == {t_wed}  # passed by the D0 cursor's id, but it is T1

    d_wed = record(ctx, SHOP, WED, 8_000)
    wed = settlement.settle(ctx, WED, settlement.ALL_CYCLES)
    assert (wed.batches, wed.items, wed.gross_minor) == (2, 2, 10_000)
    state = books(ctx, SHOP)
    by_cycle = {b.cycle: b for b in state.batches.values() if b.settlement_date == WED}
    assert state.items[by_cycle["T1"].batch_id] == [t_wed]
    assert state.items[by_cycle["D0"].batch_id] == [d_wed]

    set_cycle(ctx, SHOP, "T1")
    t_thu = record(ctx, SHOP, THU, 16_000)
    d0_before = cursor(ctx, SHOP, "D0")
    thu = settlement.settle(ctx, THU, settlement.ALL_CYCLES)
    assert (thu.batches, thu.items, thu.gross_minor) == (1, 1, 16_000)
    assert cursor(ctx, SHOP, "D0") == d0_before
    state = books(ctx, SHOP)
    assert state.unsettled() == set()
    assert state.batch_of[t_thu] == state.batch_by_key(f"{THU.isoformat()}:").batch_id
    assert sorted(b.cycle for b in state.batches.values()) == ["D0", "D0", "T1", "T1", "T1"]
    assert sum(b.gross_minor for b in state.batches.values()) == 31_000


def test_merchant_under_review_keeps_its_cursor_until_active(ctx: ServiceContext) -> None:
    add_merchant(ctx, SHOP, "D1")
    add_merchant(ctx, CAFE, "D1")
    s1 = record(ctx, SHOP, TUE, 1_000)
    c1 = record(ctx, CAFE, TUE, 2_000)
    merchants.set_merchant_status(ctx, SYSTEM, SHOP, MerchantStatus.UNDER_REVIEW)
    tue = settlement.settle(ctx, TUE)
    assert tue.batches == 1 and tue.carried_merchants == [SHOP]
    assert cursor(ctx, SHOP, "D1") is None
    assert books(ctx, SHOP).unsettled() == {s1}
    assert books(ctx, CAFE).unsettled() == set()
    s2 = record(ctx, SHOP, WED, 4_000)
    merchants.set_merchant_status(ctx, SYSTEM, SHOP, MerchantStatus.ACTIVE)
    wed = settlement.settle(ctx, WED)
    assert (wed.batches, wed.items, wed.gross_minor) == (1, 2, 5_000)
    state = books(ctx, SHOP)
    assert list(state.items.values()) == [[s1, s2]]
    assert books(ctx, CAFE).batch_of[c1] is not None


# -- 5. a random walk -------------------------------------------------------------------------

WALK_DAYS = [MON, TUE, WED, THU, FRI, SAT, date(2026, 9, 20)]  # SAT: no T runs; Sun 20th: workday
WALK_CYCLES = ["T1", "D1", "D0", "T0"]
RUN_CYCLES = [settlement.NEXT_DAY, settlement.SAME_DAY, settlement.ALL_CYCLES]


@pytest.mark.parametrize("seed", [2, 9, 10])
def test_random_walk_keeps_every_item_in_exactly_one_batch(ctx: ServiceContext,
                                                            seed: int) -> None:
    rnd = random.Random(seed)
    shops = [SHOP, CAFE]
    for mid in shops:
        add_merchant(ctx, mid, rnd.choice(WALK_CYCLES))
    active = {mid: True for mid in shops}
    txns: dict[str, tuple[str, date, int]] = {}  # txn → (merchant, due, amount)
    held: set[str] = set()
    settled: dict[str, str] = {}  # txn → batch, once settled: must never change
    used_keys: list[str] = []
    latest_run = MON
    day = 0
    with ctx.db.unit_of_work() as uow:
        calendar = business_calendar(uow)
    workday = {d: calendar.is_workday(d) for d in WALK_DAYS}

    def check() -> dict[str, str | None]:
        where: dict[str, str | None] = {}
        for mid in shops:
            where.update(books(ctx, mid).batch_of)
        for txn, batch_id in settled.items():
            assert where[txn] == batch_id, f"{txn} moved from {batch_id} to {where[txn]}"
        for txn, found in where.items():
            if found is not None:
                settled[txn] = found
                assert txns[txn][1] <= latest_run, "settled before any run reached its date"
        return where

    for step in range(70):
        op = rnd.random()
        if op < 0.45:
            mid = rnd.choice(shops)
            due = WALK_DAYS[min(len(WALK_DAYS) - 1, max(0, day + rnd.randint(-2, 2)))]
            amount = rnd.randint(1, 50) * 100
            txn = record(ctx, mid, due, amount)
            txns[txn] = (mid, due, amount)
        elif op < 0.57 and txns:
            # Hold a recent transaction, or release one that is held.
            if held and rnd.random() < 0.5:
                txn, hold = rnd.choice(sorted(held)), False
            else:
                txn, hold = rnd.choice(sorted(txns)[-6:]), True
            where = check()
            expected = 0 if where[txn] is not None else 1
            assert settlement.hold_transaction(ctx, txns[txn][0], txn, hold) == expected, step
            if expected:
                (held.add if hold else held.discard)(txn)
        elif op < 0.62:
            set_cycle(ctx, rnd.choice(shops), rnd.choice(WALK_CYCLES))
        elif op < 0.66:
            mid = rnd.choice(shops)
            active[mid] = not active[mid] or rnd.random() < 0.3
            merchants.set_merchant_status(
                ctx, SYSTEM, mid, MerchantStatus.ACTIVE if active[mid]
                else MerchantStatus.UNDER_REVIEW)
        else:
            if rnd.random() < 0.5:
                day = min(len(WALK_DAYS) - 1, day + 1)
            run_day = WALK_DAYS[max(0, day - (1 if rnd.random() < 0.15 else 0))]
            cycles = rnd.choice(RUN_CYCLES + [settlement.ALL_CYCLES] * 2)
            reuse = bool(used_keys) and rnd.random() < 0.15
            key = rnd.choice(used_keys) if reuse else f"walk-{step}"
            before = {t for t, b in check().items() if b is not None}
            cursors_before = all_cursors(ctx)
            advance_clock_to(ctx, run_day)  # a run is never dated after the business date
            summary = settlement.settle(ctx, run_day, cycles, run_key=key)
            assert not summary.errors, summary.errors
            used_keys.append(key)
            latest_run = max(latest_run, run_day)
            where = check()
            newly = {t for t, b in where.items() if b is not None} - before
            assert summary.items == len(newly), (step, summary)
            assert summary.gross_minor == sum(txns[t][2] for t in newly)
            if summary.batches == 0:
                assert all_cursors(ctx) == cursors_before, step
            if not reuse:
                run_cycles = [c for c in cycles if workday[run_day] or not c.startswith("T")]
                # A (merchant, cycle) whose cursor is already past the run's date may be
                # left alone by a late catch-up run; every other due item must be taken.
                ahead = {(m, cy) for m, cy, d, _ in cursors_before if d > run_day}
                with ctx.db.unit_of_work() as uow:
                    i = settlement_items.c
                    due_now = {(r[0], r[1], r[2]) for r in uow.connection.execute(
                        select(i.txn_id, i.merchant_id, i.cycle).where(
                            i.cycle.in_(run_cycles), i.held.is_(False),
                            i.due_date <= run_day))}
                missed = {t for t, m, cy in due_now
                          if where[t] is None and active[m] and (m, cy) not in ahead}
                assert not missed, f"step {step}: due items left out by run {key}: {missed}"

    for txn in sorted(held):
        assert settlement.hold_transaction(ctx, txns[txn][0], txn, False) == 1
    for mid in shops:
        merchants.set_merchant_status(ctx, SYSTEM, mid, MerchantStatus.ACTIVE)
    advance_clock_to(ctx, NEXT_MON)
    settlement.settle(ctx, NEXT_MON, settlement.ALL_CYCLES, run_key="walk-final")
    latest_run = NEXT_MON
    where = check()
    assert {t for t, b in where.items() if b is None} == set()
    total = 0
    count = 0
    for mid in shops:
        state = books(ctx, mid)
        total += sum(b.gross_minor for b in state.batches.values())
        count += sum(b.item_count for b in state.batches.values())
    assert (count, total) == (len(txns), sum(a for _, _, a in txns.values()))


# -- 6. an uncommitted insert (PostgreSQL) ----------------------------------------------------

def _waiting_advisory_locks(ctx: ServiceContext) -> int:
    with ctx.db.engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )).scalar() or 0)


def test_run_waits_for_an_uncommitted_item_insert(ctx: ServiceContext) -> None:
    if not ctx.db.is_postgres:
        pytest.skip("PostgreSQL only: on SQLite a run cannot even start while an item insert "
                    "holds the write lock, so there is no uncommitted item to pass")
    add_merchant(ctx, SHOP, "D0")
    add_merchant(ctx, CAFE, "D0")
    assert item_lock_key(SHOP) != item_lock_key(CAFE)
    early = record(ctx, SHOP, WED, 1_000)  # so the run makes a batch and moves the cursor
    pending = new_item(SHOP, "D0", WED, 2_000, ctx.now())
    inserted, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []
    summaries: list[settlement.RunSummary] = []

    def insert_and_wait() -> None:
        try:
            with ctx.db.unit_of_work() as uow:
                assert uow.settlement.add_item(pending)
                inserted.set()
                assert release.wait(60), "never released"
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            inserted.set()

    def run() -> None:
        try:
            summaries.append(settlement.settle(ctx, WED, ("D0",), run_key="race-1"))
        except BaseException as exc:
            failures.append(exc)

    writer = threading.Thread(target=insert_and_wait, daemon=True)
    runner = threading.Thread(target=run, daemon=True)
    writer.start()
    try:
        assert inserted.wait(30) and not failures, failures
        # Committed while the insert is open, with a higher item id: without the lock the
        # run would read this id as its high-water mark and pass the uncommitted item.
        other = record(ctx, CAFE, WED, 4_000)
        runner.start()
        for _ in range(300):
            if _waiting_advisory_locks(ctx) or not runner.is_alive():
                break
            time.sleep(0.05)
        assert _waiting_advisory_locks(ctx) >= 1, "the run did not wait on the item lock"
        runner.join(timeout=1.0)
        assert runner.is_alive() and not summaries, "the run finished while the insert was open"
    finally:
        release.set()
        writer.join(60)
        if runner.is_alive() or runner.ident is not None:
            runner.join(60)
    assert not failures, failures
    assert not writer.is_alive() and not runner.is_alive()
    ids = item_ids(ctx, SHOP)
    assert ids[pending.txn_id] < item_ids(ctx, CAFE)[other]

    follow = settlement.settle(ctx, WED, ("D0",), run_key="race-2")
    assert not follow.errors
    state = books(ctx, SHOP)
    assert state.unsettled() == set()
    assert state.batch_of[early] == state.batch_by_key("race-1").batch_id
    assert state.batch_of[pending.txn_id] in {b.batch_id for b in state.batches.values()}
    assert sum(b.item_count for b in state.batches.values()) == 2
    assert books(ctx, CAFE).unsettled() == set()


# -- 7. migration 0005 on legacy data ---------------------------------------------------------

@pytest.fixture(params=["sqlite", "postgres"])
def legacy_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database at revision 0004 (before settlement cursors)."""
    yield from database_at("0004", request.param, tmp_path, "m0005")


def _context(url: str, tmp_path: Path, clock: Callable[[], datetime]) -> ServiceContext:
    settings = Settings(data_dir=tmp_path / "var", database_url=url,
                        pan_token_key="11" * 32, data_key="22" * 32)
    return ServiceContext(settings=settings, db=Database(url), clock=clock)


def _legacy_batch(merchant_id: str, cycle: str, day: date, items: Sequence[SettlementItem],
                  at: datetime) -> dict[str, object]:
    """A settlement_batches row as a run before migration 0005 wrote it (no cursor columns)."""
    gross = sum(x.amount_minor for x in items)
    fees = sum(x.fee_minor for x in items)
    return {"batch_id": f"{merchant_id}-{day:%Y%m%d}-{cycle}-01", "merchant_id": merchant_id,
            "cycle": cycle, "settlement_date": day, "run_key": f"{day.isoformat()}:{cycle}:CNY",
            "item_count": len(items), "gross_minor": gross, "fee_minor": fees,
            "surcharge_minor": 0, "debt_recovered_minor": 0, "debt_added_minor": 0,
            "payout_minor": gross - fees, "currency": "CNY", "status": "settled",
            "expected_arrival": day, "entry_id": None, "created_at": at}


def test_migration_0005_on_legacy_data(legacy_url: str, tmp_path: Path) -> None:
    at = datetime(2026, 9, 16, 2, 0, tzinfo=UTC)
    old = _context(legacy_url, tmp_path, lambda: at)
    try:
        add_merchant(old, SHOP, "T1")
        add_merchant(old, CAFE, "D0")
        add_merchant(old, KIOSK, "D1")
    finally:
        old.db.dispose()

    def item(mid: str, cycle: str, due: date, amount: int, batch: str | None = None,
             held: bool = False) -> SettlementItem:
        return new_item(mid, cycle, due, amount, at, batch_id=batch, held=held)

    l_mon, l_tue, l_cafe = (f"{SHOP}-{MON:%Y%m%d}-T1-01", f"{SHOP}-{TUE:%Y%m%d}-T1-01",
                            f"{CAFE}-{TUE:%Y%m%d}-D0-01")
    # In item id order. SHOP (T1): settled MON and TUE by legacy runs; between them, items
    # inside the would-be cursor that the TUE run left (one held, one not) and one not yet
    # due; after them, items recorded after the last legacy run.
    i1 = item(SHOP, "T1", MON, 1_000, l_mon)
    i3 = item(SHOP, "T1", TUE, 3_000, held=True)
    i4 = item(SHOP, "T1", MON, 4_000)
    i5 = item(SHOP, "T1", WED, 5_000)
    i2 = item(SHOP, "T1", TUE, 2_000, l_tue)
    c1 = item(CAFE, "D0", TUE, 10_000, l_cafe)
    i6 = item(SHOP, "T1", TUE, 6_000)
    i7 = item(SHOP, "T1", THU, 7_000)
    c2 = item(CAFE, "D0", TUE, 20_000)
    k1 = item(KIOSK, "D1", TUE, 30_000)  # a merchant without legacy batches
    legacy = [i1, i3, i4, i5, i2, c1, i6, i7, c2, k1]
    engine = create_engine(normalize_url(legacy_url))
    try:
        with engine.begin() as conn:
            for x in legacy:
                conn.execute(settlement_items.insert().values(
                    **{f: getattr(x, f) for f in SettlementItem.__dataclass_fields__}))
            for mid, cycle, day, members in ((SHOP, "T1", MON, [i1]), (SHOP, "T1", TUE, [i2]),
                                             (CAFE, "D0", TUE, [c1])):
                conn.execute(settlement_batches.insert().values(
                    **_legacy_batch(mid, cycle, day, members, at)))
    finally:
        engine.dispose()

    migrate.upgrade(legacy_url)
    assert migrate.current_revision(legacy_url) not in (None, "0004")
    clock = [at]
    ctx = _context(legacy_url, tmp_path, lambda: clock[0])
    try:
        ids = item_ids(ctx, SHOP)
        cafe_ids = item_ids(ctx, CAFE)
        assert cursor(ctx, SHOP, "T1") == Cursor(TUE, ids[i2.txn_id])
        assert cursor(ctx, CAFE, "D0") == Cursor(TUE, cafe_ids[c1.txn_id])
        assert cursor(ctx, KIOSK, "D1") is None
        assert carried(ctx, SHOP) == {i3.txn_id: None, i4.txn_id: None}
        assert carried(ctx, CAFE) == {}
        shop = books(ctx, SHOP)
        assert shop.items == {l_mon: [i1.txn_id], l_tue: [i2.txn_id]}
        assert shop.unsettled() == {x.txn_id for x in (i3, i4, i5, i6, i7)}
        assert books(ctx, CAFE).items == {l_cafe: [c1.txn_id]}
        assert books(ctx, KIOSK).unsettled() == {k1.txn_id}
        # A legacy settled item cannot be held any more; a carried one can be released.
        assert settlement.hold_transaction(ctx, SHOP, i2.txn_id) == 0
        assert settlement.hold_transaction(ctx, SHOP, i1.txn_id) == 0

        wed = settlement.settle(ctx, WED)  # T1 + D1
        assert (wed.batches, wed.items) == (2, 4), wed
        shop = books(ctx, SHOP)
        b_wed = shop.batch_by_key(f"{WED.isoformat()}:")
        # i4: carried and unheld; i5: fallen due; i6: recorded since. i3 is still held.
        assert shop.items[b_wed.batch_id] == [i4.txn_id, i5.txn_id, i6.txn_id]
        assert shop.items[l_mon] == [i1.txn_id] and shop.items[l_tue] == [i2.txn_id]
        assert carried(ctx, SHOP) == {i3.txn_id: None, i4.txn_id: b_wed.batch_id}
        assert shop.unsettled() == {i3.txn_id, i7.txn_id}
        kiosk = books(ctx, KIOSK)
        assert list(kiosk.items.values()) == [[k1.txn_id]]

        d0 = settlement.settle(ctx, WED, settlement.SAME_DAY, run_key="wed-d0")
        assert (d0.batches, d0.items, d0.gross_minor) == (1, 1, 20_000)
        cafe = books(ctx, CAFE)
        assert cafe.items[cafe.batch_by_key("wed-d0").batch_id] == [c2.txn_id]
        assert cafe.unsettled() == set()

        assert settlement.hold_transaction(ctx, SHOP, i3.txn_id, held=False) == 1
        clock[0] = at + timedelta(days=1)  # a run may not be dated after the business date
        thu = settlement.settle(ctx, THU)
        assert (thu.batches, thu.items, thu.gross_minor) == (1, 2, 10_000)
        shop = books(ctx, SHOP)
        b_thu = shop.batch_by_key(f"{THU.isoformat()}:")
        assert shop.items[b_thu.batch_id] == [i3.txn_id, i7.txn_id]
        assert shop.unsettled() == set()
        assert sum(b.gross_minor for b in shop.batches.values()) == sum(
            x.amount_minor for x in legacy if x.merchant_id == SHOP)
    finally:
        ctx.db.dispose()
