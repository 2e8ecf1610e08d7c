"""One root error for autosettle, with one enum of machine-readable codes.

Hierarchy::

    AutosettleError            (code: ErrorCode, message: str)
    ├── ValidationError        bad input from outside; nothing was changed
    ├── NotFoundError          the resource does not exist, or not in the caller's scope
    ├── ConflictError          idempotency clashes, state that forbids the operation
    ├── AuthError              unauthenticated (401) or forbidden (403)
    └── InvariantViolation     a bug: an internal invariant did not hold

Adapters translate these once at their boundary: ``api/errors.py`` maps each code to an
HTTP status, the terminal host maps each to an ISO 8583 response code. Tests prove both
tables cover every code.

Business outcomes such as a card decline are *values* (results), not exceptions.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Every machine-readable error code autosettle can answer with."""

    # money
    INVALID_AMOUNT = "invalid_amount"
    AMOUNT_TOO_PRECISE = "amount_too_precise"
    AMOUNT_NEGATIVE = "amount_negative"
    AMOUNT_TOO_LARGE = "amount_too_large"
    UNKNOWN_CURRENCY = "unknown_currency"
    CURRENCY_MISMATCH = "currency_mismatch"
    # cards
    INVALID_PAN = "invalid_pan"
    INVALID_EXPIRY = "invalid_expiry"
    CARD_EXPIRED = "card_expired"
    # ledger
    UNBALANCED_ENTRY = "unbalanced_entry"
    INVALID_ENTRY = "invalid_entry"
    # generic input / resources
    VALIDATION_FAILED = "validation_failed"
    DATE_OUT_OF_RANGE = "date_out_of_range"
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    INVALID_STATE = "invalid_state"
    BATCH_NOT_OPEN = "batch_not_open"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    IDEMPOTENCY_IN_PROGRESS = "idempotency_in_progress"
    # auth
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    # faults
    INTERNAL = "internal_error"
    UNAVAILABLE = "unavailable"


class AutosettleError(Exception):
    """Root of every error autosettle raises on purpose."""

    default_code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.code: ErrorCode = code or self.default_code
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.value!r}, {self.message!r})"


class ValidationError(AutosettleError):
    """Input from outside is not acceptable; nothing was changed."""

    default_code = ErrorCode.VALIDATION_FAILED


class NotFoundError(AutosettleError):
    """The resource does not exist, or it is outside the caller's scope."""

    default_code = ErrorCode.NOT_FOUND


class ConflictError(AutosettleError):
    """The request clashes with existing state (duplicates, idempotency, state machines)."""

    default_code = ErrorCode.INVALID_STATE


class AlreadyExists(ConflictError):
    """A record with the same key (or trace number) is stored already; the store raises it for
    a unique-key clash at insert, so services never see a database exception."""

    default_code = ErrorCode.ALREADY_EXISTS


class AuthError(AutosettleError):
    """The caller is not authenticated, or not allowed to do this."""

    default_code = ErrorCode.UNAUTHENTICATED


class UnavailableError(AutosettleError):
    """The database (or another resource the service needs) cannot be reached; nothing was
    changed, and the same request may succeed when retried. The store raises it in place of
    the driver's connection errors, so nothing above the store sees a driver exception."""

    default_code = ErrorCode.UNAVAILABLE


class InvariantViolation(AutosettleError):
    """An internal invariant did not hold: a bug, never a user error."""

    default_code = ErrorCode.INTERNAL


def require(condition: bool, message: str) -> None:
    """Check an internal invariant; unlike ``assert`` this survives ``python -O``."""
    if not condition:
        raise InvariantViolation(message)
