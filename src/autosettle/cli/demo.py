"""``autosettle demo seed``: the demo merchants, terminals and API keys."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from autosettle.cli.console import JsonFlag, console, context, emit_json, guarded
from autosettle.simulators import demo_seed as demo

app = typer.Typer(help="Demo data.", no_args_is_help=True)


@app.command("seed")
@guarded
def demo_seed(
    once: Annotated[bool, typer.Option("--once", help="Do nothing if already seeded.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Seed the demo merchants, terminals and keys (idempotent)."""
    ctx = context()
    keys = demo.seed(ctx)
    if as_json:
        emit_json(keys)
        return
    _print_demo_keys(keys, demo.keys_file(ctx))


def _print_demo_keys(keys: dict[str, str], path: Path) -> None:
    console.print(f"[bold]demo API keys[/bold] (also in {path}):", soft_wrap=True)
    for who, key in keys.items():
        console.print(f"  {who:<36} {key}", soft_wrap=True)
