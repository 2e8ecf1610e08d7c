"""Error translation at the HTTP boundary: one table from error code to status."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from autosettle.domain.errors import AutosettleError, ErrorCode

log = logging.getLogger(__name__)

HTTP_STATUS: Mapping[ErrorCode, int] = {
    ErrorCode.INVALID_AMOUNT: 422,
    ErrorCode.AMOUNT_TOO_PRECISE: 422,
    ErrorCode.AMOUNT_NEGATIVE: 422,
    ErrorCode.AMOUNT_TOO_LARGE: 422,
    ErrorCode.UNKNOWN_CURRENCY: 422,
    ErrorCode.CURRENCY_MISMATCH: 422,
    ErrorCode.INVALID_PAN: 422,
    ErrorCode.INVALID_EXPIRY: 422,
    ErrorCode.CARD_EXPIRED: 422,
    ErrorCode.UNBALANCED_ENTRY: 422,
    ErrorCode.INVALID_ENTRY: 422,
    ErrorCode.VALIDATION_FAILED: 422,
    ErrorCode.DATE_OUT_OF_RANGE: 422,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.ALREADY_EXISTS: 409,
    ErrorCode.INVALID_STATE: 409,
    ErrorCode.BATCH_NOT_OPEN: 422,
    ErrorCode.IDEMPOTENCY_CONFLICT: 409,
    ErrorCode.IDEMPOTENCY_IN_PROGRESS: 409,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.INTERNAL: 500,
    ErrorCode.UNAVAILABLE: 503,
}

_STARLETTE_CODES: Mapping[int, ErrorCode] = {
    401: ErrorCode.UNAUTHENTICATED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.VALIDATION_FAILED,
    409: ErrorCode.INVALID_STATE,
    413: ErrorCode.VALIDATION_FAILED,
    415: ErrorCode.VALIDATION_FAILED,
}


def error_body(code: ErrorCode | str, message: str, **extra: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"code": str(code), "message": message}
    error.update(extra)
    return {"error": error}


def error_response(code: ErrorCode, message: str, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if code is ErrorCode.UNAUTHENTICATED else None
    return JSONResponse(error_body(code, message, **extra), status_code=HTTP_STATUS[code],
                        headers=headers)


def install(app: FastAPI) -> None:
    """Register the exception handlers that give every error the same shape."""

    @app.exception_handler(AutosettleError)
    async def _domain(request: Request, exc: AutosettleError) -> JSONResponse:
        if HTTP_STATUS[exc.code] >= 500:  # a fault: its message is for the log only
            return _fault(request, exc, exc.code)
        return error_response(exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", "")),
             "type": str(err.get("type", ""))}
            for err in exc.errors()
        ]
        return error_response(ErrorCode.VALIDATION_FAILED, "request is not valid",
                              details=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STARLETTE_CODES.get(exc.status_code, ErrorCode.VALIDATION_FAILED)
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _fault(request, exc, ErrorCode.INTERNAL)


FAULT_MESSAGES: Mapping[ErrorCode, str] = {
    ErrorCode.INTERNAL: "internal error; the details are in the server log",
    ErrorCode.UNAVAILABLE: "the service is unavailable; retry",
}
"""What a client is told of a fault: never the exception's own text (it may name internal
state, records or SQL)."""


def _fault(request: Request, exc: BaseException, code: ErrorCode) -> JSONResponse:
    """The one answer to a fault (5xx): a fixed message, and the traceback in the log."""
    log.error("%s on %s %r", code.value, request.method, request.url.path, exc_info=exc)
    return error_response(code, FAULT_MESSAGES.get(code, FAULT_MESSAGES[ErrorCode.INTERNAL]))
