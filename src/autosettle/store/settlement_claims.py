"""Which settlement items are in which batch: cursors instead of a mark on every item.

Each (merchant, cycle) has a *cursor* ``(through_date, through_item_id)``. Every item of
that merchant and cycle with ``due_date <= through_date`` and ``item_id <= through_item_id``
is settled, except the held ones a batch passed over, which are listed in
``settlement_carried`` until a later batch takes them. A batch records the cursor before and
after it; its items are those inside the new cursor and outside the old one (minus carried
ones), plus the carried items that name it. Items are never written again after they are
recorded, so settling a million of them writes one row per merchant, not per item.

A run for date D with new high-water item id H takes, per (merchant, cycle) with cursor
(d, h) — (0001-01-01, 0) without one — and D' = max(D, d):

* the items recorded since: ``h < item_id <= H`` and ``due_date <= D'`` (index
  ``ix_settlement_items_recorded``, which covers every column the sums need);
* the items recorded before that have fallen due since: ``item_id <= h`` and
  ``d < due_date <= D'`` (index ``ix_settlement_items_due``);
* carried items that are no longer held;

and moves the cursor to (D', H). D' is the batch's settlement date. It is later than D
only for a run dated before the merchant's cursor (a catch-up or a re-run of an old date
after a later run): the items it finds (recorded late, due by d) were due when the cursor
reached d, and the batch is dated d, so no batch holds an item due after its date.

The sets are disjoint by construction, so no item can be in two batches. H must not pass an
item that is not yet committed: SQLite has one writer at a time; on PostgreSQL every item
insert holds a shared advisory lock on its merchant (:func:`item_lock_key`) and a run takes
the same locks exclusively before reading H.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    func,
    or_,
    select,
    text,
    union_all,
    update,
)

from autosettle.domain.settlement_records import BatchRecord, ItemTotals, SettlementItem
from autosettle.domain.settlement_scan import NEVER, START, Claim, Cursor, DueGroup, DueScan
from autosettle.store.bulk import insert_rows
from autosettle.store.settlement import (
    ADVISORY_NAMESPACE,
    SettlementRepository,
    build_item,
    item_lock_key,
)
from autosettle.store.tables import (
    merchants,
    settlement_batches,
    settlement_carried,
    settlement_cursors,
    settlement_items,
)


class ClaimRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._postgres = conn.dialect.name == "postgresql"

    # -- ordering inserts against runs (PostgreSQL) -------------------------------------
    def lock_merchants_for_run(self, merchant_ids: Sequence[str]) -> None:
        """Wait for every uncommitted item insert of these merchants, and hold new ones
        off until this transaction ends (PostgreSQL; SQLite has one writer anyway)."""
        if not self._postgres or not merchant_ids:
            return
        keys = sorted({item_lock_key(m) for m in merchant_ids})
        self._conn.execute(
            text("SELECT count(pg_advisory_xact_lock(:ns, k)) FROM "
                 "(SELECT unnest(CAST(:keys AS integer[])) AS k ORDER BY 1) AS ordered"),
            {"ns": ADVISORY_NAMESPACE, "keys": keys})

    def lock_merchant_items(self, merchant_id: str) -> None:
        """The shared lock an item insert holds (PostgreSQL); see :meth:`add_item`."""
        if self._postgres:
            self._conn.execute(text("SELECT pg_advisory_xact_lock_shared(:ns, :key)"),
                               {"ns": ADVISORY_NAMESPACE, "key": item_lock_key(merchant_id)})

    def merchant_ids(self) -> list[str]:
        """Every merchant, in id order: what a run looks at, chunk by chunk."""
        return [r[0] for r in self._conn.execute(
            select(merchants.c.merchant_id).order_by(merchants.c.merchant_id))]

    def upto_item_id(self) -> int:
        """The highest item id recorded (the run's H)."""
        return int(self._conn.execute(select(func.max(settlement_items.c.item_id))).scalar()
                   or 0)

    # -- what a run settles -------------------------------------------------------------
    def cursors(self, merchant_ids: Sequence[str],
                cycles: Sequence[str]) -> dict[tuple[str, str], Cursor]:
        if not merchant_ids:
            return {}
        c = settlement_cursors.c
        rows = self._conn.execute(select(c.merchant_id, c.cycle, c.through_date,
                                         c.through_item_id)
                                  .where(c.merchant_id.in_(list(merchant_ids)),
                                         c.cycle.in_(list(cycles))))
        return {(r[0], r[1]): Cursor(r[2], int(r[3])) for r in rows}

    def scan_due(self, merchant_ids: Sequence[str], cycles: Sequence[str], run_date: date,
                 upto_item_id: int) -> DueScan:
        """Sum what is due by ``run_date`` for these merchants and cycles, per currency."""
        cursors = self.cursors(merchant_ids, cycles)
        scan = DueScan(upto_item_id, run_date, cursors, [], {}, {})
        keys = [(m, cy) for m in sorted(set(merchant_ids)) for cy in cycles]
        if not keys:
            return scan
        sums: dict[tuple[str, str, str], list[int]] = {}
        held_keys: set[tuple[str, str]] = set()
        for sql, params in self._range_sums(keys, run_date, upto_item_id, cursors):
            for m, cy, cur, held, count, gross, fee in self._conn.exec_driver_sql(
                    sql, tuple(params)):
                if held:
                    held_keys.add((m, cy))
                    continue
                acc = sums.setdefault((m, cy, cur), [0, 0, 0])
                acc[0] += int(count)
                acc[1] += int(gross)
                acc[2] += int(fee)
        if held_keys:
            scan.held = self._held_ids(sorted(held_keys), run_date, upto_item_id, cursors)
        for m, cy, cur, item_id, amount, fee in self._released(merchant_ids, cycles):
            scan.released.setdefault((m, cy, cur), []).append(int(item_id))
            acc = sums.setdefault((m, cy, cur), [0, 0, 0])
            acc[0] += 1
            acc[1] += int(amount)
            acc[2] += int(fee)
        scan.groups = [DueGroup(m, cy, cur, a[0], a[1], a[2])
                       for (m, cy, cur), a in sorted(sums.items()) if a[0]]
        return scan

    def _range_sums(self, keys: Sequence[tuple[str, str]], run_date: date, upto: int,
                    cursors: dict[tuple[str, str], Cursor]) -> list[Any]:
        """The two range sums as (SQL, parameters), written out by hand: with thousands of
        bound values SQLAlchemy's compiler would cost more than the queries themselves.
        On PostgreSQL the ranges travel as arrays (``unnest``)."""
        day: Any = (lambda d: d) if self._postgres else (lambda d: d.isoformat())

        def bounds(key: tuple[str, str]) -> list[Any]:
            cursor = cursors.get(key, START)
            return [key[0], key[1], cursor.through_item_id, day(cursor.through_date),
                    day(max(run_date, cursor.through_date))]

        def parameters(chosen: Sequence[tuple[str, str]]) -> list[Any]:
            rows = [bounds(k) for k in chosen]
            if self._postgres:  # one array per column
                return [list(column) for column in zip(*rows, strict=True)]
            return [v for row in rows for v in row]

        def sql(kind: str, rows: int) -> str:  # PostgreSQL's arrays: one text any length
            return _range_sql(kind, 0 if self._postgres else rows, self._postgres)

        statements = [(sql("since", len(keys)), [*parameters(keys), upto])]
        older = [k for k in keys if k in cursors and run_date > cursors[k].through_date]
        if older:
            statements.append((sql("fallen", len(older)), parameters(older)))
        return statements

    def _held_ids(self, keys: Sequence[tuple[str, str]], run_date: date, upto: int,
                  cursors: dict[tuple[str, str], Cursor]) -> dict[tuple[str, str], list[int]]:
        i = settlement_items.c
        result: dict[tuple[str, str], list[int]] = {}
        for m, cy in keys:
            cursor = cursors.get((m, cy), START)
            due_by = max(run_date, cursor.through_date)
            rows = self._conn.execute(select(i.item_id).where(
                i.merchant_id == m, i.cycle == cy, i.held.is_(True), i.due_date <= due_by,
                i.item_id <= upto,
                or_(i.item_id > cursor.through_item_id, i.due_date > cursor.through_date))
                .order_by(i.item_id))
            result[(m, cy)] = [int(r[0]) for r in rows]
        return result

    def _released(self, merchant_ids: Sequence[str], cycles: Sequence[str]) -> list[Any]:
        i, k = settlement_items.c, settlement_carried.c
        return list(self._conn.execute(
            select(k.merchant_id, k.cycle, i.currency, k.item_id, i.amount_minor, i.fee_minor)
            .select_from(settlement_carried.join(settlement_items, i.item_id == k.item_id))
            .where(k.merchant_id.in_(list(merchant_ids)), k.cycle.in_(list(cycles)),
                   k.batch_id.is_(None), i.held.is_(False))
            .order_by(k.item_id)))

    def advance(self, scan: DueScan, made: Sequence[Claim], at: datetime) -> None:
        """After the batches in ``made`` are written: move their cursors, carry the held
        items they passed, and give released carried items to their batch."""
        if not made:
            return
        moved: dict[tuple[str, str], Cursor] = {}
        for a in made:
            moved[(a.merchant_id, a.cycle)] = scan.new_cursor(a.merchant_id, a.cycle)
        insert_rows(self._conn, settlement_cursors, [
            {"merchant_id": m, "cycle": cy, "through_date": c.through_date,
             "through_item_id": c.through_item_id, "updated_at": at}
            for (m, cy), c in moved.items()],
            conflict=["merchant_id", "cycle"],
            update=["through_date", "through_item_id", "updated_at"])
        insert_rows(self._conn, settlement_carried, [
            {"item_id": item_id, "merchant_id": m, "cycle": cy, "carried_at": at,
             "batch_id": None}
            for (m, cy) in moved for item_id in scan.held.get((m, cy), [])])
        k = settlement_carried.c
        for a in made:
            ids = scan.released.get((a.merchant_id, a.cycle, a.currency), [])
            if ids:
                self._conn.execute(update(settlement_carried)
                                   .where(k.item_id.in_(ids), k.batch_id.is_(None))
                                   .values(batch_id=a.batch_id))

    # -- membership, read back ----------------------------------------------------------
    def _batch_items_query(self, batch: BatchRecord, columns: Iterable[Any]) -> Any:
        """The items of one batch."""
        i, k = settlement_items.c, settlement_carried.c
        if batch.through_item_id is None:  # made before migration 0005
            return select(*columns).where(i.merchant_id == batch.merchant_id,
                                          i.batch_id == batch.batch_id)
        old_date = batch.from_date or NEVER
        old_id = batch.from_item_id or 0
        mine = (i.merchant_id == batch.merchant_id, i.cycle == batch.cycle,
                i.currency == batch.currency)
        # Two index ranges, as a run reads them: recorded since the old cursor (due by the
        # new one), and recorded before it but fallen due since; plus carried items that
        # name this batch, minus carried items that do not. Every part names the merchant
        # and currency, so the outer query looks its rows up by id. (``item_id + 0``: the
        # fallen-due part is found by its due dates, a few days of items, not by walking the
        # merchant's whole history below the old cursor, which SQLite, never ANALYZEd,
        # preferred: half a second on a year of data.)
        since = select(i.item_id).where(*mine, i.item_id > old_id,
                                        i.item_id <= batch.through_item_id,
                                        i.due_date <= batch.through_date)
        fallen = select(i.item_id).where(*mine, (i.item_id + 0) <= old_id,
                                         i.due_date > old_date,
                                         i.due_date <= batch.through_date)
        named = (select(k.item_id)
                 .join(settlement_items, i.item_id == k.item_id)
                 .where(k.merchant_id == batch.merchant_id, k.batch_id == batch.batch_id,
                        i.merchant_id == batch.merchant_id, i.currency == batch.currency))
        carried_elsewhere = select(k.item_id).where(
            k.merchant_id == batch.merchant_id,
            or_(k.batch_id.is_(None), k.batch_id != batch.batch_id))
        members = union_all(since, fallen, named)
        return select(*columns).where(i.item_id.in_(members),
                                      i.item_id.not_in(carried_elsewhere))

    def items_of_batch(self, batch_id: str, limit: int = 100_000) -> list[SettlementItem]:
        """The items of a batch, by item id (empty for an unknown batch)."""
        batch = self._batch(batch_id)
        if batch is None:
            return []
        query = self._batch_items_query(batch, [settlement_items])
        rows = self._conn.execute(query.order_by(settlement_items.c.item_id).limit(limit))
        return [build_item(r) for r in rows]

    def batch_item_totals(self,
                          batch_ids: Sequence[str]) -> dict[str, dict[str, ItemTotals]]:
        """(count, gross, fee) of the items of each batch, per merchant found in it."""
        i = settlement_items.c
        result: dict[str, dict[str, ItemTotals]] = {}
        for batch_id in batch_ids:
            batch = self._batch(batch_id)
            if batch is None:
                continue
            query = self._batch_items_query(batch, [i.merchant_id, func.count(),
                                                    func.sum(i.amount_minor),
                                                    func.sum(i.fee_minor)])
            for r in self._conn.execute(query.group_by(i.merchant_id)):
                if r[1]:
                    result.setdefault(batch_id, {})[r[0]] = ItemTotals(int(r[1]), int(r[2]),
                                                                      int(r[3]))
        return result

    def _batch(self, batch_id: str) -> BatchRecord | None:
        return SettlementRepository(self._conn).batch(batch_id)

    def batches_of_items(self, merchant_id: str) -> dict[int, str | None]:
        """Every item of the merchant → the batch it is in (None: unsettled)."""
        i, b, k = settlement_items.c, settlement_batches.c, settlement_carried.c
        items = list(self._conn.execute(
            select(i.item_id, i.cycle, i.currency, i.due_date, i.batch_id)
            .where(i.merchant_id == merchant_id)))
        batches = list(self._conn.execute(
            select(b.batch_id, b.cycle, b.currency, b.from_date, b.from_item_id,
                   b.through_date, b.through_item_id)
            .where(b.merchant_id == merchant_id, b.through_item_id.is_not(None))))
        carried = {int(r[0]): r[1] for r in self._conn.execute(
            select(k.item_id, k.batch_id).where(k.merchant_id == merchant_id))}
        result: dict[int, str | None] = {}
        for item_id, cycle, cur, due, legacy in items:
            found: str | None = legacy
            if int(item_id) in carried:
                found = carried[int(item_id)]
            elif found is None:
                for bid, bcy, bcur, fd, fid, td, tid in batches:
                    if (bcy == cycle and bcur == cur and due <= td and item_id <= tid
                            and (due > (fd or NEVER) or item_id > (fid or 0))):
                        found = bid
                        break
            result[int(item_id)] = found
        return result

    # -- what is still unsettled --------------------------------------------------------
    def unsettled_condition(self) -> Any:
        """A WHERE clause over ``settlement_items`` true for items in no batch (use with
        :meth:`with_cursors` as the FROM clause)."""
        i, c, k = settlement_items.c, settlement_cursors.c, settlement_carried.c
        carried_open = select(k.item_id).where(k.merchant_id == i.merchant_id,
                                               k.batch_id.is_(None))
        return and_(i.batch_id.is_(None), or_(
            c.through_item_id.is_(None), i.due_date > c.through_date,
            i.item_id > c.through_item_id, i.item_id.in_(carried_open)))

    @staticmethod
    def with_cursors() -> Any:
        i, c = settlement_items.c, settlement_cursors.c
        return settlement_items.outerjoin(settlement_cursors, and_(
            c.merchant_id == i.merchant_id, c.cycle == i.cycle))

    def unsettled_net_by_due_date(self, merchant_id: str, first: date,
                                  last: date) -> list[tuple[str, date, str, int]]:
        """(cycle, due date, currency, amount less fees) of the merchant's unsettled, unheld
        items due from ``first`` to ``last``."""
        i = settlement_items.c
        rows = self._conn.execute(
            select(i.cycle, i.due_date, i.currency, func.sum(i.amount_minor - i.fee_minor))
            .select_from(self.with_cursors())
            .where(i.merchant_id == merchant_id, self.unsettled_condition(),
                   i.held.is_(False), i.due_date >= first, i.due_date <= last)
            .group_by(i.cycle, i.due_date, i.currency))
        return [(r[0], r[1], r[2], int(r[3])) for r in rows]

    def unsettled_groups(self, run_date: date, cycles: Sequence[str],
                         merchant_ids: Sequence[str] | None = None) -> list[DueGroup]:
        """Unsettled, unheld items due by ``run_date``, summed per merchant, cycle and
        currency (a full scan: for checks and reports, not for runs)."""
        i = settlement_items.c
        query = (select(i.merchant_id, i.cycle, i.currency, func.count(),
                        func.sum(i.amount_minor), func.sum(i.fee_minor))
                 .select_from(self.with_cursors())
                 .where(self.unsettled_condition(), i.held.is_(False),
                        i.due_date <= run_date, i.cycle.in_(list(cycles)))
                 .group_by(i.merchant_id, i.cycle, i.currency)
                 .order_by(i.merchant_id, i.cycle, i.currency))
        if merchant_ids is not None:
            query = query.where(i.merchant_id.in_(list(merchant_ids)))
        return [DueGroup(r[0], r[1], r[2], int(r[3]), int(r[4]), int(r[5]))
                for r in self._conn.execute(query)]

    def unsettled_item_ids(self, merchant_id: str, source_txn_id: str) -> list[int]:
        """Ids of the unsettled items of one transaction (what a risk hold may touch)."""
        i = settlement_items.c
        rows = self._conn.execute(
            select(i.item_id).select_from(self.with_cursors())
            .where(i.merchant_id == merchant_id, i.source_txn_id == source_txn_id,
                   self.unsettled_condition()))
        return [int(r[0]) for r in rows]

    def set_held(self, merchant_id: str, source_txn_id: str, held: bool) -> int:
        """Hold or release the unsettled items of a transaction; how many changed."""
        self.lock_merchant_items(merchant_id)
        ids = self.unsettled_item_ids(merchant_id, source_txn_id)
        if not ids:
            return 0
        result = self._conn.execute(update(settlement_items)
                                    .where(settlement_items.c.item_id.in_(ids))
                                    .values(held=held))
        return int(result.rowcount or 0)


_RANGE_JOIN = {
    # items recorded since the cursor, due by the run date (or the cursor's, if later)
    "since": "i.item_id > r.h AND i.item_id <= {p} AND i.due_date <= r.due_by",
    # items recorded before the cursor that fell due after it
    "fallen": "i.item_id <= r.h AND i.due_date > r.d AND i.due_date <= r.due_by",
}


@lru_cache(maxsize=64)
def _range_sql(kind: str, rows: int, postgres: bool) -> str:
    """The ranges ``r(m, cy, h, d, due_by)`` joined to the items, summed per merchant,
    cycle, currency and held flag. SQLite: ``rows`` VALUES rows of five parameters;
    PostgreSQL: five array parameters, unnested (one parameter each, whatever the rows)."""
    if postgres:
        ranges = ("r AS (SELECT * FROM unnest(CAST(%s AS VARCHAR[]), CAST(%s AS VARCHAR[]), "
                  "CAST(%s AS BIGINT[]), CAST(%s AS DATE[]), CAST(%s AS DATE[])) "
                  "AS r(m, cy, h, d, due_by))")
        p = "%s"
    else:
        ranges = f"r(m, cy, h, d, due_by) AS (VALUES {', '.join(['(?, ?, ?, ?, ?)'] * rows)})"
        p = "?"
    return (f"WITH {ranges} "
            "SELECT i.merchant_id, i.cycle, i.currency, i.held, COUNT(*), "
            "SUM(i.amount_minor), SUM(i.fee_minor) "
            "FROM r JOIN settlement_items i ON i.merchant_id = r.m AND i.cycle = r.cy AND "
            + _RANGE_JOIN[kind].format(p=p)
            + " GROUP BY i.merchant_id, i.cycle, i.currency, i.held")
