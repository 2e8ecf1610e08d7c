"""The database itself: its schema (``autosettle db upgrade``), whether it answers, and how
its address is shown. Adapters call these instead of the store."""

from __future__ import annotations

from autosettle.services.context import ServiceContext
from autosettle.store import engine, migrate


def upgrade(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (creates an embedded SQLite file if
    needed); ``UnavailableError`` when it cannot be reached."""
    migrate.upgrade(url)


def current_revision(url: str) -> str | None:
    """The schema revision of the database at ``url``, None before the first upgrade."""
    return migrate.current_revision(url)


def reachable(ctx: ServiceContext) -> bool:
    """True when the service's database answers a trivial query (for health checks)."""
    return ctx.db.ping()


def display_url(url: str) -> str:
    """``url`` with its password hidden, for banners and messages."""
    return engine.display_url(url)
