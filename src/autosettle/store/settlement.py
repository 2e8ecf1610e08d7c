"""Repositories for settlement: items, batches, payouts, alerts, fee schedules, calendar
overrides, maintenance windows and job leases.

Aggregations run in SQL (``GROUP BY``), so a run never loads a million rows into Python;
which items are in which batch is kept by cursors (:mod:`.settlement_claims`), so items are
written once and never updated by a run. The ``*_many`` / ``*_for`` methods serve a run
that handles many merchants per transaction: a fixed number of statements per chunk of
merchants instead of a dozen per merchant.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Integer, Row, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from autosettle.domain.calendar import SettlementCycle
from autosettle.domain.jobs import JobRun, JobStatus
from autosettle.domain.maintenance import CalendarOverride, Window
from autosettle.domain.merchants import Merchant, SettlementAccount
from autosettle.domain.settlement_records import (
    AlertRecord,
    AlertSeverity,
    BatchRecord,
    BatchStatus,
    ItemKind,
    PayoutRecord,
    PayoutStatus,
    SettlementItem,
)
from autosettle.store.bulk import insert_rows
from autosettle.store.ledger import derived_balances
from autosettle.store.merchants import _account, merchant_from_row
from autosettle.store.tables import (
    alerts,
    calendar_overrides,
    fee_schedules,
    job_runs,
    journal_lines,
    maintenance_windows,
    merchants,
    payouts,
    settlement_accounts,
    settlement_batches,
    settlement_items,
    terminal_batches,
)

ADVISORY_NAMESPACE = 0x5E771E
"""First key of the PostgreSQL advisory locks that order item inserts against runs."""


def item_lock_key(merchant_id: str) -> int:
    """The second advisory-lock key of a merchant (a signed 32-bit CRC; a collision only
    makes two merchants wait for each other)."""
    value = zlib.crc32(merchant_id.encode())
    return value - 2**32 if value >= 2**31 else value


_ITEM_KEY = ["merchant_id", "txn_id", "kind"]
_ITEM_COLUMNS = [f.name for f in fields(SettlementItem)]
_ADD_ITEM = sqlite.insert(settlement_items).on_conflict_do_nothing(index_elements=_ITEM_KEY)
_ADD_ITEM_LOCKED = postgresql.insert(settlement_items).from_select(
    _ITEM_COLUMNS,
    # The shared lock is taken while the one-row SELECT runs, before the row gets its id.
    select(*[bindparam(n, type_=settlement_items.c[n].type) for n in _ITEM_COLUMNS])
    .select_from(select(func.pg_advisory_xact_lock_shared(
        bindparam("lock_ns", type_=Integer), bindparam("lock_key", type_=Integer)))
        .subquery("item_lock")),
).on_conflict_do_nothing(index_elements=_ITEM_KEY)


_ENUMS_OF: dict[type, dict[str, type[StrEnum]]] = {
    SettlementItem: {"kind": ItemKind, "cycle": SettlementCycle},
    BatchRecord: {"cycle": SettlementCycle, "status": BatchStatus},
    PayoutRecord: {"status": PayoutStatus},
    AlertRecord: {"severity": AlertSeverity},
}


def _build(cls: Any, row: Row[Any]) -> Any:
    """A domain record from a row: the columns of its fields, enums parsed."""
    m = row._mapping
    enums = _ENUMS_OF.get(cls, {})
    return cls(**{f.name: enums[f.name](m[f.name]) if f.name in enums else m[f.name]
                  for f in fields(cls)})


def build_item(row: Row[Any]) -> SettlementItem:
    item: SettlementItem = _build(SettlementItem, row)
    return item


class SettlementRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    # -- items --------------------------------------------------------------------------
    def add_item(self, item: SettlementItem) -> bool:
        """Insert unless (merchant, txn, kind) exists; False when it did (idempotent).

        On PostgreSQL the insert first takes the merchant's shared advisory lock, so that a
        settlement run never moves its cursor past an item that is not yet committed
        (:mod:`autosettle.store.settlement_claims`)."""
        values = {f.name: getattr(item, f.name) for f in fields(SettlementItem)}
        if self._conn.dialect.name == "postgresql":
            values.update(lock_ns=ADVISORY_NAMESPACE, lock_key=item_lock_key(item.merchant_id))
            result = self._conn.execute(_ADD_ITEM_LOCKED, values)
        else:
            result = self._conn.execute(_ADD_ITEM, values)
        return bool(result.rowcount)

    def items_of_txn(self, merchant_id: str, txn_id: str) -> list[SettlementItem]:
        rows = self._conn.execute(select(settlement_items).where(
            settlement_items.c.merchant_id == merchant_id,
            settlement_items.c.txn_id == txn_id).order_by(settlement_items.c.item_id))
        return [build_item(r) for r in rows]

    def items_for_source(self, merchant_id: str, source_txn_id: str) -> list[SettlementItem]:
        rows = self._conn.execute(select(settlement_items).where(
            settlement_items.c.merchant_id == merchant_id,
            settlement_items.c.source_txn_id == source_txn_id)
            .order_by(settlement_items.c.item_id))
        return [build_item(r) for r in rows]

    def capture_totals_by_day(self, merchant_id: str, date_from: date,
                              date_to: date) -> list[tuple[date, str, int, int]]:
        """(business date, currency, amount, fees) of the merchant's captures per day."""
        c = settlement_items.c
        rows = self._conn.execute(
            select(c.business_date, c.currency, func.sum(c.amount_minor), func.sum(c.fee_minor))
            .where(c.merchant_id == merchant_id, c.kind == ItemKind.CAPTURE,
                   c.business_date >= date_from, c.business_date <= date_to)
            .group_by(c.business_date, c.currency))
        return [(r[0], r[1], int(r[2]), int(r[3])) for r in rows]

    def pending_payouts_by_arrival(self, merchant_id: str, first: date,
                                   last: date) -> list[tuple[str, date, str, int]]:
        """(cycle, expected arrival, currency, amount) of the merchant's pending payouts
        expected from ``first`` to ``last``."""
        p, b = payouts.c, settlement_batches.c
        rows = self._conn.execute(
            select(b.cycle, p.expected_arrival, p.currency, func.sum(p.amount_minor))
            .select_from(payouts.join(settlement_batches, b.batch_id == p.batch_id))
            .where(p.merchant_id == merchant_id, p.status == PayoutStatus.PENDING,
                   p.expected_arrival >= first, p.expected_arrival <= last)
            .group_by(b.cycle, p.expected_arrival, p.currency))
        return [(r[0], r[1], r[2], int(r[3])) for r in rows]

    def latest_business_date(self, merchant_id: str) -> date | None:
        """The latest business date among the merchant's items (None without any)."""
        value: date | None = self._conn.execute(
            select(func.max(settlement_items.c.business_date))
            .where(settlement_items.c.merchant_id == merchant_id)).scalar()
        return value

    # -- what a run reads for a chunk of merchants ----------------------------------------
    def lock_merchants(self, merchant_ids: Sequence[str]) -> dict[str, Merchant]:
        """The merchants, locked ``FOR UPDATE`` (PostgreSQL) in id order, so that two runs
        lock the same merchants in the same order and never deadlock."""
        if not merchant_ids:
            return {}
        rows = self._conn.execute(
            select(merchants).where(merchants.c.merchant_id.in_(list(merchant_ids)))
            .order_by(merchants.c.merchant_id).with_for_update())
        return {r.merchant_id: merchant_from_row(r) for r in rows}

    def batch_runs(self, merchant_ids: Sequence[str],
                   run_keys: Sequence[str]) -> set[tuple[str, str]]:
        """(merchant, run key) pairs that already have a batch."""
        if not merchant_ids or not run_keys:
            return set()
        b = settlement_batches.c
        rows = self._conn.execute(select(b.merchant_id, b.run_key).where(
            b.merchant_id.in_(list(merchant_ids)), b.run_key.in_(sorted(set(run_keys)))))
        return {(r[0], r[1]) for r in rows}

    def batch_counts(self, merchant_ids: Sequence[str], settlement_date: date) -> dict[str, int]:
        """How many batches each merchant has for ``settlement_date``."""
        if not merchant_ids:
            return {}
        b = settlement_batches.c
        rows = self._conn.execute(
            select(b.merchant_id, func.count())
            .where(b.merchant_id.in_(list(merchant_ids)), b.settlement_date == settlement_date)
            .group_by(b.merchant_id))
        return {r[0]: int(r[1]) for r in rows}

    def account_balances(self, account_codes: Sequence[str]) -> dict[tuple[str, str], int]:
        """Ledger balances of several accounts, by (account code, currency); accounts
        without lines are missing (balance zero)."""
        return derived_balances(self._conn, account_codes=account_codes)  # checkpoints

    def entry_lines(self, entry_ids: Sequence[int]) -> dict[int, dict[tuple[str, str], int]]:
        """The net amount per (account code, currency) of each journal entry."""
        if not entry_ids:
            return {}
        j = journal_lines.c
        rows = self._conn.execute(
            select(j.entry_id, j.account_code, j.currency, func.sum(j.amount_minor))
            .where(j.entry_id.in_(list(entry_ids)))
            .group_by(j.entry_id, j.account_code, j.currency))
        result: dict[int, dict[tuple[str, str], int]] = {}
        for r in rows:
            result.setdefault(int(r[0]), {})[(r[1], r[2])] = int(r[3])
        return result

    def accounts_for(self, merchant_ids: Sequence[str]) -> dict[str, list[SettlementAccount]]:
        """The settlement accounts of several merchants, oldest first."""
        if not merchant_ids:
            return {}
        a = settlement_accounts.c
        rows = self._conn.execute(
            select(settlement_accounts).where(a.merchant_id.in_(list(merchant_ids)))
            .order_by(a.merchant_id, a.created_at, a.account_id))
        result: dict[str, list[SettlementAccount]] = {}
        for r in rows:
            result.setdefault(r.merchant_id, []).append(_account(r))
        return result

    # -- batches ------------------------------------------------------------------------
    def add_batches(self, batches: Sequence[BatchRecord]) -> None:
        insert_rows(self._conn, settlement_batches,
                    [{f.name: getattr(b, f.name) for f in fields(BatchRecord)} for b in batches])

    def batch(self, batch_id: str) -> BatchRecord | None:
        row = self._conn.execute(select(settlement_batches).where(
            settlement_batches.c.batch_id == batch_id)).first()
        return _build(BatchRecord, row) if row else None

    def set_batch(self, batch_id: str, **values: Any) -> None:
        self._conn.execute(update(settlement_batches)
                           .where(settlement_batches.c.batch_id == batch_id).values(**values))

    def batches(self, merchant_id: str | None, date_from: date | None, date_to: date | None,
                limit: int) -> list[BatchRecord]:
        b = settlement_batches.c
        query = select(settlement_batches).order_by(b.settlement_date.desc(),
                                                    b.batch_id.desc()).limit(limit)
        if merchant_id is not None:
            query = query.where(b.merchant_id == merchant_id)
        if date_from is not None:
            query = query.where(b.settlement_date >= date_from)
        if date_to is not None:
            query = query.where(b.settlement_date <= date_to)
        return [_build(BatchRecord, r) for r in self._conn.execute(query)]

    # -- payouts ------------------------------------------------------------------------
    def add_payouts(self, records: Sequence[PayoutRecord]) -> None:
        insert_rows(self._conn, payouts,
                    [{f.name: getattr(p, f.name) for f in fields(PayoutRecord)} for p in records])

    def payout(self, payout_id: str) -> PayoutRecord | None:
        row = self._conn.execute(select(payouts).where(payouts.c.payout_id == payout_id)).first()
        return _build(PayoutRecord, row) if row else None

    def payout_of_batch(self, batch_id: str) -> PayoutRecord | None:
        row = self._conn.execute(select(payouts).where(payouts.c.batch_id == batch_id)).first()
        return _build(PayoutRecord, row) if row else None

    def payouts(self, status: str | None = None, merchant_id: str | None = None,
                expected_by: date | None = None,
                limit: int | None = 10_000) -> list[PayoutRecord]:
        """Oldest first; ``limit=None`` for all of them."""
        query = select(payouts).order_by(payouts.c.created_at, payouts.c.payout_id)
        if limit is not None:
            query = query.limit(limit)
        if status is not None:
            query = query.where(payouts.c.status == status)
        if merchant_id is not None:
            query = query.where(payouts.c.merchant_id == merchant_id)
        if expected_by is not None:
            query = query.where(payouts.c.expected_arrival <= expected_by)
        return [_build(PayoutRecord, r) for r in self._conn.execute(query)]

    def payouts_in_file(self, file_name: str) -> list[PayoutRecord]:
        """Every payout written to the payout file ``file_name``, oldest first."""
        query = (select(payouts).where(payouts.c.file_name == file_name)
                 .order_by(payouts.c.created_at, payouts.c.payout_id))
        return [_build(PayoutRecord, r) for r in self._conn.execute(query)]

    def set_payout(self, payout_id: str, **values: Any) -> None:
        self._conn.execute(update(payouts).where(payouts.c.payout_id == payout_id)
                           .values(**values))


class AlertRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def raise_alert(self, at: datetime, severity: str, kind: str, message: str,
                    merchant_id: str | None = None, dedup_key: str | None = None) -> None:
        """Insert an alert; one with the same ``dedup_key`` is raised once.

        ``ON CONFLICT DO NOTHING``: two transactions raising the same key at once (two
        settlement runs, a run and the API) must not fail the second one's business work.
        """
        values = {"at": at, "severity": severity, "kind": kind, "merchant_id": merchant_id,
                  "message": message[:500], "dedup_key": dedup_key}
        if dedup_key is None:
            self._conn.execute(insert(alerts).values(**values))
            return
        module: Any = postgresql if self._conn.dialect.name == "postgresql" else sqlite
        self._conn.execute(module.insert(alerts).values(**values)
                           .on_conflict_do_nothing(index_elements=["dedup_key"]))

    def alerts(self, merchant_id: str | None, include_resolved: bool,
               limit: int) -> list[AlertRecord]:
        """Newest first; of one merchant or (``None``) of all."""
        query = select(alerts).order_by(alerts.c.alert_id.desc()).limit(limit)
        if merchant_id is not None:
            query = query.where(alerts.c.merchant_id == merchant_id)
        if not include_resolved:
            query = query.where(alerts.c.resolved_at.is_(None))
        return [_build(AlertRecord, r) for r in self._conn.execute(query)]

    def open_alerts(self, merchant_id: str | None = None, limit: int = 200) -> list[AlertRecord]:
        """The unresolved alerts, newest first."""
        return self.alerts(merchant_id, False, limit)

    def open_terminal_batches(self, opened_before: datetime) -> list[tuple[str, int]]:
        """(merchant, count) of terminal batches still open that opened before the time."""
        b = terminal_batches.c
        rows = self._conn.execute(
            select(b.merchant_id, func.count()).where(b.status == "open",
                                                      b.opened_at < opened_before)
            .group_by(b.merchant_id).order_by(b.merchant_id))
        return [(r[0], int(r[1])) for r in rows]

    def alert(self, alert_id: int) -> AlertRecord | None:
        """One alert, or None."""
        row = self._conn.execute(select(alerts).where(alerts.c.alert_id == alert_id)).first()
        return _build(AlertRecord, row) if row else None

    def resolve(self, alert_id: int, at: datetime) -> None:
        """Mark an alert resolved at ``at``."""
        self._conn.execute(update(alerts).where(alerts.c.alert_id == alert_id)
                           .values(resolved_at=at))


