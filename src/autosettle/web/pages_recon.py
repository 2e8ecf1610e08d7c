"""The console's reconciliation pages (operators only; a 404 for merchant users): the daily
summary per channel and business date (with its CSV/XLSX download and the "close date"
form), the discrepancy queue and each discrepancy with its actions. Every page and form
calls the same :mod:`autosettle.services.recon` functions as ``/v1/recon`` and
``autosettle recon`` (docs/reconciliation.md, docs/console.md)."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from autosettle.domain.errors import ConflictError, NotFoundError, ValidationError
from autosettle.domain.recon import DISCREPANCY_CLASSES, Resolution, State
from autosettle.services import recon
from autosettle.services.console_sessions import ConsoleSession
from autosettle.web.app import PREFIX, render
from autosettle.web.auth import context, current, require_csrf

router = APIRouter()
PAGE = 50
Q = Annotated[str | None, Query(max_length=200)]
FormText = Annotated[str | None, Form(max_length=500)]

CLASS_LABELS: dict[str, tuple[str, str]] = {
    "ours_only": ("我方有/对方无", "ours only"),
    "theirs_only": ("对方有/我方无", "theirs only"),
    "amount_mismatch": ("金额不符", "amount mismatch"),
    "status_mismatch": ("状态不符", "status mismatch"),
    "fee_mismatch": ("手续费不符", "fee mismatch"),
    "date_mismatch": ("日期不符", "date mismatch"),
}
CLASSES = tuple(c.value for c in DISCREPANCY_CLASSES)
STATES = tuple(s.value for s in State)
ACTIONS = {Resolution.ADJUSTED: "adjust", Resolution.REFUND_REQUESTED: "refund",
           Resolution.RESETTLE_REQUESTED: "resettle", Resolution.ACCEPTED: "accept"}
ACTION_LABELS = {"adjust": "Adjust", "refund": "Request refund",
                 "resettle": "Request re-settlement", "accept": "Accept"}
AGEING = ("0-1d", "2-3d", "4-7d", ">7d")


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


def _choice(value: str | None, allowed: tuple[str, ...], name: str) -> str | None:
    value = _blank(value)
    if value is not None and value not in allowed:
        raise ValidationError(f"unknown {name} {value!r}; one of: {', '.join(allowed)}")
    return value


def _operator(request: Request) -> ConsoleSession:
    """These pages are a 404 for merchant users (as an API key outside its reach)."""
    s = current(request)
    if not s.principal.is_operator:
        raise NotFoundError("not found")
    return s


def _back(path: str) -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}{path}", status_code=303)


# -- the daily summary ------------------------------------------------------------------------

def _summary_page(request: Request, s: ConsoleSession, on: date | None, channel: str | None,
                  status_code: int = 200, refused: str | None = None) -> HTMLResponse:
    ctx = context(request)
    days = sorted(recon.day_states(ctx, s.principal),
                  key=lambda d: (d["business_date"], d["channel"]), reverse=True)
    if on is None:
        on = date.fromisoformat(days[0]["business_date"]) if days else ctx.now().date()
    rows = [r for r in recon.summary(ctx, s.principal, on)
            if channel is None or r["channel"] == channel]
    channels = sorted({d["channel"] for d in days})
    return render(request, "recon.html", status_code=status_code, rows=rows, on=on.isoformat(),
                  channel=channel or "", channels=channels, days=days[:30], classes=CLASSES,
                  labels=CLASS_LABELS, ageing=AGEING, refused=refused)


@router.get("/recon", response_class=HTMLResponse)
def recon_summary(request: Request, date: Q = None, channel: Q = None) -> HTMLResponse:
    s = _operator(request)
    return _summary_page(request, s, _date(date, "date"), _blank(channel))


@router.get("/recon/summary.{fmt}")
def recon_summary_download(request: Request, fmt: str, date: Q = None) -> Response:
    """The summary file of ``autosettle recon summary`` (the service's own export)."""
    s = _operator(request)
    if fmt not in ("csv", "xlsx"):
        raise NotFoundError(f"summary.{fmt} not found")
    on = _date(date, "date")
    if on is None:
        raise ValidationError("date: a date as YYYY-MM-DD is required")
    with tempfile.TemporaryDirectory() as tmp:
        path = recon.export_summary(context(request), s.principal, on, fmt, Path(tmp))
        body = path.read_bytes()
        name = path.name
    media = "text/csv; charset=utf-8" if fmt == "csv" else \
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(body, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.post("/recon/close", response_class=HTMLResponse)
def recon_close(request: Request, csrf_token: FormText = None, channel: FormText = None,
                business_date: FormText = None) -> Response:
    s = _operator(request)
    require_csrf(request, s, csrf_token)
    on = _date(business_date, "business_date")
    name = _blank(channel)
    if on is None or name is None:
        raise ValidationError("channel and business_date are required")
    try:
        recon.close_day(context(request), s.principal, on, name)
    except ConflictError as exc:
        # the summary again, with the reason on a banner; nothing changed
        return _summary_page(request, s, on, name, status_code=409, refused=exc.message)
    return _back(f"/recon?date={on.isoformat()}&channel={name}")


# -- the queue --------------------------------------------------------------------------------

@router.get("/recon/discrepancies", response_class=HTMLResponse)
def recon_queue(request: Request, date: Q = None, channel: Q = None, klass: Q = None,
                state: Q = None, owner: Q = None,
                after: Annotated[int | None, Query(ge=0)] = None) -> HTMLResponse:
    """The queue in id order, a page of ``PAGE`` after id ``after``; every filter (the owner
    too) is SQL, so the pages are right however many discrepancies there are."""
    s = _operator(request)
    found = recon.list_discrepancies(
        context(request), s.principal, channel=_blank(channel), on=_date(date, "date"),
        state=_choice(state, STATES, "state"), klass=_choice(klass, CLASSES, "class"),
        owner=_blank(owner), after=after, limit=PAGE + 1)
    items = found[:PAGE]
    next_after = items[-1].discrepancy_id if len(found) > PAGE else None
    filters = {"date": date or "", "channel": channel or "", "klass": klass or "",
               "state": state or "", "owner": owner or ""}
    return render(request, "recon_discrepancies.html", items=items, filters=filters,
                  after=after, next_after=next_after, classes=CLASSES, states=STATES,
                  labels=CLASS_LABELS)


# -- one discrepancy --------------------------------------------------------------------------

@router.get("/recon/discrepancies/{discrepancy_id}", response_class=HTMLResponse)
def recon_discrepancy(request: Request, discrepancy_id: int) -> HTMLResponse:
    s = _operator(request)
    d = recon.get_discrepancy(context(request), s.principal, discrepancy_id)
    allowed = recon.allowed_for(d.channel, d.klass) if d.state == State.OPEN else frozenset()
    actions = [a for r, a in ACTIONS.items() if r in allowed]
    entry = recon.planned_adjustment(d)
    if d.txn_id is None or d.channel == recon.TERMINAL_CHANNEL:
        ours_link = None
    elif d.channel == recon.BANK_CHANNEL:
        ours_link = f"{PREFIX}/payouts/{d.txn_id}"
    else:
        ours_link = f"{PREFIX}/transactions/{d.txn_id}"
    return render(request, "recon_discrepancy.html", d=d, labels=CLASS_LABELS,
                  actions=actions, action_labels=ACTION_LABELS, entry=entry, ours_link=ours_link,
                  history=recon.history(context(request), s.principal, discrepancy_id))


@router.post("/recon/discrepancies/{discrepancy_id}/assign")
def recon_assign(request: Request, discrepancy_id: int, csrf_token: FormText = None,
                 owner: FormText = None) -> Response:
    s = _operator(request)
    require_csrf(request, s, csrf_token)
    recon.assign(context(request), s.principal, discrepancy_id, owner or "")
    return _back(f"/recon/discrepancies/{discrepancy_id}")


@router.post("/recon/discrepancies/{discrepancy_id}/resolve")
def recon_resolve(request: Request, discrepancy_id: int, csrf_token: FormText = None,
                  action: FormText = None, reason: FormText = None) -> Response:
    s = _operator(request)
    require_csrf(request, s, csrf_token)
    recon.resolve(context(request), s.principal, discrepancy_id, action or "", reason or "")
    return _back(f"/recon/discrepancies/{discrepancy_id}")
