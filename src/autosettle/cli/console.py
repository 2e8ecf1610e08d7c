"""What every ``autosettle`` command group shares, once: the consoles, the service context,
JSON output and error handling (one line on stderr with the machine-readable code, exit 2)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from datetime import date, datetime, time
from typing import Annotated, Any, ParamSpec

import typer
from rich.console import Console

from autosettle.cli.wiring import channel_for
from autosettle.config import get_settings
from autosettle.domain.errors import AutosettleError, UnavailableError
from autosettle.services.context import ServiceContext, build_context

console = Console()
err_console = Console(stderr=True)
P = ParamSpec("P")
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _default_context() -> ServiceContext:
    settings = get_settings()
    return build_context(settings, channel=channel_for(settings))


context_factory: Callable[[], ServiceContext] = _default_context
"""How the commands get their service context (tests replace it)."""


def context() -> ServiceContext:
    """Services wired from the process settings (environment / .env), with the channel the
    ``channel`` setting names."""
    return context_factory()


def emit_json(value: Any) -> None:
    """Print ``value`` as indented JSON; dataclasses become objects, dates and times ISO 8601
    (``2026-09-18T01:00:00+00:00``, as the API writes them), the rest text."""
    def default(obj: Any) -> Any:
        if is_dataclass(obj) and not isinstance(obj, type):
            return asdict(obj)
        if isinstance(obj, date | datetime | time):
            return obj.isoformat()
        return str(obj)
    typer.echo(json.dumps(value, default=default, ensure_ascii=False, indent=2))


def fail(exc: AutosettleError) -> None:
    """One line on stderr with the machine-readable code, exit status 2."""
    err_console.print(f"[red]error[/red] {exc.code}: {exc.message}")
    raise typer.Exit(2)


def guarded(command: Callable[P, None]) -> Callable[P, None]:
    """Every failure becomes one line on stderr and exit status 2, never a traceback.

    A database outage names only the driver error's class: its text could quote values.
    """
    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except UnavailableError as exc:
            err_console.print(f"[red]error[/red] {exc.code}: {exc.message}; run "
                              "'autosettle db upgrade' first?")
            raise typer.Exit(2) from None
        except AutosettleError as exc:
            fail(exc)
    return run
