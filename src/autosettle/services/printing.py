"""Printers and the print queue: profiles, the follower, delivery, reprints, diagnosis.

A payment never waits for a printer. The print queue is fed *after* the fact:

* :func:`follow` (a background job) reads, per printer profile, the terminal's answered
  transactions and batch closes that have no print job yet and enqueues their slips:
  one job per copy of an approved transaction, one decline slip, one settlement slip.
  Each job has a key (``txn:<merchant>:<txn>:<copy>`` ...) that is unique in the table,
  so following twice, or from two instances, enqueues nothing twice. The profile's
  cursor only bounds the scan (it re-reads :data:`FOLLOW_OVERLAP` back, for
  transactions answered late).
* :func:`deliver` (a background job) prints due jobs, oldest first, per printer: claim
  (one conditional update; the claim pushes the next attempt out by a lease, so a worker
  that dies mid-print leaves the job due again), status query, send, status query
  again; only then is the job ``printed``. Any fault (unreachable, paper end, cover open,
  the connection dropped mid-slip) leaves it pending with the next attempt after a
  backoff (5 s doubling to 5 min), and the rest of that printer's jobs wait for the next
  round. Jobs live in the database: they survive a restart.
* :func:`reprint` enqueues duplicates (重打印 DUPLICATE) of the last slip or of a slip found
  by trace (凭证号) or RRN (参考号).

Who may do what: operators add, change and remove printers; a merchant key sees, checks
and reprints its own merchant's printers; a terminal key its own terminal's.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from autosettle.domain.errors import ConflictError, NotFoundError, ValidationError, require
from autosettle.domain.payment_records import TransactionQuery, TransactionRecord
from autosettle.domain.print_records import (
    JobKind,
    JobState,
    NewPrintJob,
    PrinterProfile,
    PrintJob,
)
from autosettle.printing import devices, escpos_out, layout, slips
from autosettle.printing.devices import Interface, PrinterError
from autosettle.printing.diagnosis import Diagnosis, PrinterTarget, diagnose
from autosettle.services import audit
from autosettle.services.access import Area, require_read
from autosettle.services.context import SYSTEM, Principal, ServiceContext
from autosettle.services.receipts import printable, receipt_data, settlement_data
from autosettle.store.uow import UnitOfWork

log = logging.getLogger(__name__)

NAME_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
COPIES_MAX: Final = 3
FOLLOW_OVERLAP: Final = timedelta(minutes=10)
"""How far back the follower re-reads: a transaction answered this long after it was
created still gets its slip (a channel answers within its timeout, at most 2 minutes)."""
FOLLOW_BATCH_MAX: Final = 500
DELIVER_BATCH_MAX: Final = 100
CLAIM_LEASE: Final = timedelta(seconds=60)
BACKOFF_BASE_S: Final = 5
BACKOFF_MAX_S: Final = 300
STUCK_ATTEMPTS: Final = 3
STUCK_AFTER: Final = timedelta(minutes=2)
"""A pending job this old, or tried this often, is shown to the operator as stuck."""
JOBS_PAGE_MAX: Final = 500


@dataclass(frozen=True, slots=True)
class NewPrinter:
    """A printer profile to add."""

    name: str
    merchant_id: str
    terminal_id: str
    interface: str
    address: str
    width_cols: int = layout.WIDTH_58MM_COLS
    encoding: str = "gb18030"
    copies: int = 2
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class PrinterChanges:
    """Fields to change on a profile (None: unchanged)."""

    interface: str | None = None
    address: str | None = None
    width_cols: int | None = None
    encoding: str | None = None
    copies: int | None = None
    enabled: bool | None = None


@dataclass(frozen=True, slots=True)
class DeliveryRun:
    """What one :func:`deliver` round did."""

    printed: int = 0
    failed: int = 0
    waiting: int = 0


def _check_settings(interface: str, address: str, width_cols: int, encoding: str,
                    copies: int) -> None:
    try:
        devices.parse_address(interface, address)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    if width_cols not in layout.WIDTHS_COLS:
        raise ValidationError(f"width must be {layout.WIDTH_58MM_COLS} (58 mm) or "
                              f"{layout.WIDTH_80MM_COLS} (80 mm) columns")
    if encoding not in escpos_out.ENCODINGS:
        raise ValidationError(f"encoding must be one of {', '.join(escpos_out.ENCODINGS)}")
    if not 1 <= copies <= COPIES_MAX:
        raise ValidationError(f"copies must be 1..{COPIES_MAX} (merchant, cardholder, bank)")


def add_printer(ctx: ServiceContext, who: Principal, new: NewPrinter) -> PrinterProfile:
    """Add a printer for a terminal (operators only); it prints what happens from now on."""
    who.require_operator()
    if not NAME_PATTERN.match(new.name):
        raise ValidationError("a printer name is 1-40 letters, digits, '.', '_' or '-'")
    _check_settings(new.interface, new.address, new.width_cols, new.encoding, new.copies)
    now = ctx.now()
    profile = PrinterProfile(
        name=new.name, merchant_id=new.merchant_id, terminal_id=new.terminal_id,
        interface=new.interface, address=new.address.strip(), width_cols=new.width_cols,
        encoding=new.encoding, copies=new.copies, enabled=new.enabled, txn_cursor_at=now,
        settlement_cursor_at=now, created_at=now, updated_at=now)
    with ctx.db.unit_of_work() as uow:
        if uow.terminals.get(new.merchant_id, new.terminal_id) is None:
            raise NotFoundError(f"terminal {new.terminal_id} of merchant {new.merchant_id} "
                                "not found")
        uow.printing.add_profile(profile)
        audit.record(uow, who, "printer.add", f"printer:{new.name}", now,
                     detail={"terminal": f"{new.merchant_id}/{new.terminal_id}",
                             "interface": new.interface, "address": new.address})
    return profile


def update_printer(ctx: ServiceContext, who: Principal, name: str,
                   changes: PrinterChanges) -> PrinterProfile:
    """Change a printer's settings (operators only)."""
    who.require_operator()
    with ctx.db.unit_of_work() as uow:
        current = _profile(uow, who, name)
        merged = PrinterProfile(
            **{**{f: getattr(current, f) for f in PrinterProfile.__dataclass_fields__},
               **{f: getattr(changes, f) for f in PrinterChanges.__dataclass_fields__
                  if getattr(changes, f) is not None}})
        _check_settings(merged.interface, merged.address, merged.width_cols, merged.encoding,
                        merged.copies)
        now = ctx.now()
        merged = replace(merged, address=merged.address.strip(), updated_at=now)
        uow.printing.update_profile(
            name, interface=merged.interface, address=merged.address,
            width_cols=merged.width_cols, encoding=merged.encoding, copies=merged.copies,
            enabled=merged.enabled, updated_at=now)
        audit.record(uow, who, "printer.update", f"printer:{name}", now,
                     detail={"interface": merged.interface, "address": merged.address,
                             "enabled": merged.enabled})
    return merged


