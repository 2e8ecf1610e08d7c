"""The console's pages (GET). Each calls the services the API calls and renders a template;
another merchant's object is ``not_found`` in the service and a 404 page here."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from datetime import date, timedelta
from typing import IO, Annotated, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from autosettle.domain.calendar import SHANGHAI
from autosettle.domain.errors import NotFoundError, ValidationError
from autosettle.domain.money import Money
from autosettle.domain.payment_records import TransactionQuery
from autosettle.domain.payouts import PayoutStatus
from autosettle.domain.response_codes import ResponseCode, describe
from autosettle.domain.transactions import TxnStatus, TxnType
from autosettle.reports.catalog import ReportName, ReportRequest, build
from autosettle.reports.charts import Chart, ChartKind, ChartUnit, Series, render_svg
from autosettle.reports.formats import MEDIA_TYPES, ReportFormat, file_name
from autosettle.reports.formats import render as render_report
from autosettle.reports.tabular import iter_csv
from autosettle.services import (
    alerts,
    console_views,
    fee_schedules,
    leases,
    ledger,
    maintenance,
    merchants,
    risk,
    settlement_queries,
    terminal_status,
    transactions,
)
from autosettle.web.app import render
from autosettle.web.auth import context, current, language

router = APIRouter()
PAGE = 50
E = TypeVar("E", TxnType, TxnStatus, PayoutStatus)
Q = Annotated[str | None, Query(max_length=200)]
DIGITS = re.compile(r"^\d+$")


def _blank(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _date(value: str | None, name: str) -> date | None:
    value = _blank(value)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{name}: a date as YYYY-MM-DD, not {value!r}") from None


def _member(enum: type[E], value: str | None, name: str) -> E | None:
    value = _blank(value)
    if value is None:
        return None
    try:
        return enum(value)
    except ValueError:
        raise ValidationError(f"unknown {name} {value!r}; one of: "
                              + ", ".join(m.value for m in enum)) from None


def _digits(value: str | None, name: str, width: int, pad: bool) -> str | None:
    value = _blank(value)
    if value is None:
        return None
    if not DIGITS.match(value) or len(value) > width or (not pad and len(value) != width):
        raise ValidationError(f"{name}: {'up to ' if pad else ''}{width} digits")
    return value.zfill(width) if pad else value


# -- dashboard --------------------------------------------------------------------------------

@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request) -> HTMLResponse:
    s = current(request)
    ctx, who = context(request), s.principal
    board = console_views.dashboard(ctx, who)
    upto = ctx.now().astimezone(SHANGHAI).hour + 1  # the hours of today so far
    hours = tuple(f"{h:02d}" for h in range(upto))
    lang_zh = language(request, s) == "zh"
    volume = Chart(ChartKind.BAR, "今日每小时交易额" if lang_zh else "Today's volume by hour",
                   hours, (Series("¥", board.volume_by_hour[:upto]),), ChartUnit.FEN)
    count = Chart(ChartKind.LINE, "今日每小时笔数" if lang_zh else "Today's count by hour",
                  hours, (Series("#", board.count_by_hour[:upto]),), ChartUnit.COUNT)
    open_alerts = alerts.list_alerts(ctx, who, limit=10)
    silent = terminal_status.terminal_status(ctx, who, silent_only=True, limit=200).items[:10]
    recent = console_views.batches(ctx, who, None, None, None, 10)
    declines = [(code, n, _text(code)) for code, n in board.top_declines]
    return render(request, "dashboard.html", board=board, volume_svg=render_svg(volume),
                  count_svg=render_svg(count), alerts=open_alerts, silent=silent,
                  recent=recent, declines=declines)


def _text(code: str | None) -> tuple[str, str, str]:
    """(English, Chinese, what the cashier should do) of a response code."""
    try:
        found = describe(ResponseCode(code or ""))
    except ValueError:
        return ("unknown code", "未知应答码", "")
    return (found.english, found.chinese, found.action.value)


# -- merchants --------------------------------------------------------------------------------

@router.get("/merchants", response_class=HTMLResponse)
def merchants_list(request: Request, cursor: Q = None) -> HTMLResponse:
    s = current(request)
    page = merchants.list_merchants(context(request), s.principal, _blank(cursor), PAGE)
    return render(request, "merchants.html", page=page)


@router.get("/merchants/{merchant_id}", response_class=HTMLResponse)
def merchant_detail(request: Request, merchant_id: str) -> HTMLResponse:
    s = current(request)
    ctx, who = context(request), s.principal
    merchant = merchants.get_merchant(ctx, who, merchant_id)
    today = ctx.now().astimezone(SHANGHAI).date()
    accounts = merchants.list_settlement_accounts(ctx, who, merchant_id)
    terminals = terminal_status.terminal_status(ctx, who, merchant_id, limit=100).items
    schedule = fee_schedules.current_schedule(ctx, who, merchant_id, today)
    costs = fee_schedules.compare_cycles(ctx, who, merchant_id, today - timedelta(days=29),
                                         today)
    balances = ledger.merchant_balances(ctx, who, merchant_id)
    recent = console_views.batches(ctx, who, merchant_id, None, None, 10)
    return render(request, "merchant.html", merchant=merchant, accounts=accounts,
                  terminals=terminals, schedule=schedule, costs=costs, balances=balances,
                  recent=recent)


# -- terminals --------------------------------------------------------------------------------

@router.get("/terminals", response_class=HTMLResponse)
def terminals_list(request: Request, merchant_id: Q = None, cursor: Q = None,
                   silent: Q = None) -> HTMLResponse:
    s = current(request)
    page = terminal_status.terminal_status(context(request), s.principal, _blank(merchant_id),
                                           cursor=_blank(cursor), limit=PAGE,
                                           silent_only=bool(_blank(silent)))
    return render(request, "terminals.html", page=page, merchant_id=_blank(merchant_id) or "",
                  silent=bool(_blank(silent)))


@router.get("/terminals/{terminal_ref}", response_class=HTMLResponse)
def terminal_detail(request: Request, terminal_ref: str) -> HTMLResponse:
    """``terminal_ref`` is ``<merchant id>:<terminal id>`` (a merchant user may give the
    terminal id alone)."""
    s = current(request)
    ctx, who = context(request), s.principal
    merchant_id, sep, terminal_id = terminal_ref.partition(":")
    if not sep:
        merchant_id, terminal_id = who.merchant_id or "", terminal_ref
    terminal = merchants.get_terminal(ctx, who, merchant_id, terminal_id)
    health = next((v for v in terminal_status.terminal_status(
        ctx, who, merchant_id, limit=terminal_status.STATUS_PAGE_MAX).items
        if v.terminal_id == terminal_id), None)
    recent = transactions.search(ctx, who, TransactionQuery(
        merchant_id=merchant_id, terminal_id=terminal_id), None, 20).items
    return render(request, "terminal.html", terminal=terminal, health=health, recent=recent)


# -- transactions -----------------------------------------------------------------------------

def _query(request: Request, merchant_id: str | None, terminal_id: str | None,
           last4: str | None, amount: str | None, rrn: str | None, auth_code: str | None,
           trace: str | None, batch: str | None, date_from: str | None, date_to: str | None,
           type_: str | None, status: str | None) -> TransactionQuery:
    amount_text = _blank(amount)
    amount_minor = None
    if amount_text is not None:
        amount_minor = Money.parse(amount_text.replace(",", "").lstrip("¥")).amount_minor
    rrn = _blank(rrn)
    if rrn is not None and len(rrn) > 12:
        raise ValidationError("RRN: up to 12 characters")
    code = _blank(auth_code)
    if code is not None and len(code) > 6:
        raise ValidationError("auth code: up to 6 characters")
    return TransactionQuery(
        merchant_id=_blank(merchant_id), terminal_id=_blank(terminal_id),
        date_from=_date(date_from, "date_from"), date_to=_date(date_to, "date_to"),
        txn_type=_member(TxnType, type_, "type"), status=_member(TxnStatus, status, "status"),
        amount_minor=amount_minor, last4=_digits(last4, "last 4", 4, pad=False), rrn=rrn,
        auth_code=code, stan=_digits(trace, "trace", 6, pad=True),
        batch_no=_digits(batch, "batch", 6, pad=True))


FILTERS = ("merchant_id", "terminal_id", "last4", "amount", "rrn", "auth_code", "trace",
           "batch", "date_from", "date_to", "type", "status")


@router.get("/transactions", response_class=HTMLResponse)
def transactions_search(
    request: Request, merchant_id: Q = None, terminal_id: Q = None, last4: Q = None,
    amount: Q = None, rrn: Q = None, auth_code: Q = None, trace: Q = None, batch: Q = None,
    date_from: Q = None, date_to: Q = None, type: Q = None, status: Q = None,
    page: Q = None,
) -> HTMLResponse:
    s = current(request)
    query = _query(request, merchant_id, terminal_id, last4, amount, rrn, auth_code, trace,
                   batch, date_from, date_to, type, status)
    found = transactions.search(context(request), s.principal, query, _blank(page), PAGE)
    filters = {name: request.query_params.get(name, "") for name in FILTERS}
    kept = {k: v for k, v in filters.items() if v}
    # htmx (the search form) asks for the results only; a plain request gets the page.
    template = "_txn_results.html" if request.headers.get("hx-request") else \
        "transactions.html"
    return render(request, template, found=found, filters=filters, kept=kept,
                  types=[t.value for t in TxnType], statuses=[x.value for x in TxnStatus])


@router.get("/transactions.csv")
def transactions_csv(
    request: Request, merchant_id: Q = None, terminal_id: Q = None, last4: Q = None,
    amount: Q = None, rrn: Q = None, auth_code: Q = None, trace: Q = None, batch: Q = None,
    date_from: Q = None, date_to: Q = None, type: Q = None, status: Q = None,
) -> StreamingResponse:
    s = current(request)
    query = _query(request, merchant_id, terminal_id, last4, amount, rrn, auth_code, trace,
                   batch, date_from, date_to, type, status)
    ctx = context(request)
    rows = transactions.export_csv(ctx, s.principal, query)
    # The header and the first page before the answer starts: the scope is checked (and a
    # 404 can still be answered) before any byte is sent.
    header, first = next(rows), next(rows, "")

    def body() -> Iterator[str]:
        yield "\ufeff" + header
        yield first
        yield from rows

    return StreamingResponse(body(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": 'attachment; filename="transactions.csv"'})


@router.get("/transactions/{txn_id}", response_class=HTMLResponse)
def transaction_detail(request: Request, txn_id: str) -> HTMLResponse:
    s = current(request)
    found = console_views.chain(context(request), s.principal, txn_id)
    shown = found.shown.record
    return render(request, "transaction.html", chain=found,
                  risk=risk.decision_of(context(request), s.principal, shown.merchant_id,
                                        shown.txn_id),
                  code=_text(found.shown.record.response_code)
                  if found.shown.record.response_code else None)


# -- settlements and payouts ------------------------------------------------------------------

@router.get("/settlements", response_class=HTMLResponse)
def settlements_list(request: Request, merchant_id: Q = None, date_from: Q = None,
                     date_to: Q = None) -> HTMLResponse:
    s = current(request)
    found = console_views.batches(context(request), s.principal, _blank(merchant_id),
                                  _date(date_from, "date_from"), _date(date_to, "date_to"),
                                  PAGE)
    filters = {"merchant_id": merchant_id or "", "date_from": date_from or "",
               "date_to": date_to or ""}
    older = None
    if len(found) == PAGE:
        older = (found[-1].settlement_date - timedelta(days=1)).isoformat()
    return render(request, "settlements.html", batches=found, filters=filters, older=older)


@router.get("/settlements/{batch_id}", response_class=HTMLResponse)
def settlement_detail(request: Request, batch_id: str) -> HTMLResponse:
    s = current(request)
    detail = settlement_queries.get_settlement(context(request), s.principal, batch_id, 200)
    return render(request, "settlement.html", detail=detail)


@router.get("/payouts", response_class=HTMLResponse)
def payouts_list(request: Request, merchant_id: Q = None, status: Q = None,
                 cursor: Q = None) -> HTMLResponse:
    s = current(request)
    page = console_views.payouts(context(request), s.principal, _blank(merchant_id),
                                 _member(PayoutStatus, status, "status"), _blank(cursor), PAGE)
    return render(request, "payouts.html", page=page, statuses=[p.value for p in PayoutStatus],
                  filters={"merchant_id": merchant_id or "", "status": status or ""})


@router.get("/payouts/{payout_id}", response_class=HTMLResponse)
def payout_detail(request: Request, payout_id: str) -> HTMLResponse:
    s = current(request)
    found = console_views.payout(context(request), s.principal, payout_id)
    return render(request, "payout.html", payout=found)


# -- alerts, maintenance, notices, calendar, jobs, audit, reports -----------------------------

@router.get("/alerts", response_class=HTMLResponse)
def alerts_list(request: Request, merchant_id: Q = None, resolved: Q = None) -> HTMLResponse:
    s = current(request)
    found = alerts.list_alerts(context(request), s.principal, _blank(merchant_id),
                               include_resolved=bool(_blank(resolved)), limit=200)
    return render(request, "alerts.html", alerts=found, resolved=bool(_blank(resolved)))


@router.get("/maintenance", response_class=HTMLResponse)
def maintenance_list(request: Request) -> HTMLResponse:
    current(request)
    return render(request, "maintenance.html", windows=maintenance.windows(context(request)))


@router.get("/notices", response_class=HTMLResponse)
def notices_list(request: Request, merchant_id: Q = None) -> HTMLResponse:
    s = current(request)
    found = maintenance.notices(context(request), s.principal, _blank(merchant_id))
    return render(request, "notices.html", notices=found)


def _operator_page(request: Request) -> None:
    """Operator-only pages are a 404 for merchant users (as an API key outside its reach)."""
    if not current(request).principal.is_operator:
        raise NotFoundError("not found")


@router.get("/calendar", response_class=HTMLResponse)
def calendar_list(request: Request) -> HTMLResponse:
    _operator_page(request)
    s = current(request)
    found = maintenance.list_calendar_overrides(context(request), s.principal)
    return render(request, "calendar.html", overrides=found)


@router.get("/jobs", response_class=HTMLResponse)
def jobs_list(request: Request, job: Q = None) -> HTMLResponse:
    _operator_page(request)
    runs = leases.recent_runs(context(request), _blank(job), 100)
    return render(request, "jobs.html", runs=runs)


@router.get("/audit", response_class=HTMLResponse)
def audit_list(request: Request, before: Annotated[int | None, Query(ge=1)] = None,
               actor: Q = None, action: Q = None) -> HTMLResponse:
    s = current(request)
    page = console_views.audit_log(context(request), s.principal, before, PAGE,
                                   _blank(actor), _blank(action))
    return render(request, "audit.html", page=page,
                  filters={"actor": actor or "", "action": action or ""})


REPORTS = (
    ("daily-summary", "Daily transaction summary"),
    ("settlement", "Settlement report"),
    ("statement", "Merchant statement"),
    ("fee-analysis", "Fee analysis"),
    ("terminal-health", "Terminal health"),
)
ONE_DAY_REPORTS = ("daily-summary", "terminal-health")
SPOOL_BYTES_MAX = 8 * 1024 * 1024
CHUNK_BYTES = 64 * 1024


@router.get("/reports", response_class=HTMLResponse)
def reports_page(request: Request) -> HTMLResponse:
    current(request)
    today = context(request).now().astimezone(SHANGHAI).date()
    return render(request, "reports.html", reports=REPORTS, available=True,
                  one_day=ONE_DAY_REPORTS, today=today.isoformat(),
                  date_from=(today - timedelta(days=30)).isoformat(), date_to=today.isoformat())


def _chunks(handle: IO[bytes]) -> Iterator[bytes]:
    try:
        handle.seek(0)
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk
    finally:
        handle.close()


@router.get("/reports/{file}")
def report_download(request: Request, file: str, merchant_id: Q = None, date: Q = None,
                    date_from: Q = None, date_to: Q = None) -> StreamingResponse:
    """``/console/reports/{name}.{csv|xlsx|pdf}``: the report service's report (the same as
    ``GET /v1/reports/{name}`` and ``autosettle reports``), as this user may see it."""
    s = current(request)
    stem, _, suffix = file.rpartition(".")
    name = _report_member(ReportName, stem, "report")
    fmt = _report_member(ReportFormat, suffix, "format")
    if name is None or fmt is None or fmt is ReportFormat.JSON:
        raise NotFoundError(f"report {file} not found")
    report = build(context(request), s.principal, ReportRequest(
        name, _date(date, "date"), _date(date_from, "date_from"), _date(date_to, "date_to"),
        _blank(merchant_id)))
    headers = {"Content-Disposition": f'attachment; filename="{file_name(report, fmt)}"'}
    if fmt is ReportFormat.CSV:
        return StreamingResponse(iter_csv(report), media_type=MEDIA_TYPES[fmt], headers=headers)
    spooled = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES_MAX)  # noqa: SIM115
    try:
        render_report(report, fmt, spooled)
    except BaseException:
        spooled.close()
        raise
    return StreamingResponse(_chunks(spooled), media_type=MEDIA_TYPES[fmt], headers=headers)


R = TypeVar("R", ReportName, ReportFormat)


def _report_member(enum: type[R], value: str, name: str) -> R | None:
    try:
        return enum(value)
    except ValueError:
        return None
