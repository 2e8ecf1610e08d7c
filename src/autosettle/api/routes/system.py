"""Health and API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse, Response

from autosettle import __version__
from autosettle.api.deps import Ctx, Idem, Who
from autosettle.api.schemas import ApiKeyCreate, ApiKeyIssued, Health
from autosettle.services import apikeys, database

router = APIRouter()


@router.get("/healthz", response_model=Health, tags=["system"], responses={
    503: {"model": Health, "description": "degraded: the database does not answer"}})
def healthz(ctx: Ctx) -> Response:
    """Liveness and database reachability (no authentication)."""
    ok = database.reachable(ctx)
    body = Health(status="ok" if ok else "degraded", database="ok" if ok else "unreachable",
                  version=__version__)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.post("/v1/api-keys", status_code=201, response_model=ApiKeyIssued, tags=["auth"])
def create_api_key(body: ApiKeyCreate, ctx: Ctx, who: Who, idem: Idem) -> Response:
    """Issue an API key (operator). The key is returned once."""
    def issue() -> ApiKeyIssued:
        issued = apikeys.create_api_key(ctx, who, body.role, body.name, body.merchant_id,
                                        body.terminal_id)
        return ApiKeyIssued(key_id=issued.key_id, key=issued.key, role=issued.role,
                            merchant_id=issued.merchant_id, terminal_id=issued.terminal_id)
    return idem.run(issue, status_code=201)


@router.delete("/v1/api-keys/{key_id}", status_code=204, tags=["auth"])
def revoke_api_key(key_id: Annotated[str, Path(min_length=1, max_length=64)], ctx: Ctx,
                   who: Who) -> Response:
    """Revoke an API key (operator): it stops working at once. Revoking it again changes
    nothing; an unknown key is 404."""
    apikeys.revoke_api_key(ctx, who, key_id)
    return Response(status_code=204)