def remove_printer(ctx: ServiceContext, who: Principal, name: str) -> int:
    """Remove a printer (operators only); its pending jobs are cancelled. Returns how many."""
    who.require_operator()
    with ctx.db.unit_of_work() as uow:
        profile = _profile(uow, who, name)
        cancelled = uow.printing.cancel_printer_jobs(name)
        uow.printing.delete_profile(name)
        audit.record(uow, who, "printer.remove", f"printer:{name}", ctx.now(),
                     detail={"terminal": f"{profile.merchant_id}/{profile.terminal_id}",
                             "cancelled_jobs": cancelled})
    return cancelled


def _visible(who: Principal, profile: PrinterProfile) -> bool:
    if not who.can_see_merchant(profile.merchant_id):
        return False
    return who.terminal_id is None or who.terminal_id == profile.terminal_id


def _profile(uow: UnitOfWork, who: Principal, name: str) -> PrinterProfile:
    profile = uow.printing.get_profile(name)
    if profile is None or not _visible(who, profile):
        raise NotFoundError(f"printer {name} not found")
    return profile


def get_printer(ctx: ServiceContext, who: Principal, name: str) -> PrinterProfile:
    """One printer the caller may see (else ``not_found``)."""
    require_read(who, Area.TERMINALS)
    with ctx.db.unit_of_work() as uow:
        return _profile(uow, who, name)


