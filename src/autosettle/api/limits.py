"""Request limits enforced before a route runs: the size of a request body, and no control
character in the URL.

Without a limit, a client could make the API parse megabytes of JSON only for validation to
refuse it. A body over :data:`REQUEST_BODY_BYTES_MAX` is answered with 413 and the usual error
shape; a declared ``Content-Length`` is checked before anything is read, a streamed body as it
arrives.

A path or query string carrying a control character once decoded (``%00``, ``%0A``...) is
answered 422 ``validation_failed`` before any route runs: ids, filters and cursors never take
such a character, PostgreSQL cannot even compare a string holding NUL, and one check here
covers every parameter of every route, present and future.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from autosettle.api.errors import error_body
from autosettle.domain.errors import ErrorCode

REQUEST_BODY_BYTES_MAX = 1024 * 1024
HTTP_CONTENT_TOO_LARGE = 413
HTTP_UNPROCESSABLE = 422
_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")


def _too_large_message(limit_bytes: int) -> str:
    return f"request body is larger than {limit_bytes} bytes"


class BodySizeLimit:
    """ASGI middleware: 413 ``validation_failed`` for a body over ``limit_bytes``."""

    def __init__(self, app: ASGIApp, limit_bytes: int = REQUEST_BODY_BYTES_MAX) -> None:
        self.app = app
        self.limit_bytes = limit_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit_bytes:
            await self._refuse(scope, receive, send)
            return
        received_bytes = 0

        async def limited_receive() -> Message:
            nonlocal received_bytes
            message = await receive()
            if message["type"] == "http.request":
                received_bytes += len(message.get("body", b""))
                if received_bytes > self.limit_bytes:
                    # Raised inside the body read, so the API's error handlers answer it.
                    raise HTTPException(HTTP_CONTENT_TOO_LARGE,
                                        _too_large_message(self.limit_bytes))
            return message

        await self.app(scope, limited_receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = error_body(ErrorCode.VALIDATION_FAILED, _too_large_message(self.limit_bytes))
        response = JSONResponse(body, status_code=HTTP_CONTENT_TOO_LARGE,
                                headers={"Connection": "close"})
        await response(scope, receive, send)


def url_has_control(scope: Scope) -> bool:
    """Whether the decoded path or query string holds a control character."""
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogatepass")
    query: bytes = scope.get("query_string", b"")
    return bool(_CONTROL.search(unquote_to_bytes(raw_path))
                or _CONTROL.search(unquote_to_bytes(query.replace(b"+", b" "))))


class UrlCharacters:
    """ASGI middleware: 422 ``validation_failed`` for a control character in the URL."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not url_has_control(scope):
            await self.app(scope, receive, send)
            return
        body = error_body(ErrorCode.VALIDATION_FAILED,
                          "the URL contains a control character")
        await JSONResponse(body, status_code=HTTP_UNPROCESSABLE)(scope, receive, send)
