"""CLI of the terminal host: ``provision``, ``status``, ``reset-tmk`` and ``batch-flags``.

A Typer sub-app for ``autosettle`` to mount (``cli.py`` owns the root app). To make them
``autosettle terminals provision|status|reset-tmk|batch-flags`` (as issue 5 and
docs/terminal-integration.md name them), add the commands to the existing group::

    terminals_app.registered_commands.extend(terminals_host_app.registered_commands)

(or mount the whole sub-app: ``app.add_typer(terminals_host_app, name="terminal-host")``).

The service context comes from :data:`context_factory` (settings from the environment);
the root CLI may replace it with its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from autosettle.config import get_settings
from autosettle.domain.errors import AutosettleError
from autosettle.domain.iso8583.crypto import KEY_COMPONENTS_MAX, KEY_COMPONENTS_MIN
from autosettle.domain.merchants import check_merchant_id, check_terminal_id
from autosettle.services import merchants, terminal_batches, terminal_keys
from autosettle.services.context import SYSTEM, ServiceContext, build_context
from autosettle.services.terminal_keys import MacAlgorithm

terminals_host_app = typer.Typer(help="Terminal keys, sessions and batch reconciliation.",
                                 no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)


def _default_context() -> ServiceContext:
    return build_context(get_settings())


context_factory: Callable[[], ServiceContext] = _default_context
"""How the commands get their service context (replaceable by the root CLI and tests)."""

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
MerchantOpt = Annotated[str, typer.Option(help="15-character merchant id (field 42).")]
TerminalOpt = Annotated[str, typer.Option(help="8-character terminal id (field 41).")]


def _json(value: Any) -> None:
    def default(obj: Any) -> Any:
        if isinstance(obj, datetime):
            return obj.isoformat()
        return str(obj)
    typer.echo(json.dumps(value, default=default, ensure_ascii=False, indent=2))


def _fail(exc: AutosettleError) -> None:
    err_console.print(f"[red]error[/red] {exc.code}: {exc.message}")
    raise typer.Exit(2)


@terminals_host_app.command("provision")
def provision(
    merchant_id: MerchantOpt,
    terminal_id: TerminalOpt,
    mac: Annotated[MacAlgorithm, typer.Option(help="Field 64 algorithm.")] = MacAlgorithm.CUP_ECB,
    components: Annotated[int, typer.Option(min=KEY_COMPONENTS_MIN, max=KEY_COMPONENTS_MAX,
                                            help="Number of TMK components.")] = 2,
    transport_key_file: Annotated[Path | None, typer.Option(
        help="File with a hex transport key (16 bytes): also print the TMK under it.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Give a terminal a terminal master key; its components are printed ONCE."""
    transport_key = None
    if transport_key_file is not None:
        transport_key = bytes.fromhex(transport_key_file.read_text().strip())
    try:
        made = terminal_keys.provision_terminal(
            context_factory(), SYSTEM, merchant_id, terminal_id, mac_algorithm=mac,
            components=components, transport_key=transport_key)
    except AutosettleError as exc:
        _fail(exc)
        return
    if as_json:
        _json({"merchant_id": made.merchant_id, "terminal_id": made.terminal_id,
               "tmk_kcv": made.tmk_kcv, "tmk_generation": made.tmk_generation,
               "mac_algorithm": made.mac_algorithm.value,
               "components": [{"value": c.value_hex, "kcv": c.kcv} for c in made.components],
               "tmk_under_transport_key": made.tmk_under_transport_key_hex})
        return
    console.print(f"terminal {terminal_id} of {merchant_id}: TMK generation "
                  f"{made.tmk_generation}, check value [bold]{made.tmk_kcv}[/bold], MAC "
                  f"{made.mac_algorithm.value}")
    console.print("[yellow]shown once: give each component to a different key custodian"
                  "[/yellow]")
    for number, component in enumerate(made.components, 1):
        console.print(f"  component {number}: {component.value_hex}  (kcv {component.kcv})")
    if made.tmk_under_transport_key_hex:
        console.print(f"  TMK under the transport key: {made.tmk_under_transport_key_hex}")


