"""Printer profiles and the print queue (tables ``printer_profiles`` and ``print_jobs``).

The queue is set-based where it can be: the follower reads a terminal's new transactions
that have no job yet in one statement (``NOT EXISTS``), jobs are inserted with
``ON CONFLICT DO NOTHING`` on their key (idempotent, also between two instances), and a
job is claimed by one conditional ``UPDATE`` (only one worker wins it).
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, delete, exists, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from autosettle.domain.errors import AlreadyExists
from autosettle.domain.payment_records import TransactionRecord
from autosettle.domain.print_records import (
    JobKind,
    JobState,
    NewPrintJob,
    PrinterProfile,
    PrintJob,
)
from autosettle.domain.terminal_records import SettlementRecord
from autosettle.domain.transactions import TxnStatus, TxnType
from autosettle.store.payments import _record as transaction_from_row
from autosettle.store.tables import (
    print_jobs,
    printer_profiles,
    terminal_settlements,
    transactions,
)

_PROFILE_FIELDS = tuple(f.name for f in fields(PrinterProfile))
_JOB_FIELDS = tuple(f.name for f in fields(PrintJob))
_SETTLEMENT_FIELDS = tuple(f.name for f in fields(SettlementRecord))
JOB_ERROR_CHARS_MAX = 200


def _profile(row: Row[Any]) -> PrinterProfile:
    m = row._mapping
    return PrinterProfile(**{name: m[name] for name in _PROFILE_FIELDS})


def _job(row: Row[Any]) -> PrintJob:
    m = row._mapping
    values = {name: m[name] for name in _JOB_FIELDS}
    values["kind"] = JobKind(values["kind"])
    values["state"] = JobState(values["state"])
    return PrintJob(**values)


class PrintingRepository:
    """Printer profiles, the follower's reads and the print queue."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    # -- profiles ---------------------------------------------------------------------------
    def add_profile(self, profile: PrinterProfile) -> None:
        try:
            self._conn.execute(insert(printer_profiles).values(
                **{name: getattr(profile, name) for name in _PROFILE_FIELDS}))
        except IntegrityError as exc:
            raise AlreadyExists(f"printer {profile.name} exists, or terminal "
                                f"{profile.terminal_id} has a printer already") from exc

    def update_profile(self, name: str, **values: Any) -> None:
        self._conn.execute(update(printer_profiles)
                           .where(printer_profiles.c.name == name).values(**values))

    def delete_profile(self, name: str) -> None:
        self._conn.execute(delete(printer_profiles).where(printer_profiles.c.name == name))

    def get_profile(self, name: str) -> PrinterProfile | None:
        row = self._conn.execute(select(printer_profiles)
                                 .where(printer_profiles.c.name == name)).first()
        return _profile(row) if row else None

    def profile_of_terminal(self, merchant_id: str, terminal_id: str) -> PrinterProfile | None:
        row = self._conn.execute(select(printer_profiles).where(
            printer_profiles.c.merchant_id == merchant_id,
            printer_profiles.c.terminal_id == terminal_id)).first()
        return _profile(row) if row else None

    def profiles(self, merchant_id: str | None = None, enabled_only: bool = False,
                 limit: int = 1000) -> list[PrinterProfile]:
        query = select(printer_profiles).order_by(printer_profiles.c.name).limit(limit)
        if merchant_id is not None:
            query = query.where(printer_profiles.c.merchant_id == merchant_id)
        if enabled_only:
            query = query.where(printer_profiles.c.enabled.is_(True))
        return [_profile(r) for r in self._conn.execute(query)]

    # -- what the follower reads ----------------------------------------------------------
    def unprinted_transactions(self, merchant_id: str, terminal_id: str, since: datetime,
                               limit: int) -> list[TransactionRecord]:
        """Answered transactions of a terminal created since ``since`` that have no
        original (non-duplicate) print job yet, oldest first."""
        has_job = exists().where(print_jobs.c.merchant_id == transactions.c.merchant_id,
                                 print_jobs.c.txn_id == transactions.c.txn_id,
                                 print_jobs.c.duplicate.is_(False))
        rows = self._conn.execute(select(transactions).where(
            transactions.c.merchant_id == merchant_id,
            transactions.c.terminal_id == terminal_id,
            transactions.c.created_at >= since,
            transactions.c.status.in_([TxnStatus.APPROVED.value, TxnStatus.DECLINED.value,
                                       TxnStatus.VOIDED.value]),
            transactions.c.txn_type != TxnType.BALANCE_INQUIRY.value,
            ~has_job).order_by(transactions.c.created_at, transactions.c.txn_id).limit(limit))
        return [transaction_from_row(r) for r in rows]

    def pending_since(self, merchant_id: str, terminal_id: str, since: datetime) -> datetime | None:
        """The creation time of the terminal's oldest transaction still unanswered."""
        return self._conn.execute(select(func.min(transactions.c.created_at)).where(
            transactions.c.merchant_id == merchant_id,
            transactions.c.terminal_id == terminal_id,
            transactions.c.created_at >= since,
            transactions.c.status == TxnStatus.PENDING.value)).scalar()

    def unprinted_settlements(self, merchant_id: str, terminal_id: str, since: datetime,
                              limit: int) -> list[SettlementRecord]:
        has_job = exists().where(print_jobs.c.merchant_id == terminal_settlements.c.merchant_id,
                                 print_jobs.c.terminal_id == terminal_settlements.c.terminal_id,
                                 print_jobs.c.batch_no == terminal_settlements.c.batch_no,
                                 print_jobs.c.kind == JobKind.SETTLEMENT.value,
                                 print_jobs.c.duplicate.is_(False))
        rows = self._conn.execute(select(terminal_settlements).where(
            terminal_settlements.c.merchant_id == merchant_id,
            terminal_settlements.c.terminal_id == terminal_id,
            terminal_settlements.c.settled_at >= since, ~has_job)
            .order_by(terminal_settlements.c.settled_at).limit(limit))
        return [SettlementRecord(**{n: r._mapping[n] for n in _SETTLEMENT_FIELDS})
                for r in rows]

    def batch_type_totals(self, merchant_id: str, terminal_id: str,
                          batch_no: str) -> list[tuple[str, int, int]]:
        """(type, count, amount) of the batch's approved transactions, per type."""
        rows = self._conn.execute(
            select(transactions.c.txn_type, func.count(), func.sum(transactions.c.amount_minor))
            .where(transactions.c.merchant_id == merchant_id,
                   transactions.c.terminal_id == terminal_id,
                   transactions.c.batch_no == batch_no,
                   transactions.c.status == TxnStatus.APPROVED.value,
                   transactions.c.txn_type != TxnType.BALANCE_INQUIRY.value)
            .group_by(transactions.c.txn_type))
        return [(str(t), int(c), int(s or 0)) for t, c, s in rows]

    # -- the queue ---------------------------------------------------------------------------
    def enqueue(self, job: NewPrintJob, at: datetime) -> bool:
        """Insert the job unless its key exists; True when inserted."""
        module: Any = postgresql if self._conn.dialect.name == "postgresql" else sqlite
        values = {name: getattr(job, name) for name in NewPrintJob.__dataclass_fields__}
        values.update(kind=job.kind.value, state=JobState.PENDING.value, attempts=0,
                      next_attempt_at=at, created_at=at)
        result = self._conn.execute(module.insert(print_jobs).values(**values)
                                    .on_conflict_do_nothing(index_elements=["job_key"])
                                    .returning(print_jobs.c.job_id))
        return result.first() is not None

    def get_job(self, job_id: int) -> PrintJob | None:
        row = self._conn.execute(select(print_jobs).where(print_jobs.c.job_id == job_id)).first()
        return _job(row) if row else None

    def job_by_key(self, job_key: str) -> PrintJob | None:
        row = self._conn.execute(select(print_jobs)
                                 .where(print_jobs.c.job_key == job_key)).first()
        return _job(row) if row else None

    def due_jobs(self, now: datetime, limit: int) -> list[PrintJob]:
        rows = self._conn.execute(select(print_jobs).where(
            print_jobs.c.state == JobState.PENDING.value,
            print_jobs.c.next_attempt_at <= now).order_by(print_jobs.c.job_id).limit(limit))
        return [_job(r) for r in rows]

    def oldest_pending(self, printer_names: list[str]) -> dict[str, int]:
        """The id of each printer's oldest pending job (due or not)."""
        if not printer_names:
            return {}
        rows = self._conn.execute(
            select(print_jobs.c.printer_name, func.min(print_jobs.c.job_id))
            .where(print_jobs.c.state == JobState.PENDING.value,
                   print_jobs.c.printer_name.in_(printer_names))
            .group_by(print_jobs.c.printer_name))
        return {str(name): int(job_id) for name, job_id in rows}

    def claim(self, job_id: int, now: datetime, lease_until: datetime) -> bool:
        """Take a due job for one attempt: only one worker's claim succeeds. The job's next
        attempt moves to ``lease_until``, so a worker that dies mid-print leaves it due
        again then."""
        result = self._conn.execute(update(print_jobs).where(
            print_jobs.c.job_id == job_id, print_jobs.c.state == JobState.PENDING.value,
            print_jobs.c.next_attempt_at <= now)
            .values(attempts=print_jobs.c.attempts + 1, next_attempt_at=lease_until))
        return result.rowcount == 1

    def mark_printed(self, job_id: int, at: datetime) -> None:
        self._conn.execute(update(print_jobs).where(
            print_jobs.c.job_id == job_id, print_jobs.c.state == JobState.PENDING.value)
            .values(state=JobState.PRINTED.value, printed_at=at, last_error=None))

    def mark_failed(self, job_id: int, next_attempt_at: datetime, error: str) -> None:
        self._conn.execute(update(print_jobs).where(
            print_jobs.c.job_id == job_id, print_jobs.c.state == JobState.PENDING.value)
            .values(next_attempt_at=next_attempt_at, last_error=error[:JOB_ERROR_CHARS_MAX]))

    def cancel(self, job_id: int) -> bool:
        result = self._conn.execute(update(print_jobs).where(
            print_jobs.c.job_id == job_id, print_jobs.c.state == JobState.PENDING.value)
            .values(state=JobState.CANCELLED.value))
        return result.rowcount == 1

    def cancel_printer_jobs(self, printer_name: str) -> int:
        result = self._conn.execute(update(print_jobs).where(
            print_jobs.c.printer_name == printer_name,
            print_jobs.c.state == JobState.PENDING.value)
            .values(state=JobState.CANCELLED.value))
        return int(result.rowcount)

    def jobs(self, printer_name: str | None = None, merchant_id: str | None = None,
             terminal_id: str | None = None, state: JobState | None = None,
             limit: int = 50) -> list[PrintJob]:
        """Newest first."""
        query = select(print_jobs).order_by(print_jobs.c.job_id.desc()).limit(limit)
        conditions = []
        if printer_name is not None:
            conditions.append(print_jobs.c.printer_name == printer_name)
        if merchant_id is not None:
            conditions.append(print_jobs.c.merchant_id == merchant_id)
        if terminal_id is not None:
            conditions.append(print_jobs.c.terminal_id == terminal_id)
        if state is not None:
            conditions.append(print_jobs.c.state == state.value)
        if conditions:
            query = query.where(and_(*conditions))
        return [_job(r) for r in self._conn.execute(query)]

    def last_slip(self, printer_name: str) -> PrintJob | None:
        """The printer's newest receipt, decline or settlement job (not a reprint)."""
        row = self._conn.execute(select(print_jobs).where(
            print_jobs.c.printer_name == printer_name,
            print_jobs.c.kind != JobKind.TEST.value,
            print_jobs.c.duplicate.is_(False)).order_by(print_jobs.c.job_id.desc())
            .limit(1)).first()
        return _job(row) if row else None

    def original_jobs(self, merchant_id: str, txn_id: str) -> list[PrintJob]:
        rows = self._conn.execute(select(print_jobs).where(
            print_jobs.c.merchant_id == merchant_id, print_jobs.c.txn_id == txn_id,
            print_jobs.c.duplicate.is_(False)).order_by(print_jobs.c.job_id))
        return [_job(r) for r in rows]

    def count_reprints(self, merchant_id: str, txn_id: str | None, batch_no: str | None) -> int:
        query = select(func.count()).select_from(print_jobs).where(
            print_jobs.c.merchant_id == merchant_id, print_jobs.c.duplicate.is_(True))
        if txn_id is not None:
            query = query.where(print_jobs.c.txn_id == txn_id)
        if batch_no is not None:
            query = query.where(print_jobs.c.batch_no == batch_no)
        return int(self._conn.execute(query).scalar() or 0)