def list_printers(ctx: ServiceContext, who: Principal,
                  merchant_id: str | None = None) -> list[PrinterProfile]:
    """The printers the caller may see, by name."""
    require_read(who, Area.TERMINALS, merchant_id)
    scope = merchant_id if who.is_operator else who.merchant_id
    with ctx.db.unit_of_work() as uow:
        found = uow.printing.profiles(scope)
    return [p for p in found if _visible(who, p)]


def check(ctx: ServiceContext, who: Principal, name: str,
          print_test_page: bool = True) -> Diagnosis:
    """Walk the document's troubleshooting for a printer (printing/diagnosis.py)."""
    profile = get_printer(ctx, who, name)
    return diagnose(_target(profile), ctx.now(), print_test_page,
                    ctx.settings.printer_timeout_s)


def _target(profile: PrinterProfile) -> PrinterTarget:
    return PrinterTarget(profile.name, profile.interface, profile.address, profile.width_cols,
                         profile.encoding)


# -- the follower ------------------------------------------------------------------------------

def _copies(count: int) -> tuple[slips.CopyKind, ...]:
    return slips.COPY_ORDER[:count]


def _receipt_jobs(profile: PrinterProfile, data: slips.ReceiptData, duplicate: bool = False,
                  reprint_no: int = 0) -> list[NewPrintJob]:
    prefix = f"reprint{reprint_no}" if duplicate else "txn"
    copies: tuple[slips.CopyKind | None, ...] = (
        _copies(profile.copies) if data.approved else (None,))
    return [NewPrintJob(
        job_key=f"{prefix}:{data.merchant_id}:{data.reference}:"
                f"{copy.value if copy else 'decline'}",
        printer_name=profile.name, merchant_id=data.merchant_id, terminal_id=data.terminal_id,
        kind=JobKind.RECEIPT if copy else JobKind.DECLINE, content=data.to_json(),
        copy=copy.value if copy else None, duplicate=duplicate, txn_id=data.reference,
        batch_no=data.batch_no, stan=data.trace, rrn=data.rrn) for copy in copies]


def _settlement_job(profile: PrinterProfile, data: slips.SettlementData,
                    duplicate: bool = False, reprint_no: int = 0) -> NewPrintJob:
    prefix = f"reprint{reprint_no}" if duplicate else "settle"
    return NewPrintJob(
        job_key=f"{prefix}:{data.merchant_id}:{data.terminal_id}:{data.batch_no}",
        printer_name=profile.name, merchant_id=data.merchant_id, terminal_id=data.terminal_id,
        kind=JobKind.SETTLEMENT, content=data.to_json(), duplicate=duplicate,
        batch_no=data.batch_no)


def follow(ctx: ServiceContext) -> int:
    """Enqueue the slips of every printer's new transactions and batch closes; returns
    how many jobs were enqueued (idempotent: a second call enqueues nothing)."""
    with ctx.db.unit_of_work() as uow:
        profiles = uow.printing.profiles(enabled_only=True)
    return sum(_follow_one(ctx, profile) for profile in profiles)


def _follow_one(ctx: ServiceContext, profile: PrinterProfile) -> int:
    now = ctx.now()
    enqueued = 0
    with ctx.db.unit_of_work() as uow:
        records = uow.printing.unprinted_transactions(
            profile.merchant_id, profile.terminal_id, profile.txn_cursor_at - FOLLOW_OVERLAP,
            FOLLOW_BATCH_MAX)
        for record in records:
            for job in _receipt_jobs(profile, receipt_data(uow, record)):
                enqueued += uow.printing.enqueue(job, now)
        closes = uow.printing.unprinted_settlements(
            profile.merchant_id, profile.terminal_id,
            profile.settlement_cursor_at - FOLLOW_OVERLAP, FOLLOW_BATCH_MAX)
        for close in closes:
            enqueued += uow.printing.enqueue(
                _settlement_job(profile, settlement_data(uow, close)), now)
        txn_cursor = max([profile.txn_cursor_at, *(r.created_at for r in records)])
        settle_cursor = max([profile.settlement_cursor_at, *(c.settled_at for c in closes)])
        if (txn_cursor, settle_cursor) != (profile.txn_cursor_at, profile.settlement_cursor_at):
            uow.printing.update_profile(profile.name, txn_cursor_at=txn_cursor,
                                        settlement_cursor_at=settle_cursor)
    return enqueued


