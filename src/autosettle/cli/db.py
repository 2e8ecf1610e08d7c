"""``autosettle db upgrade``: the database schema."""

from __future__ import annotations

import typer

from autosettle.cli.console import console
from autosettle.config import get_settings
from autosettle.services import database

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (creates the embedded SQLite file if needed)."""
    settings = get_settings()
    database.upgrade(settings.effective_database_url)
    console.print("database up to date: "
                  f"{database.display_url(settings.effective_database_url)}")
