"""The error answers of the API, as the OpenAPI document declares them.

Every error has one shape, ``{"error": {"code", "message", ...}}`` (:class:`ErrorResponse`).
Which statuses a route may answer follows from what the route is, by one rule
(:func:`error_responses`), so a new route is documented without anyone remembering to:

- every route: ``500 internal_error`` and ``503 unavailable`` (the database is down);
- a route that takes an API key: ``401``, ``403`` and ``404``;
- a route with parameters (headers included) or a body: ``422 validation_failed``;
- a route with a body: ``400`` (a body that cannot be decoded) and ``413`` (over 1 MiB);
- a change (``POST``, ``PATCH``): ``409`` (already exists, invalid state, or an
  ``Idempotency-Key`` used for another request or still running).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from autosettle.domain.errors import ErrorCode

CHANGES = frozenset({"POST", "PATCH", "PUT", "DELETE"})
Responses = dict[int | str, dict[str, Any]]


class ErrorDetail(BaseModel):
    """One problem of a request that failed validation."""

    loc: list[str] = Field(description='where: ["body", "merchant_id"], ["query", "limit"]')
    msg: str
    type: str


class ErrorInfo(BaseModel):
    """``code`` is stable and meant for programs; ``message`` is for people."""

    model_config = ConfigDict(extra="allow")

    code: ErrorCode
    message: str
    details: list[ErrorDetail] | None = Field(
        default=None, description="request validation errors: one item per problem")
    response_code: str | None = Field(
        default=None, description="payments: the ISO 8583 response code (field 39)")
    response_text_en: str | None = None
    response_text_zh: str | None = None


class ErrorResponse(BaseModel):
    """The body of every error answer."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorInfo


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


SERVER_ERRORS: Responses = {
    500: _error("internal_error: a bug; the details are in the server log only"),
    503: _error("unavailable: the database cannot be reached; retry"),
}
AUTH_ERRORS: Responses = {
    401: _error("unauthenticated: no valid API key (with `WWW-Authenticate: Bearer`)"),
    403: _error("forbidden: the key's role may not do this"),
    404: _error("not_found: no such resource, or not in the key's scope"),
}
INPUT_ERRORS: Responses = {
    422: _error("validation_failed (with `details`) or another input error: invalid_amount, "
                "amount_too_precise, invalid_pan, card_expired, ..."),
}
BODY_ERRORS: Responses = {
    400: _error("validation_failed: the body cannot be decoded (not UTF-8)"),
    413: _error("validation_failed: the body is larger than 1 MiB"),
}
CHANGE_ERRORS: Responses = {
    409: _error("already_exists, invalid_state, idempotency_conflict (the Idempotency-Key "
                "was used for another request) or idempotency_in_progress (retry later)"),
}


def _tree(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _tree(sub)


def error_responses(route: APIRoute, authenticate: Any) -> Responses:
    """The error answers ``route`` may give; ``authenticate`` is the API-key dependency."""
    responses: Responses = dict(SERVER_ERRORS)
    dependant = route.dependant
    tree = list(_tree(dependant))
    if any(d.call is authenticate for d in tree):
        responses.update(AUTH_ERRORS)
    if any(d.path_params or d.query_params or d.header_params or d.body_params for d in tree):
        responses.update(INPUT_ERRORS)
    if dependant.body_params:
        responses.update(BODY_ERRORS)
    if (route.methods or set()) & CHANGES:
        responses.update(CHANGE_ERRORS)
    return responses
