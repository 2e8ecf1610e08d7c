"""``autosettle terminals add|list|provision|reset-tmk|status|batch-flags``: terminals, their
keys, sessions and batch reconciliation (docs/terminal-integration.md)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from autosettle.cli.console import JsonFlag, console, context, emit_json, fail, guarded
from autosettle.domain.errors import AutosettleError
from autosettle.domain.iso8583.crypto import KEY_COMPONENTS_MAX, KEY_COMPONENTS_MIN
from autosettle.domain.merchants import check_merchant_id, check_terminal_id
from autosettle.services import merchants, terminal_batches, terminal_keys, terminal_status
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.services.key_module import MacAlgorithm

app = typer.Typer(help="Terminals: registration, keys, sessions and batch reconciliation.",
                  no_args_is_help=True)
MerchantOpt = Annotated[str, typer.Option(help="15-character merchant id (field 42).")]
TerminalOpt = Annotated[str, typer.Option(help="8-character terminal id (field 41).")]


@app.command("add")
@guarded
def terminals_add(
    merchant_id: Annotated[str, typer.Option()],
    terminal_id: Annotated[str, typer.Option(help="8-character terminal id (field 41).")],
    serial_no: Annotated[str, typer.Option()] = "",
    model: Annotated[str, typer.Option()] = "generic",
    as_json: JsonFlag = False,
) -> None:
    """Register a terminal for a merchant."""
    try:
        terminal = merchants.add_terminal(context(), SYSTEM, merchant_id,
                                          merchants.NewTerminal(terminal_id, serial_no, model))
    except AutosettleError as exc:
        fail(exc)
        return
    if as_json:
        emit_json(terminal)
    else:
        console.print(f"terminal {terminal.terminal_id} added to {merchant_id}")


@app.command("list")
@guarded
def terminals_list(merchant_id: Annotated[str | None, typer.Option()] = None,
                   as_json: JsonFlag = False) -> None:
    """List terminals."""
    try:
        page = merchants.list_terminals(context(), SYSTEM, merchant_id, None, 200)
    except AutosettleError as exc:
        fail(exc)
        return
    if as_json:
        emit_json(list(page.items))
        return
    table = Table("merchant id", "terminal id", "serial", "model", "status")
    for t in page.items:
        table.add_row(t.merchant_id, t.terminal_id, t.serial_no, t.model, t.status)
    console.print(table)


@app.command("provision")
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
            context(), SYSTEM, merchant_id, terminal_id, mac_algorithm=mac,
            components=components, transport_key=transport_key)
    except AutosettleError as exc:
        fail(exc)
        return
    if as_json:
        emit_json({"merchant_id": made.merchant_id, "terminal_id": made.terminal_id,
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


@app.command("reset-tmk")
def reset_tmk(
    merchant_id: MerchantOpt,
    terminal_id: TerminalOpt,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Forget a terminal's keys: it is locked out until provisioned again.

    The terminal is looked up first: an invalid id or a terminal without keys is an error
    before anything is asked."""
    try:
        ctx = context()
        check_merchant_id(merchant_id)
        check_terminal_id(terminal_id)
        kcv = terminal_keys.tmk_check_value(ctx, SYSTEM, merchant_id, terminal_id)
        if not yes:
            typer.confirm(f"Reset the TMK of terminal {terminal_id} of {merchant_id} (check "
                          f"value {kcv or 'none'})? It stops working until re-provisioned",
                          abort=True)
        terminal_keys.reset_tmk(ctx, SYSTEM, merchant_id, terminal_id)
    except AutosettleError as exc:
        fail(exc)
        return
    console.print(f"terminal {terminal_id}: TMK reset; provision it again to unlock it")


@app.command("status")
def status(
    merchant_id: Annotated[str | None, typer.Option(help="Only this merchant.")] = None,
    silent_only: Annotated[bool, typer.Option("--silent", help="Only silent ones.")] = False,
    silent_after_s: Annotated[float | None, typer.Option(
        help="Silence threshold in seconds (default: the setting).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Terminals' last sign-on, last message, open batch, software version, silence."""
    try:
        ctx = context()
        _known_merchant(ctx, merchant_id)
        page = terminal_status.terminal_status(
            ctx, SYSTEM, merchant_id, limit=terminal_status.STATUS_PAGE_MAX,
            silent_after=silent_after_s, silent_only=silent_only)
    except AutosettleError as exc:
        fail(exc)
        return
    if as_json:
        emit_json([asdict(view) for view in page.items])
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


@app.command("batch-flags")
def batch_flags(
    merchant_id: Annotated[str | None, typer.Option(help="Only this merchant.")] = None,
    include_resolved: Annotated[bool, typer.Option("--all", help="Resolved ones too.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Differences found by batch uploads (transactions to reconcile by hand)."""
    try:
        ctx = context()
        _known_merchant(ctx, merchant_id)
        flags = terminal_batches.batch_flags(ctx, SYSTEM, merchant_id,
                                             open_only=not include_resolved)
    except AutosettleError as exc:
        fail(exc)
        return
    if as_json:
        emit_json([asdict(f) for f in flags])
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
