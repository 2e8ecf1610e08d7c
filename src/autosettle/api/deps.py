"""FastAPI dependencies: the service context, the caller, and idempotent execution."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response

from autosettle.domain.errors import AuthError, AutosettleError, ErrorCode
from autosettle.services import idempotency
from autosettle.services.apikeys import authenticate
from autosettle.services.context import Principal, ServiceContext

from .errors import HTTP_STATUS, error_body


def get_context(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ServiceContext, Depends(get_context)]


def get_principal(
    request: Request,
    ctx: Ctx,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Principal:
    """Authenticate ``Authorization: Bearer <key>`` (or ``X-API-Key``)."""
    presented = x_api_key
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value:
            raise AuthError("use 'Authorization: Bearer <api key>'", ErrorCode.UNAUTHENTICATED)
        presented = value
    if not presented:
        raise AuthError("an API key is required", ErrorCode.UNAUTHENTICATED)
    client = request.client.host if request.client else "unknown"
    return authenticate(ctx, presented, origin=f"api:{client}")


Who = Annotated[Principal, Depends(get_principal)]


class Idempotent:
    """Runs a mutating request once per ``Idempotency-Key`` and replays its answer."""

    def __init__(self, ctx: ServiceContext, who: Principal, key: str | None,
                 content: str) -> None:
        self._ctx, self._who, self._key, self._content = ctx, who, key, content

    def run(self, handler: Callable[[], Any], status_code: int = 200) -> Response:
        if self._key is None:
            return JSONResponse(jsonable_encoder(handler()), status_code=status_code)
        scope = self._who.actor
        replay = idempotency.begin(self._ctx, scope, self._key, self._content)
        if replay is not None:
            return Response(replay.body, status_code=replay.status,
                            media_type="application/json",
                            headers={"Idempotent-Replayed": "true"})
        try:
            result = handler()
        except AutosettleError as exc:
            status = HTTP_STATUS[exc.code]
            if status >= 500:
                idempotency.release(self._ctx, scope, self._key)
                raise
            body = json.dumps(error_body(exc.code, exc.message))
            idempotency.finish(self._ctx, scope, self._key, status, body)
            return Response(body, status_code=status, media_type="application/json")
        except BaseException:
            idempotency.release(self._ctx, scope, self._key)
            raise
        body = json.dumps(jsonable_encoder(result), ensure_ascii=False)
        idempotency.finish(self._ctx, scope, self._key, status_code, body)
        return Response(body, status_code=status_code, media_type="application/json")


async def get_idempotent(
    request: Request,
    ctx: Ctx,
    who: Who,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> Idempotent:
    merchant_id = request.path_params.get("merchant_id")
    if isinstance(merchant_id, str):
        # Another tenant's resource is a 404 before anything is claimed or stored.
        who.require_merchant(merchant_id)
    body = await request.body()
    content = idempotency.fingerprint(request.method, request.url.path, body)
    if idempotency_key is not None:
        idempotency.check_key(idempotency_key)
    return Idempotent(ctx, who, idempotency_key, content)


Idem = Annotated[Idempotent, Depends(get_idempotent)]