# -- delivery ----------------------------------------------------------------------------------

def backoff(attempts: int) -> timedelta:
    """Wait before the next attempt after ``attempts`` failed ones: 5 s doubling, 5 min cap.

    >>> [int(backoff(n).total_seconds()) for n in (1, 2, 3, 7, 20)]
    [5, 10, 20, 300, 300]
    """
    exponent = min(max(attempts - 1, 0), 16)
    return timedelta(seconds=min(BACKOFF_BASE_S * 2 ** exponent, BACKOFF_MAX_S))


def job_bytes(profile: PrinterProfile, job: PrintJob) -> bytes:
    """The ESC/POS bytes of a job on its printer."""
    data = slips.slip_data_from_json(job.content)
    copy = slips.CopyKind(job.copy) if job.copy else None
    slip = slips.render(data, profile.width_cols, copy, job.duplicate,
                        escpos_out.is_chinese(profile.encoding))
    return escpos_out.to_escpos(slip, profile.encoding)


def job_text(job: PrintJob, width_cols: int = layout.WIDTH_58MM_COLS) -> str:
    """A job's slip as plain text (the console's view of what was printed)."""
    data = slips.slip_data_from_json(job.content)
    copy = slips.CopyKind(job.copy) if job.copy else None
    return layout.as_text(slips.render(data, width_cols, copy, job.duplicate))


def deliver(ctx: ServiceContext) -> DeliveryRun:
    """Print due jobs, oldest first, printer by printer (see the module docstring)."""
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        due = uow.printing.due_jobs(now, DELIVER_BATCH_MAX)
        names = sorted({j.printer_name for j in due})
        profiles = {name: uow.printing.get_profile(name) for name in names}
        oldest = uow.printing.oldest_pending(names)
    by_printer: dict[str, list[PrintJob]] = {}
    for job in due:
        by_printer.setdefault(job.printer_name, []).append(job)
    run = DeliveryRun()
    for name, jobs in by_printer.items():
        profile = profiles.get(name)
        if profile is None:
            _cancel(ctx, jobs)
            continue
        if not profile.enabled or oldest.get(name) != jobs[0].job_id:
            # Disabled, or an older slip is waiting out its backoff: slips print in order.
            run = replace(run, waiting=run.waiting + len(jobs))
            continue
        run = _deliver_to(ctx, profile, jobs, run)
    return run


def _cancel(ctx: ServiceContext, jobs: Iterable[PrintJob]) -> None:
    with ctx.db.unit_of_work() as uow:
        for job in jobs:
            uow.printing.cancel(job.job_id)


def _deliver_to(ctx: ServiceContext, profile: PrinterProfile, jobs: list[PrintJob],
                run: DeliveryRun) -> DeliveryRun:
    connection: devices.Connection | None = None
    try:
        for index, job in enumerate(jobs):
            now = ctx.now()
            with ctx.db.unit_of_work() as uow:
                if not uow.printing.claim(job.job_id, now, now + CLAIM_LEASE):
                    continue  # another worker has it, or it was cancelled
            try:
                if connection is None:
                    connection = devices.connect(
                        devices.parse_address(profile.interface, profile.address),
                        ctx.settings.printer_timeout_s)
                _print_one(connection, profile, job)
            except (PrinterError, ValueError) as exc:
                detail = str(exc)
                with ctx.db.unit_of_work() as uow:
                    uow.printing.mark_failed(job.job_id, ctx.now() + backoff(job.attempts + 1),
                                             detail)
                log.warning("printer %s: job %d not printed (%s); retry in %s", profile.name,
                            job.job_id, detail, backoff(job.attempts + 1))
                return replace(run, failed=run.failed + 1,
                               waiting=run.waiting + len(jobs) - index - 1)
            with ctx.db.unit_of_work() as uow:
                uow.printing.mark_printed(job.job_id, ctx.now())
            run = replace(run, printed=run.printed + 1)
    finally:
        if connection is not None:
            connection.close()
    return run


