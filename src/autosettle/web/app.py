"""The console application, mounted into the API's app: :func:`mount_console`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from autosettle.domain.errors import AutosettleError, ErrorCode
from autosettle.services.console_sessions import ConsoleSession
from autosettle.services.context import ServiceContext
from autosettle.web import i18n
from autosettle.web.auth import CsrfRefused, LoginRequired, language

PREFIX = "/console"
HERE = Path(__file__).parent
log = logging.getLogger(__name__)

_env = Environment(loader=FileSystemLoader(HERE / "templates"),
                   autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                   trim_blocks=True, lstrip_blocks=True)
_env.filters.update(money=i18n.money, when=i18n.local_time, day=i18n.day,
                    bp=i18n.percent_bp)

STATUS_OF: dict[ErrorCode, int] = {
    ErrorCode.NOT_FOUND: 404, ErrorCode.FORBIDDEN: 403, ErrorCode.UNAUTHENTICATED: 403,
}


def render(request: Request, template: str, status_code: int = 200,
           session: ConsoleSession | None = None, **values: Any) -> HTMLResponse:
    """A page: the template with the session, the language and the formatting helpers."""
    if session is None:
        found = getattr(request.state, "console_session", None)
        session = found if isinstance(found, ConsoleSession) else None
    lang = language(request, session)
    html = _env.get_template(template).render(
        request=request, session=session, lang=lang, t=i18n.translator(lang), prefix=PREFIX,
        is_operator=session is not None and session.principal.is_operator,
        csrf=session.csrf_token if session else "", **values)
    return HTMLResponse(html, status_code=status_code)


def _error(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    """An error page; for htmx (a partial request) the banner alone, swapped in place."""
    template = "_banner.html" if request.headers.get("hx-request") else "error.html"
    return render(request, template, status_code=status, title=title, message=message)


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _: LoginRequired) -> Response:
        if request.method != "GET":
            return _error(request, 403, "Forbidden", "Log in")
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{PREFIX}/login?next={_quote(target)}", status_code=303)

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, _: CsrfRefused) -> Response:
        return _error(request, 403, "Forbidden", "The form expired or was not sent by this "
                      "console: reload the page and try again.")

    @app.exception_handler(AutosettleError)
    async def _domain(request: Request, exc: AutosettleError) -> Response:
        status = STATUS_OF.get(exc.code)
        if status == 404:
            return _error(request, 404, "Not found",
                          "The page or object does not exist, or it is not yours to see.")
        if status == 403:
            return _error(request, 403, "Forbidden", "Only operators may do this.")
        if exc.code is ErrorCode.UNAVAILABLE:
            return _error(request, 503, "Service unavailable", exc.message)
        if exc.code in (ErrorCode.INVALID_STATE, ErrorCode.ALREADY_EXISTS):
            return _error(request, 409, "Conflict", exc.message)
        if exc.code is ErrorCode.INTERNAL:
            log.error("console: %s", exc.message)
            return _error(request, 500, "Internal error", "")
        return _error(request, 400, "Something is wrong with the input", exc.message)

    @app.exception_handler(404)
    async def _missing(request: Request, _: Exception) -> Response:
        return _error(request, 404, "Not found",
                      "The page or object does not exist, or it is not yours to see.")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("console: unexpected error", exc_info=exc)
        return _error(request, 500, "Internal error", "")


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")


def create_console(ctx: ServiceContext) -> FastAPI:
    """The console as an application of its own (mounted at ``/console``)."""
    from autosettle.web import actions, pages, pages_printing, pages_recon, pages_risk

    console = FastAPI(title="autosettle console", openapi_url=None, docs_url=None,
                      redoc_url=None)
    console.state.ctx = ctx
    _install_errors(console)
    console.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    console.include_router(pages.router)
    console.include_router(actions.router)
    console.include_router(pages_printing.router)
    console.include_router(pages_risk.router)
    console.include_router(pages_recon.router)
    return console


def mount_console(app: FastAPI, ctx: ServiceContext) -> FastAPI:
    """Serve the console under ``/console`` of ``app`` and send ``/`` there. The API's own
    routes are untouched."""

    @app.get("/", include_in_schema=False)
    def _root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    @app.get(PREFIX, include_in_schema=False)
    def _console_root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    app.mount(PREFIX, create_console(ctx), name="console")
    return app
