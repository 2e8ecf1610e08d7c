"""The console's forms (POST): login, logout, language, and the operator actions (payouts,
alerts, maintenance windows, calendar overrides). Every POST but the login checks the
session's CSRF token first; the login form checks its own double-submitted token."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from autosettle.domain.calendar import SHANGHAI
from autosettle.domain.errors import ValidationError
from autosettle.services import alerts, console_sessions, maintenance, payouts
from autosettle.services.console_sessions import LoginOutcome
from autosettle.web.app import PREFIX, render
from autosettle.web.auth import (
    LANG_COOKIE,
    LANG_COOKIE_MAX_AGE_S,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    context,
    current,
    origin,
    require_csrf,
    session_token,
    set_cookie,
)
from autosettle.web.i18n import LANGUAGES, local_time

router = APIRouter()
FormText = Annotated[str | None, Form(max_length=500)]


def _local_path(target: str | None) -> str:
    """Only a path inside the console may be a redirect target (no open redirect)."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and parts.path.startswith(PREFIX + "/") \
                and "\\" not in target:
            return target
    return f"{PREFIX}/"


def _login_form(request: Request, status_code: int = 200, error: str | None = None,
                username: str = "", locked_until: str | None = None) -> HTMLResponse:
    token = console_sessions.new_login_token()
    response = render(request, "login.html", status_code=status_code, login_token=token,
                      error=error, username=username, locked_until=locked_until,
                      next=_local_path(request.query_params.get("next")))
    set_cookie(request, response, LOGIN_COOKIE, console_sessions.sign(context(request), token))
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return _login_form(request)


@router.post("/login")
def login(request: Request, username: FormText = None, password: FormText = None,
          csrf_token: FormText = None, next: FormText = None) -> Response:
    expected = console_sessions.unsign(context(request), request.cookies.get(LOGIN_COOKIE))
    if expected is None or csrf_token is None or not _same(expected, csrf_token):
        return render(request, "error.html", status_code=403, title="Forbidden",
                      message="The form expired or was not sent by this console: reload "
                      "the page and try again.")
    result = console_sessions.login(context(request), username or "", password or "",
                                    origin(request))
    if result.outcome is LoginOutcome.LOCKED:
        return _login_form(request, 403, "locked", username or "",
                           local_time(result.locked_until))
    if result.outcome is not LoginOutcome.OK or result.session_token is None:
        return _login_form(request, 401, "bad", username or "")
    response = RedirectResponse(_local_path(next), status_code=303)
    set_cookie(request, response, SESSION_COOKIE,
               console_sessions.sign(context(request), result.session_token))
    response.delete_cookie(LOGIN_COOKIE, path="/console")
    return response


def _same(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


@router.post("/logout")
def logout(request: Request, csrf_token: FormText = None) -> Response:
    s = current(request)
    require_csrf(request, s, csrf_token)
    token = session_token(request)
    if token:
        console_sessions.logout(context(request), token, origin(request))
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/console")
    return response


@router.get("/lang/{lang}")
def set_language(request: Request, lang: str) -> Response:
    """Switch the language (a cookie remembers it) and go back to the page."""
    if lang not in LANGUAGES:
        return render(request, "error.html", status_code=404, title="Not found",
                      message="The page or object does not exist, or it is not yours to see.")
    referer = request.headers.get("referer")
    target = f"{PREFIX}/"
    if referer:
        parts = urlsplit(referer)
        if parts.netloc == request.url.netloc:
            target = _local_path(parts.path + (f"?{parts.query}" if parts.query else ""))
    response = RedirectResponse(target, status_code=303)
    set_cookie(request, response, LANG_COOKIE, lang, max_age=LANG_COOKIE_MAX_AGE_S)
    return response


# -- payouts ----------------------------------------------------------------------------------

def _back(path: str) -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}{path}", status_code=303)


@router.post("/payouts/{payout_id}/confirm")
def payout_confirm(request: Request, payout_id: str, csrf_token: FormText = None) -> Response:
    s = current(request)
    require_csrf(request, s, csrf_token)
    payouts.confirm_payout(context(request), payout_id, s.principal)
    return _back(f"/payouts/{payout_id}")


@router.post("/payouts/{payout_id}/fail")
def payout_fail(request: Request, payout_id: str, csrf_token: FormText = None,
                reason: FormText = None) -> Response:
    s = current(request)
    require_csrf(request, s, csrf_token)
    text = (reason or "").strip()
    if not text:
        raise ValidationError("give the bank's reason for the failure")
    payouts.fail_payout(context(request), payout_id, text, s.principal)
    return _back(f"/payouts/{payout_id}")


@router.post("/payouts/{payout_id}/retry")
def payout_retry(request: Request, payout_id: str, csrf_token: FormText = None) -> Response:
    s = current(request)
    require_csrf(request, s, csrf_token)
    payouts.retry_payout(context(request), s.principal, payout_id)
    return _back(f"/payouts/{payout_id}")


# -- alerts, maintenance, calendar ------------------------------------------------------------

@router.post("/alerts/{alert_id}/resolve")
def alert_resolve(request: Request, alert_id: int, csrf_token: FormText = None) -> Response:
    s = current(request)
    require_csrf(request, s, csrf_token)
    alerts.resolve_alert(context(request), s.principal, alert_id)
    return _back("/alerts")


def _local_datetime(value: str | None, name: str) -> datetime:
    """A ``datetime-local`` field (Asia/Shanghai wall clock)."""
    try:
        parsed = datetime.fromisoformat((value or "").strip())
    except ValueError:
        raise ValidationError(f"{name}: a date and time as YYYY-MM-DDTHH:MM") from None
    return parsed.replace(tzinfo=SHANGHAI) if parsed.tzinfo is None else parsed


@router.post("/maintenance")
def maintenance_announce(request: Request, csrf_token: FormText = None,
                         starts_at: FormText = None, ends_at: FormText = None,
                         note: FormText = None) -> Response:
    s = current(request)
    require_csrf(request, s, csrf_token)
    maintenance.announce(context(request), s.principal,
                         _local_datetime(starts_at, "starts_at"),
                         _local_datetime(ends_at, "ends_at"), note or "")
    return _back("/maintenance")


@router.post("/calendar")
def calendar_override(request: Request, csrf_token: FormText = None, day: FormText = None,
                      kind: FormText = None, note: FormText = None) -> Response:
    s = current(request)
    require_csrf(request, s, csrf_token)
    try:
        on = date.fromisoformat((day or "").strip())
    except ValueError:
        raise ValidationError("day: a date as YYYY-MM-DD") from None
    if kind not in ("workday", "closure"):
        raise ValidationError("kind: workday or closure")
    maintenance.set_calendar_override(context(request), s.principal, on, kind == "workday",
                                      note or "")
    return _back("/calendar")