def _print_one(connection: devices.Connection, profile: PrinterProfile, job: PrintJob) -> None:
    """Status, slip, status: the job counts as printed only if the printer is still ready
    after the slip (a connection dropped mid-slip, or paper that ran out, is a retry)."""
    fault = connection.status().fault()
    if fault is not None:
        raise PrinterError(fault, "before printing")
    connection.send(job_bytes(profile, job))
    fault = connection.status().fault()
    if fault is not None:
        raise PrinterError(fault, "after printing")


# -- what operators and cashiers see and do ---------------------------------------------------

def is_stuck(job: PrintJob, now: datetime) -> bool:
    """A pending job tried :data:`STUCK_ATTEMPTS` times, or older than :data:`STUCK_AFTER`."""
    return job.state is JobState.PENDING and (
        job.attempts >= STUCK_ATTEMPTS or now - job.created_at >= STUCK_AFTER)


def list_jobs(ctx: ServiceContext, who: Principal, printer_name: str | None = None,
              state: str | None = None, stuck_only: bool = False,
              limit: int = 50) -> list[PrintJob]:
    """Print jobs the caller may see, newest first; ``stuck_only``: pending ones that are
    not getting printed."""
    if not 1 <= limit <= JOBS_PAGE_MAX:
        raise ValidationError(f"limit must be 1..{JOBS_PAGE_MAX}")
    try:
        wanted = JobState(state) if state else None
    except ValueError:
        raise ValidationError(f"state must be one of {', '.join(s.value for s in JobState)}"
                              ) from None
    require_read(who, Area.TERMINALS)
    with ctx.db.unit_of_work() as uow:
        if printer_name is not None:
            _profile(uow, who, printer_name)
        found = uow.printing.jobs(
            printer_name, None if who.is_operator else who.merchant_id, who.terminal_id,
            JobState.PENDING if stuck_only else wanted, limit)
    if stuck_only:
        now = ctx.now()
        found = [job for job in found if is_stuck(job, now)]
    return found


def cancel_job(ctx: ServiceContext, who: Principal, job_id: int) -> PrintJob:
    """Cancel a pending job (operators only): the slip will not be printed."""
    who.require_operator()
    with ctx.db.unit_of_work() as uow:
        job = uow.printing.get_job(job_id)
        if job is None:
            raise NotFoundError(f"print job {job_id} not found")
        if not uow.printing.cancel(job_id):
            raise ConflictError(f"print job {job_id} is {job.state.value}, not pending")
        found = uow.printing.get_job(job_id)
    require(found is not None, "a cancelled job reads back")
    return found  # type: ignore[return-value]


def reprint(ctx: ServiceContext, who: Principal, name: str, *, trace: str | None = None,
            rrn: str | None = None, txn_id: str | None = None) -> list[PrintJob]:
    """Enqueue a duplicate (重打印 DUPLICATE) of a slip on printer ``name``.

    With no trace, RRN or transaction id: the printer's last slip (receipt, decline or
    settlement). Otherwise the transaction of this printer's terminal with that trace
    (凭证号, in any batch: the newest), RRN (参考号) or id. Returns the new jobs.
    """
    given = [v for v in (trace, rrn, txn_id) if v]
    if len(given) > 1:
        raise ValidationError("give one of trace, rrn or txn_id (or none for the last slip)")
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        profile = _profile(uow, who, name)
        if not given:
            last = uow.printing.last_slip(name)
            if last is None:
                raise NotFoundError(f"printer {name} has printed nothing yet")
            jobs = _duplicate_of(uow, profile, last)
        else:
            record = _find_transaction(uow, profile, trace, rrn, txn_id)
            n = uow.printing.count_reprints(profile.merchant_id, record.txn_id, None) + 1
            jobs = _receipt_jobs(profile, receipt_data(uow, record), True, n)
        for job in jobs:
            uow.printing.enqueue(job, now)
        created = [uow.printing.job_by_key(job.job_key) for job in jobs]
    return [job for job in created if job is not None]


