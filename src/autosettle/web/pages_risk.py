"""The console's risk pages (docs/risk.md, docs/console.md): the merchant's limits, usage,
pre-registrations (报备) and decisions; the operator's review queue, flagged merchant-days
and rule editor. Every page and form calls the services the API calls (``services.risk``,
``risk_review``, ``risk_scoring``), so every change is checked and audited there. Operator
pages are a 404 for merchant users; another merchant's data is a 404."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from autosettle.domain.calendar import SHANGHAI
from autosettle.domain.errors import NotFoundError, ValidationError
from autosettle.domain.money import Money
from autosettle.services import risk, risk_review, risk_scoring
from autosettle.services.console_sessions import ConsoleSession
from autosettle.web.app import PREFIX, render
from autosettle.web.auth import context, current, require_csrf

router = APIRouter()
Q = Annotated[str | None, Query(max_length=200)]
FormText = Annotated[str | None, Form(max_length=500)]
ParamsText = Annotated[str | None, Form(max_length=20_000)]
KINDS = ("single_max", "single_min", "cumulative", "velocity", "time_window", "allowed",
         "block")
SCOPES = ("all", "merchant_type", "mcc", "merchant", "terminal")
ACTIONS = ("decline", "review", "alert")
CARD_KINDS = ("debit", "credit", "foreign", "other")


def _blank(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _operator(request: Request) -> ConsoleSession:
    """Operator-only pages and forms are a 404 for merchant users."""
    s = current(request)
    if not s.principal.is_operator:
        raise NotFoundError("not found")
    return s


def _back(path: str) -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}{path}", status_code=303)


def _merchant_of(s: ConsoleSession, merchant_id: str | None) -> str | None:
    """A merchant user's own merchant (another id is a 404 in the service); an operator's
    choice (None: no merchant chosen yet)."""
    if s.principal.is_operator:
        return _blank(merchant_id)
    return _blank(merchant_id) or s.principal.merchant_id


def _risk_path(s: ConsoleSession, merchant_id: str) -> str:
    return f"/risk?merchant_id={merchant_id}" if s.principal.is_operator else "/risk"


def _local_datetime(value: str | None, name: str) -> datetime:
    """A ``datetime-local`` field (Asia/Shanghai wall clock)."""
    try:
        parsed = datetime.fromisoformat((value or "").strip())
    except ValueError:
        raise ValidationError(f"{name}: a date and time as YYYY-MM-DDTHH:MM") from None
    return parsed.replace(tzinfo=SHANGHAI) if parsed.tzinfo is None else parsed


def _day(value: str | None, name: str) -> date | None:
    value = _blank(value)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{name}: a date as YYYY-MM-DD, not {value!r}") from None


# -- the merchant's view ------------------------------------------------------------------------

@router.get("/risk", response_class=HTMLResponse)
def risk_page(request: Request, merchant_id: Q = None) -> HTMLResponse:
    s = current(request)
    ctx = context(request)
    chosen = _merchant_of(s, merchant_id)
    now = ctx.now()
    view = risk.merchant_view(ctx, s.principal, chosen) if chosen else None
    states = {p.prereg_id: risk.preregistration_state(p, now)
              for p in (view.preregistrations if view else [])}
    local = now.astimezone(SHANGHAI).replace(second=0, microsecond=0, tzinfo=None)
    return render(request, "risk.html", view=view, states=states, merchant_id=chosen or "",
                  window_from=local.isoformat(timespec="minutes"),
                  window_to=local.replace(hour=23, minute=59).isoformat(timespec="minutes"))


@router.post("/risk/preregistrations")
def preregister(request: Request, csrf_token: FormText = None, merchant_id: FormText = None,
                amount: FormText = None, valid_from: FormText = None,
                valid_to: FormText = None, terminal_id: FormText = None,
                card_last4: FormText = None, note: FormText = None) -> Response:
    s = current(request)
    require_csrf(request, s, csrf_token)
    chosen = _merchant_of(s, merchant_id)
    if chosen is None:
        raise ValidationError("choose a merchant")
    text = (_blank(amount) or "").replace(",", "").lstrip("¥")
    amount_minor = Money.parse(text).amount_minor
    risk.preregister(context(request), s.principal, chosen, risk.NewPreregistration(
        amount_minor, _local_datetime(valid_from, "valid_from"),
        _local_datetime(valid_to, "valid_to"), _blank(terminal_id), _blank(card_last4),
        (note or "").strip()))
    return _back(_risk_path(s, chosen))


@router.post("/risk/preregistrations/{prereg_id}/cancel")
def preregistration_cancel(request: Request, prereg_id: int,
                           csrf_token: FormText = None) -> Response:
    s = current(request)
    require_csrf(request, s, csrf_token)
    found = risk.cancel_preregistration_by_id(context(request), s.principal, prereg_id)
    return _back(_risk_path(s, found.merchant_id))


# -- operators: the review queue ---------------------------------------------------------------

@router.get("/risk/review", response_class=HTMLResponse)
def review_page(request: Request, merchant_id: Q = None) -> HTMLResponse:
    s = _operator(request)
    queue = risk.review_queue(context(request), s.principal, _blank(merchant_id), 200)
    return render(request, "risk_review.html", queue=queue, merchant_id=_blank(merchant_id) or "")


@router.post("/risk/review/{txn_id}/{action}")
def review_action(request: Request, txn_id: str, action: str,
                  csrf_token: FormText = None) -> Response:
    s = _operator(request)
    require_csrf(request, s, csrf_token)
    ctx = context(request)
    if action == "hold":
        risk.set_review_hold_by_id(ctx, s.principal, txn_id, True)
    elif action == "release":
        risk.set_review_hold_by_id(ctx, s.principal, txn_id, False)
    elif action == "refund":
        risk_review.refund_reviewed(ctx, s.principal, txn_id)
    else:
        raise NotFoundError(f"no action {action}")
    return _back("/risk/review")


# -- operators: flagged merchant-days ----------------------------------------------------------

@router.get("/risk/flagged", response_class=HTMLResponse)
def flagged_page(request: Request, day: Q = None, all: Q = None) -> HTMLResponse:
    s = _operator(request)
    show_all = bool(_blank(all))
    found = risk_scoring.flagged(context(request), s.principal, _day(day, "day"),
                                 None if show_all else True)
    return render(request, "risk_flagged.html", scores=found, day=_blank(day) or "",
                  show_all=show_all)


@router.post("/risk/flagged/{merchant_id}/{day}/release")
def flagged_release(request: Request, merchant_id: str, day: str,
                    csrf_token: FormText = None) -> Response:
    s = _operator(request)
    require_csrf(request, s, csrf_token)
    on = _day(day, "day")
    assert on is not None
    risk_scoring.release_merchant_day(context(request), s.principal, merchant_id, on)
    return _back("/risk/flagged")


# -- operators: the rule editor ----------------------------------------------------------------

@router.get("/risk/rules", response_class=HTMLResponse)
def rules_page(request: Request) -> HTMLResponse:
    s = _operator(request)
    found = risk.list_rules(context(request), s.principal, include_inactive=True)
    return render(request, "risk_rules.html", rules=found, kinds=KINDS, scopes=SCOPES,
                  actions=ACTIONS, card_kinds=CARD_KINDS)


def _params(text: str | None) -> dict[str, Any]:
    try:
        found = json.loads(text or "{}")
    except ValueError:
        raise ValidationError("params: a JSON object, e.g. {\"amount_minor\": 500000}") from None
    if not isinstance(found, dict):
        raise ValidationError("params: a JSON object, e.g. {\"amount_minor\": 500000}")
    return found


def _choice(value: str | None, allowed: tuple[str, ...], name: str,
            optional: bool = False) -> str | None:
    value = _blank(value)
    if value is None and optional:
        return None
    if value not in allowed:
        raise ValidationError(f"{name}: one of " + ", ".join(allowed))
    return value


@router.post("/risk/rules")
def rule_put(request: Request, csrf_token: FormText = None, rule_id: FormText = None,
             kind: FormText = None, scope: FormText = None, scope_value: FormText = None,
             card_kind: FormText = None, action: FormText = None, params: ParamsText = None,
             active: FormText = None, note: FormText = None,
             expected_version: FormText = None) -> Response:
    """A new rule or the next version of one (``expected_version``: refuse a stale edit)."""
    s = _operator(request)
    require_csrf(request, s, csrf_token)
    expected = _blank(expected_version)
    if expected is not None and not expected.isdigit():
        raise ValidationError("expected_version: a whole number")
    body = risk.RuleInput(
        _choice(kind, KINDS, "kind") or "", _choice(scope, SCOPES, "scope") or "",
        _choice(action, ACTIONS, "action") or "", _params(params), _blank(scope_value),
        _choice(card_kind, CARD_KINDS, "card kind", optional=True), active is not None,
        (note or "").strip())
    risk.put_rule(context(request), s.principal, (rule_id or "").strip(), body,
                  int(expected) if expected is not None else None)
    return _back("/risk/rules")


@router.post("/risk/rules/{rule_id}/deactivate")
def rule_deactivate(request: Request, rule_id: str, csrf_token: FormText = None) -> Response:
    s = _operator(request)
    require_csrf(request, s, csrf_token)
    risk.deactivate_rule(context(request), s.principal, rule_id)
    return _back("/risk/rules")
