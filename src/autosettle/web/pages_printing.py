"""The console's printer pages (issue 14): printer profiles with the state of their queue,
a printer's last slips as text, its pending and stuck jobs (operators cancel them), the
diagnosis walk (the "check" button), reprints of the last slip or one by trace or RRN,
and the e-receipt of a transaction.

Every page calls the services the API calls (``services/printing.py``,
``services/receipts.py``) with the session's principal: a merchant user sees its own
merchant's printers, another merchant's printer or transaction is a 404. Every POST
checks the session's CSRF token before anything runs.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from autosettle.domain.errors import NotFoundError, ValidationError
from autosettle.domain.print_records import JobState, PrinterProfile, PrintJob
from autosettle.services import idempotency, printing, receipts
from autosettle.services.console_sessions import ConsoleSession
from autosettle.services.context import ServiceContext
from autosettle.web.app import PREFIX, render
from autosettle.web.auth import context, current, require_csrf

router = APIRouter()
FormText = Annotated[str | None, Form(max_length=500)]
LAST_SLIPS = 5
PENDING_SHOWN = printing.JOBS_PAGE_MAX
RECEIPT_FORMATS = ("png", "pdf", "txt")


@dataclass(frozen=True, slots=True)
class QueueState:
    """A printer and its queue as the list shows it."""

    profile: PrinterProfile
    pending: int
    stuck: int
    last_printed_at: datetime | None


@dataclass(frozen=True, slots=True)
class ShownJob:
    """A job on the printer page: the job, whether it is stuck, its slip as text."""

    job: PrintJob
    stuck: bool
    text: str


@dataclass(frozen=True, slots=True)
class ShownStep:
    """One step of the diagnosis walk, in both languages (the page picks one)."""

    name: str
    outcome: str
    title_zh: str
    title_en: str
    detail: str
    problem_zh: str | None
    problem_en: str | None
    todo_zh: str | None
    todo_en: str | None


@dataclass(frozen=True, slots=True)
class DiagnosisView:
    """What the check found: ready or not, and each step with its verdict and advice."""

    ok: bool
    steps: tuple[ShownStep, ...]


def _queue(ctx: ServiceContext, s: ConsoleSession, profile: PrinterProfile) -> QueueState:
    now = ctx.now()
    pending = printing.list_jobs(ctx, s.principal, profile.name, JobState.PENDING.value,
                                 limit=PENDING_SHOWN)
    printed = printing.list_jobs(ctx, s.principal, profile.name, JobState.PRINTED.value,
                                 limit=1)
    return QueueState(profile, len(pending), sum(printing.is_stuck(j, now) for j in pending),
                      printed[0].printed_at if printed else None)


@router.get("/printers", response_class=HTMLResponse)
def printers_list(request: Request) -> HTMLResponse:
    s = current(request)
    ctx = context(request)
    rows = [_queue(ctx, s, p) for p in printing.list_printers(ctx, s.principal)]
    return render(request, "printers.html", rows=rows)


def _printer_page(request: Request, s: ConsoleSession, name: str,
                  diagnosis: DiagnosisView | None = None) -> HTMLResponse:
    ctx, who = context(request), s.principal
    profile = printing.get_printer(ctx, who, name)
    now = ctx.now()
    last = [ShownJob(j, printing.is_stuck(j, now), printing.job_text(j, profile.width_cols))
            for j in printing.list_jobs(ctx, who, name, limit=LAST_SLIPS)]
    pending = [ShownJob(j, printing.is_stuck(j, now), "")
               for j in printing.list_jobs(ctx, who, name, JobState.PENDING.value,
                                           limit=PENDING_SHOWN)]
    return render(request, "printer.html", profile=profile, queue=_queue(ctx, s, profile),
                  last=last, pending=pending, diagnosis=diagnosis,
                  request_key=secrets.token_urlsafe(18))


@router.get("/printers/{name}", response_class=HTMLResponse)
def printer_detail(request: Request, name: str) -> HTMLResponse:
    return _printer_page(request, current(request), name)


@router.post("/printers/{name}/check", response_class=HTMLResponse)
def printer_check(request: Request, name: str, csrf_token: FormText = None,
                  test_page: FormText = None) -> HTMLResponse:
    """Walk the troubleshooting steps (the same walk as ``POST /v1/printers/{name}/check``
    and ``autosettle printers check``) and show the page with each step's verdict."""
    s = current(request)
    require_csrf(request, s, csrf_token)
    found = printing.check(context(request), s.principal, name, bool(test_page))
    view = DiagnosisView(found.ok, tuple(ShownStep(
        step.name.value, step.outcome.value, step.title_zh, step.title_en, step.detail,
        step.advice.problem_zh if step.advice else None,
        step.advice.problem_en if step.advice else None,
        step.advice.todo_zh if step.advice else None,
        step.advice.todo_en if step.advice else None) for step in found.steps))
    return _printer_page(request, s, name, view)


def _blank(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


@router.post("/printers/{name}/reprint")
def printer_reprint(request: Request, name: str, csrf_token: FormText = None,
                    trace: FormText = None, rrn: FormText = None,
                    request_key: FormText = None) -> Response:
    """Reprint (重打印 DUPLICATE) the last slip, or one by trace or RRN. The form carries a
    key made when the page was drawn: sending the same form twice reprints once."""
    s = current(request)
    require_csrf(request, s, csrf_token)
    ctx, who = context(request), s.principal
    trace, rrn = _blank(trace), _blank(rrn)
    if trace is not None and rrn is not None:
        raise ValidationError("give a trace or an RRN, not both (neither: the last slip)")

    def run() -> None:
        printing.reprint(ctx, who, name, trace=trace, rrn=rrn)

    key = _blank(request_key)
    if key is None:
        run()
    else:
        scope = f"console:{who.actor}"
        content = idempotency.fingerprint("POST", request.url.path, json.dumps([trace, rrn]))
        if idempotency.begin(ctx, scope, key, content) is None:
            try:
                run()
            except BaseException:
                idempotency.release(ctx, scope, key)
                raise
            idempotency.finish(ctx, scope, key, 303, "")
    return RedirectResponse(f"{PREFIX}/printers/{name}", status_code=303)


@router.post("/print-jobs/{job_id}/cancel")
def print_job_cancel(request: Request, job_id: int, csrf_token: FormText = None) -> Response:
    """Cancel a pending job (operators): its slip will not be printed."""
    s = current(request)
    require_csrf(request, s, csrf_token)
    job = printing.cancel_job(context(request), s.principal, job_id)
    return RedirectResponse(f"{PREFIX}/printers/{job.printer_name}", status_code=303)


@router.get("/transactions/{txn_id}/receipt.{fmt}")
def transaction_receipt(request: Request, txn_id: str, fmt: str) -> Response:
    """The e-receipt of a transaction (``GET /v1/transactions/{id}/receipt``'s service and
    reach: another merchant's transaction is a 404)."""
    s = current(request)
    if fmt not in RECEIPT_FORMATS:
        raise NotFoundError(f"receipt format {fmt} not found")
    found = receipts.render_receipt(context(request), s.principal, txn_id, fmt)
    return Response(found.content, media_type=found.media_type,
                    headers={"Content-Disposition": f'inline; filename="{found.filename}"'})