class ConfigRepository:
    """Fee schedule versions, calendar overrides and maintenance windows."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def fee_schedule_versions(self, merchant_id: str) -> list[dict[str, Any]]:
        rows = self._conn.execute(select(fee_schedules.c.spec).where(
            fee_schedules.c.merchant_id == merchant_id).order_by(fee_schedules.c.version))
        return [json.loads(r[0]) for r in rows]

    def fee_schedule_versions_for(self,
                                  merchant_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """:meth:`fee_schedule_versions` of several merchants (missing: none of its own)."""
        if not merchant_ids:
            return {}
        f = fee_schedules.c
        rows = self._conn.execute(select(f.merchant_id, f.spec)
                                  .where(f.merchant_id.in_(list(merchant_ids)))
                                  .order_by(f.merchant_id, f.version))
        result: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            result.setdefault(r[0], []).append(json.loads(r[1]))
        return result

    def add_fee_schedule(self, merchant_id: str, version: int, effective_from: date,
                         spec: dict[str, Any], at: datetime) -> None:
        self._conn.execute(insert(fee_schedules).values(
            merchant_id=merchant_id, version=version, effective_from=effective_from,
            spec=json.dumps(spec, sort_keys=True), created_at=at))

    def calendar_overrides(self) -> dict[date, bool]:
        rows = self._conn.execute(select(calendar_overrides.c.day,
                                         calendar_overrides.c.is_workday))
        return {r[0]: bool(r[1]) for r in rows}

    def calendar_override_notes(self, date_from: date | None,
                                date_to: date | None) -> list[CalendarOverride]:
        """The overrides in the period, by day."""
        c = calendar_overrides.c
        query = select(c.day, c.is_workday, c.note).order_by(c.day)
        if date_from is not None:
            query = query.where(c.day >= date_from)
        if date_to is not None:
            query = query.where(c.day <= date_to)
        return [CalendarOverride(r[0], bool(r[1]), r[2]) for r in self._conn.execute(query)]

    def set_calendar_override(self, day: date, is_workday: bool, note: str) -> None:
        self._conn.execute(calendar_overrides.delete().where(calendar_overrides.c.day == day))
        self._conn.execute(insert(calendar_overrides).values(day=day, is_workday=is_workday,
                                                             note=note))

    def add_maintenance_window(self, starts_at: datetime, ends_at: datetime, note: str,
                               at: datetime) -> int:
        value = self._conn.execute(insert(maintenance_windows).values(
            starts_at=starts_at, ends_at=ends_at, note=note, created_at=at)
            .returning(maintenance_windows.c.window_id)).scalar()
        return int(value or 0)

    def maintenance_windows(self, ending_after: datetime) -> list[Window]:
        """The windows that end after ``ending_after``, by start."""
        rows = self._conn.execute(select(maintenance_windows).where(
            maintenance_windows.c.ends_at > ending_after)
            .order_by(maintenance_windows.c.starts_at))
        return [Window(r.window_id, r.starts_at, r.ends_at, r.note) for r in rows]


class JobLeaseRepository:
    """All SQL of ``job_runs``: one row per (job, run key); inserting it is the lease, and it
    expires if its owner dies (:mod:`autosettle.services.leases` runs the protocol)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def _insert_new(self, values: dict[str, Any]) -> bool:
        module: Any = postgresql if self._conn.dialect.name == "postgresql" else sqlite
        # RETURNING, not rowcount: psycopg reports -1 for a single INSERT .. ON CONFLICT
        result = self._conn.execute(module.insert(job_runs).values(**values)
                                    .on_conflict_do_nothing(index_elements=_RUN_KEY)
                                    .returning(job_runs.c.job_name))
        return result.first() is not None

    @staticmethod
    def _key(job_name: str, run_key: str) -> list[Any]:
        return [job_runs.c.job_name == job_name, job_runs.c.run_key == run_key]

    def get(self, job_name: str, run_key: str) -> JobRun | None:
        row = self._conn.execute(select(job_runs).where(*self._key(job_name, run_key))).first()
        return _job_run(row) if row else None

    def insert(self, job_name: str, run_key: str, owner: str, at: datetime,
               expires_at: datetime) -> bool:
        """Take a new lease; False when the run exists already (someone has or had it)."""
        return self._insert_new({"job_name": job_name, "run_key": run_key,
                                 "status": JobStatus.RUNNING, "owner": owner,
                                 "lease_expires_at": expires_at, "started_at": at})

    def take_over(self, job_name: str, run_key: str, owner: str, at: datetime,
                  expires_at: datetime) -> bool:
        """Steal an expired lease of an unfinished run (its owner died)."""
        result = self._conn.execute(update(job_runs).where(
            *self._key(job_name, run_key), job_runs.c.status != JobStatus.DONE,
            job_runs.c.lease_expires_at < at,
        ).values(owner=owner, lease_expires_at=expires_at, status=JobStatus.RUNNING,
                 started_at=at))
        return (result.rowcount or 0) == 1

    def renew(self, job_name: str, run_key: str, owner: str, expires_at: datetime) -> bool:
        """Extend ``owner``'s running lease; False when it is no longer theirs."""
        result = self._conn.execute(update(job_runs).where(
            *self._key(job_name, run_key), job_runs.c.owner == owner,
            job_runs.c.status == JobStatus.RUNNING).values(lease_expires_at=expires_at))
        return (result.rowcount or 0) == 1

    def finish(self, job_name: str, run_key: str, owner: str, status: JobStatus,
               at: datetime, counts: Mapping[str, Any], error: str | None,
               retry_at: datetime | None) -> bool:
        """Record the end of ``owner``'s run; False when the lease was taken over."""
        values: dict[str, Any] = {
            "status": status, "finished_at": at, "error": error,
            "counts": json.dumps(dict(counts), default=str, sort_keys=True)}
        if retry_at is not None:
            values["lease_expires_at"] = retry_at
        result = self._conn.execute(update(job_runs).where(
            *self._key(job_name, run_key), job_runs.c.owner == owner).values(**values))
        return (result.rowcount or 0) == 1

    def defer(self, job_name: str, run_key: str, at: datetime, until: datetime,
              reason: str) -> bool:
        """Record a run as deferred until ``until`` (a new row, or an existing one that is
        neither done nor held by a live owner); False when nothing changed."""
        values = {"status": JobStatus.DEFERRED, "owner": "deferred",
                  "lease_expires_at": until, "error": reason}
        if self._insert_new({"job_name": job_name, "run_key": run_key, "started_at": at,
                             **values}):
            return True
        c = job_runs.c
        result = self._conn.execute(update(job_runs).where(
            *self._key(job_name, run_key), c.status != JobStatus.DONE,
            (c.status != JobStatus.RUNNING) | (c.lease_expires_at < at)).values(**values))
        return (result.rowcount or 0) == 1

    def expired_running(self, at: datetime) -> list[JobRun]:
        """``running`` runs whose lease expired before ``at``."""
        c = job_runs.c
        rows = self._conn.execute(select(job_runs).where(
            c.status == JobStatus.RUNNING, c.lease_expires_at < at))
        return [_job_run(r) for r in rows]

    def abandon(self, run: JobRun, note: str) -> bool:
        """Mark ``run`` abandoned if it still has the owner and lease it was read with."""
        c = job_runs.c
        result = self._conn.execute(update(job_runs).where(
            *self._key(run.job_name, run.run_key), c.status == JobStatus.RUNNING,
            c.owner == run.owner, c.lease_expires_at == run.lease_expires_at,
        ).values(status=JobStatus.ABANDONED, error=note))
        return (result.rowcount or 0) == 1

    def supersede(self, job_name: str, before_key: str, at: datetime, note: str) -> int:
        """Close the job's ``deferred`` runs keyed before ``before_key``; how many."""
        c = job_runs.c
        result = self._conn.execute(update(job_runs).where(
            c.job_name == job_name, c.status == JobStatus.DEFERRED, c.run_key < before_key,
        ).values(status=JobStatus.SUPERSEDED, finished_at=at, error=note))
        return result.rowcount or 0

    def last_done_key(self, job_name: str) -> str | None:
        """The greatest run key of the job's finished runs."""
        value = self._conn.execute(select(func.max(job_runs.c.run_key)).where(
            job_runs.c.job_name == job_name, job_runs.c.status == JobStatus.DONE)).scalar()
        return str(value) if value is not None else None

    def recent(self, job_name: str | None, limit: int) -> list[JobRun]:
        """The latest runs, newest first (optionally of one job)."""
        query = (select(job_runs)
                 .order_by(job_runs.c.started_at.desc(), job_runs.c.run_key.desc()).limit(limit))
        if job_name is not None:
            query = query.where(job_runs.c.job_name == job_name)
        return [_job_run(r) for r in self._conn.execute(query)]


_RUN_KEY = ["job_name", "run_key"]


def _job_run(row: Row[Any]) -> JobRun:
    m = row._mapping
    return JobRun(job_name=m["job_name"], run_key=m["run_key"], status=JobStatus(m["status"]),
                  owner=m["owner"], lease_expires_at=m["lease_expires_at"],
                  started_at=m["started_at"], finished_at=m["finished_at"],
                  counts=json.loads(m["counts"]) if m["counts"] else {}, error=m["error"])
