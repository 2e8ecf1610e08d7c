"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from autosettle import __version__
from autosettle.api import errors
from autosettle.api.deps import get_principal
from autosettle.api.error_schemas import error_responses
from autosettle.api.limits import REQUEST_BODY_BYTES_MAX, BodySizeLimit, UrlCharacters
from autosettle.api.routes import (
    merchants,
    payments,
    printers,
    receipts,
    recon,
    reports,
    risk,
    settlement,
    system,
    terminal_status,
)
from autosettle.services.context import ServiceContext

ROUTERS = (system.router, merchants.router, payments.router, settlement.router,
           terminal_status.router, reports.router, receipts.router, printers.router,
           risk.router, recon.router)


def create_app(ctx: ServiceContext) -> FastAPI:
    """Build the API around one service context (database, clock, secrets)."""
    app = FastAPI(
        title="autosettle",
        version=__version__,
        description="POS acquiring and automatic settlement. Amounts are integers in minor "
        "units (fen). Authenticate with `Authorization: Bearer <api key>`. Mutating requests "
        "accept an `Idempotency-Key` header.",
    )
    app.state.ctx = ctx
    errors.install(app)
    app.add_middleware(BodySizeLimit, limit_bytes=REQUEST_BODY_BYTES_MAX)
    app.add_middleware(UrlCharacters)
    for router in ROUTERS:
        _declare_errors(router)
        app.include_router(router)
    return app


def _declare_errors(router: APIRouter) -> None:
    """Give each route the error answers it may give (OpenAPI); a route's own declarations
    win. Idempotent, so building the app twice declares nothing twice."""
    for route in router.routes:
        if isinstance(route, APIRoute):
            route.responses = {**error_responses(route, get_principal), **route.responses}
