"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from autosettle import __version__
from autosettle.api import errors
from autosettle.api.limits import REQUEST_BODY_BYTES_MAX, BodySizeLimit
from autosettle.api.routes import merchants, payments, settlement, system, terminal_status
from autosettle.services.context import ServiceContext


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
    app.include_router(system.router)
    app.include_router(merchants.router)
    app.include_router(payments.router)
    app.include_router(settlement.router)
    app.include_router(terminal_status.router)
    return app