def _duplicate_of(uow: UnitOfWork, profile: PrinterProfile, last: PrintJob) -> list[NewPrintJob]:
    if last.kind is JobKind.SETTLEMENT:
        n = uow.printing.count_reprints(profile.merchant_id, None, last.batch_no) + 1
        data = slips.slip_data_from_json(last.content)
        if not isinstance(data, slips.SettlementData):
            raise ConflictError(f"print job {last.job_id} holds no settlement slip")
        return [_settlement_job(profile, data, True, n)]
    receipt = slips.slip_data_from_json(last.content)
    if not isinstance(receipt, slips.ReceiptData):
        raise ConflictError(f"print job {last.job_id} holds no receipt")
    n = uow.printing.count_reprints(profile.merchant_id, receipt.reference, None) + 1
    return _receipt_jobs(profile, receipt, True, n)


def _find_transaction(uow: UnitOfWork, profile: PrinterProfile, trace: str | None,
                      rrn: str | None, txn_id: str | None) -> TransactionRecord:
    if trace is not None and not (trace.isdigit() and len(trace) <= 6):
        raise ValidationError("a trace (凭证号) is up to 6 digits")
    if rrn is not None and not (rrn.isalnum() and len(rrn) <= 12):
        raise ValidationError("an RRN (参考号) is up to 12 letters or digits")
    if txn_id is not None:
        record = uow.transactions.get(profile.merchant_id, txn_id)
        found = [record] if record and record.terminal_id == profile.terminal_id else []
    else:
        found = uow.transactions.search(TransactionQuery(
            merchant_id=profile.merchant_id, terminal_id=profile.terminal_id,
            stan=trace.zfill(6) if trace else None, rrn=rrn), None, 1)
    if not found or not printable(found[0]):
        raise NotFoundError("no slip with that " + ("trace" if trace else "RRN" if rrn
                                                     else "transaction id"))
    return found[0]


def print_test_page(ctx: ServiceContext, who: Principal, name: str) -> PrintJob:
    """Queue a test page on printer ``name`` (it prints with the queue's next round)."""
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        profile = _profile(uow, who, name)
        data = slips.CheckPageData(profile.name, profile.interface, profile.address,
                                  now.isoformat())
        job = NewPrintJob(job_key=f"test:{name}:{now.isoformat()}", printer_name=name,
                          merchant_id=profile.merchant_id, terminal_id=profile.terminal_id,
                          kind=JobKind.TEST, content=data.to_json())
        uow.printing.enqueue(job, now)
        found = uow.printing.job_by_key(job.job_key)
    require(found is not None, "an enqueued job reads back")
    return found  # type: ignore[return-value]


def ensure_demo_printers(ctx: ServiceContext, folder: Path,
                         terminals: Iterable[tuple[str, str]]) -> list[PrinterProfile]:
    """File printers for the demo fleet: each terminal's slips appended to
    ``<folder>/<terminal>.prn`` (ESC/POS bytes, mode 0600), 80 mm wide when the terminal's
    model says so. A terminal that has a printer keeps it."""
    made: list[PrinterProfile] = []
    for merchant_id, terminal_id in terminals:
        name = f"demo-{terminal_id.lower()}"
        with ctx.db.unit_of_work() as uow:
            existing = uow.printing.profile_of_terminal(merchant_id, terminal_id)
            terminal = uow.terminals.get(merchant_id, terminal_id)
        if terminal is None:
            continue
        if existing is not None:
            made.append(existing)
            continue
        made.append(add_printer(ctx, SYSTEM, NewPrinter(
            name, merchant_id, terminal_id, Interface.FILE.value,
            str((folder / f"{terminal_id}.prn").resolve()),
            layout.WIDTH_80MM_COLS if "80mm" in terminal.model else layout.WIDTH_58MM_COLS)))
    return made