@terminals_host_app.command("reset-tmk")
def reset_tmk(
    merchant_id: MerchantOpt,
    terminal_id: TerminalOpt,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Forget a terminal's keys: it is locked out until provisioned again.

    The terminal is looked up first: an invalid id or a terminal without keys is an error
    before anything is asked."""
    try:
        ctx = context_factory()
        check_merchant_id(merchant_id)
        check_terminal_id(terminal_id)
        kcv = terminal_keys.tmk_check_value(ctx, SYSTEM, merchant_id, terminal_id)
        if not yes:
            typer.confirm(f"Reset the TMK of terminal {terminal_id} of {merchant_id} (check "
                          f"value {kcv or 'none'})? It stops working until re-provisioned",
                          abort=True)
        terminal_keys.reset_tmk(ctx, SYSTEM, merchant_id, terminal_id)
    except AutosettleError as exc:
        _fail(exc)
        return
    console.print(f"terminal {terminal_id}: TMK reset; provision it again to unlock it")


@terminals_host_app.command("status")
def status(
    merchant_id: Annotated[str | None, typer.Option(help="Only this merchant.")] = None,
    silent_only: Annotated[bool, typer.Option("--silent", help="Only silent ones.")] = False,
    silent_after_s: Annotated[float | None, typer.Option(
        help="Silence threshold in seconds (default: the setting).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Terminals' last sign-on, last message, open batch, software version, silence."""
    try:
        ctx = context_factory()
        _known_merchant(ctx, merchant_id)
        page = terminal_keys.terminal_status(
            ctx, SYSTEM, merchant_id, limit=terminal_keys.STATUS_PAGE_MAX,
            silent_after=silent_after_s, silent_only=silent_only)
    except AutosettleError as exc:
        _fail(exc)
        return
    if as_json:
        _json([asdict(view) for view in page.items])
        return
    table = Table("merchant id", "terminal", "keys", "on", "last sign-on (UTC)",
                  "last message (UTC)", "batch", "sw", "silent")
    for v in page.items:
        pending = f" (g{v.pending_key_generation} pending)" if v.pending_key_generation else ""
        table.add_row(v.merchant_id, v.terminal_id,
                      f"{v.key_status} g{v.key_generation}{pending}",
                      "yes" if v.signed_on else "no", _when(v.last_sign_on_at),
                      _when(v.last_message_at), v.open_batch_no or "-",
                      v.software_version or "-", "[red]SILENT[/red]" if v.silent else "")
    console.print(table)


@terminals_host_app.command("batch-flags")
def batch_flags(
    merchant_id: Annotated[str | None, typer.Option(help="Only this merchant.")] = None,
    include_resolved: Annotated[bool, typer.Option("--all", help="Resolved ones too.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Differences found by batch uploads (transactions to reconcile by hand)."""
    try:
        ctx = context_factory()
        _known_merchant(ctx, merchant_id)
        flags = terminal_batches.batch_flags(ctx, SYSTEM, merchant_id,
                                             open_only=not include_resolved)
    except AutosettleError as exc:
        _fail(exc)
        return
    if as_json:
        _json([asdict(f) for f in flags])
        return
    table = Table("merchant id", "terminal", "batch", "trace", "kind", "terminal amount",
                  "our amount", "card")
    for f in flags:
        table.add_row(f.merchant_id, f.terminal_id, f.batch_no, f.stan, f.kind,
                      _fen(f.terminal_amount_minor), _fen(f.host_amount_minor),
                      f.pan_masked or "-")
    console.print(table)


def _known_merchant(ctx: ServiceContext, merchant_id: str | None) -> None:
    """A ``--merchant-id`` filter must name a merchant: ``validation_failed`` for a
    malformed id, ``not_found`` for an unknown one (never an empty answer)."""
    if merchant_id is not None:
        merchants.get_merchant(ctx, SYSTEM, check_merchant_id(merchant_id))


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _fen(value: int | None) -> str:
    return "-" if value is None else str(value)
