"""``autosettle db upgrade``: the database schema."""

from __future__ import annotations

import typer
from sqlalchemy.engine import make_url

from autosettle.cli.console import console
from autosettle.config import get_settings
from autosettle.store import migrate

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (creates the embedded SQLite file if needed)."""
    settings = get_settings()
    migrate.upgrade(settings.effective_database_url)
    console.print(f"database up to date: {safe_url(settings.effective_database_url)}")


def safe_url(url: str) -> str:
    """The URL with its password hidden, for banners and messages."""
    return make_url(url).render_as_string(hide_password=True)
