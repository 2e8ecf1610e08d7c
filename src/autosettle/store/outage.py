"""The store's one translation of driver errors: a database that cannot be used (down,
unreachable, locked, or without its schema) becomes the domain's :class:`UnavailableError`,
so nothing above the store sees a driver exception."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from autosettle.domain.errors import UnavailableError

UNDEFINED_TABLE: Final = "42P01"
"""PostgreSQL's SQLSTATE for a missing table: the schema was never upgraded (SQLite reports
the same as an OperationalError)."""


def is_outage(exc: BaseException | None) -> bool:
    """True when ``exc`` says the database cannot be used, rather than a statement failed."""
    if isinstance(exc, OperationalError):
        return True
    if isinstance(exc, ProgrammingError):
        state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return bool(state == UNDEFINED_TABLE)
    return False


def unavailable(exc: DBAPIError) -> UnavailableError:
    """The domain error for ``exc``; the driver's own text (which may quote values) stays in
    the chained exception, for the log."""
    return UnavailableError(f"the database cannot be used ({type(exc.orig).__name__})")


@contextmanager
def outage_as_unavailable() -> Iterator[None]:
    """Run the block; a database outage inside it leaves as :class:`UnavailableError`."""
    try:
        yield
    except DBAPIError as exc:
        if is_outage(exc):
            raise unavailable(exc) from exc
        raise
