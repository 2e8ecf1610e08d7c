"""Who is looking: the session cookie, the login form's token, and the CSRF check.

The session cookie carries a random id signed with the data key (HttpOnly, SameSite=Lax,
Secure when ``console_cookie_secure`` is on); the session itself lives in the database
(``services/console_sessions.py``). Every POST carries the session's CSRF token, as the
form field ``csrf_token`` or the ``X-CSRF-Token`` header (htmx sends it from the page's
``hx-headers``); a POST without it is refused with 403 before anything runs.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from autosettle.services import console_sessions
from autosettle.services.console_sessions import ConsoleSession
from autosettle.services.context import ServiceContext

SESSION_COOKIE = "as_session"
LOGIN_COOKIE = "as_login"
LANG_COOKIE = "as_lang"
COOKIE_PATH = "/console"
CSRF_HEADER = "x-csrf-token"
LANG_COOKIE_MAX_AGE_S = 365 * 86_400


class LoginRequired(Exception):
    """No live session: the page answers with a redirect to the login form."""


class CsrfRefused(Exception):
    """A POST without this session's CSRF token: 403, nothing done."""


def context(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def origin(request: Request) -> str:
    return f"console:{request.client.host if request.client else 'unknown'}"


def session_token(request: Request) -> str | None:
    return console_sessions.unsign(context(request), request.cookies.get(SESSION_COOKIE))


def current(request: Request) -> ConsoleSession:
    """The live session, or :class:`LoginRequired`."""
    cached = getattr(request.state, "console_session", None)
    if isinstance(cached, ConsoleSession):
        return cached
    token = session_token(request)
    session = console_sessions.resolve(context(request), token, origin(request)) \
        if token else None
    if session is None:
        raise LoginRequired()
    request.state.console_session = session
    return session


def require_csrf(request: Request, session: ConsoleSession, form_token: str | None) -> None:
    presented = form_token or request.headers.get(CSRF_HEADER)
    if not console_sessions.csrf_ok(session, presented):
        raise CsrfRefused()


def set_cookie(request: Request, response: Response, name: str, value: str,
               max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path=COOKIE_PATH, httponly=True,
                        samesite="lax", secure=context(request).settings.console_cookie_secure)


def language(request: Request, session: ConsoleSession | None) -> str:
    """The cookie's choice; else Chinese, but English for operators."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in ("zh", "en"):
        return chosen
    if session is not None and session.principal.is_operator:
        return "en"
    return "zh"
