"""``autosettle apikeys create|revoke``: API keys (a new key is printed once)."""

from __future__ import annotations

from typing import Annotated

import typer

from autosettle.cli.console import JsonFlag, console, context, emit_json, fail, guarded
from autosettle.domain.errors import AutosettleError
from autosettle.services import apikeys
from autosettle.services.context import SYSTEM, Role

app = typer.Typer(help="API keys.", no_args_is_help=True)


@app.command("create")
@guarded
def apikeys_create(
    role: Annotated[Role, typer.Option()],
    name: Annotated[str, typer.Option()],
    merchant_id: Annotated[str | None, typer.Option()] = None,
    terminal_id: Annotated[str | None, typer.Option()] = None,
    as_json: JsonFlag = False,
) -> None:
    """Issue an API key; it is printed once."""
    try:
        issued = apikeys.create_api_key(context(), SYSTEM, role, name, merchant_id,
                                        terminal_id)
    except AutosettleError as exc:
        fail(exc)
        return
    if as_json:
        emit_json(issued)
    else:
        console.print(f"{issued.role} key (shown once): [bold]{issued.key}[/bold]")


@app.command("revoke")
@guarded
def apikeys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (the part after ask_).")],
    as_json: JsonFlag = False,
) -> None:
    """Revoke an API key: it stops working at once (revoking it again changes nothing)."""
    try:
        apikeys.revoke_api_key(context(), SYSTEM, key_id)
    except AutosettleError as exc:
        fail(exc)
        return
    if as_json:
        emit_json({"key_id": key_id, "revoked": True})
    else:
        console.print(f"key {key_id} revoked")
