"""``autosettle``: the command line (Typer + Rich). Commands that report accept ``--json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from autosettle import settlement_cli
from autosettle.cli_support import (
    JsonFlag,
    console,
    context,
    emit_json,
    fail,
    guarded,
)
from autosettle.config import Settings, get_settings
from autosettle.domain.errors import AutosettleError
from autosettle.domain.merchants import AccountType, CycleCode, MerchantType
from autosettle.jobs import payments as payment_jobs
from autosettle.jobs import settlement as settlement_jobs
from autosettle.jobs.runner import JobRunner
from autosettle.logging_setup import configure_logging
from autosettle.services import apikeys, demo, merchants
from autosettle.services.context import SYSTEM, Role, build_context
from autosettle.store import migrate
from autosettle.terminal_host.cli import terminals_host_app
from autosettle.terminal_host.simulate_cli import simulate_app

app = typer.Typer(help="autosettle: POS acquiring and automatic settlement.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
merchants_app = typer.Typer(help="Merchants.", no_args_is_help=True)
terminals_app = typer.Typer(help="Terminals.", no_args_is_help=True)
apikeys_app = typer.Typer(help="API keys.", no_args_is_help=True)
demo_app = typer.Typer(help="Demo data.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(merchants_app, name="merchants")
app.add_typer(terminals_app, name="terminals")
app.add_typer(apikeys_app, name="apikeys")
app.add_typer(demo_app, name="demo")
app.add_typer(settlement_cli.app)  # settle, payouts, calendar, maintenance, jobs
# provision, status, reset-tmk, batch-flags: the terminal host's commands under `terminals`
terminals_app.registered_commands.extend(terminals_host_app.registered_commands)
app.add_typer(simulate_app, name="terminal")

def _settings() -> Settings:
    return get_settings()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (creates the embedded SQLite file if needed)."""
    settings = _settings()
    migrate.upgrade(settings.effective_database_url)
    console.print(f"database up to date: {_safe_url(settings.effective_database_url)}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@merchants_app.command("add")
@guarded
def merchants_add(
    merchant_id: Annotated[str, typer.Option(help="15-character merchant id (field 42).")],
    legal_name: Annotated[str, typer.Option(help="Registered legal name.")],
    mcc: Annotated[str, typer.Option(help="4-digit merchant category code.")],
    merchant_type: Annotated[MerchantType, typer.Option("--type")] = MerchantType.ENTERPRISE,
    cycle: Annotated[CycleCode, typer.Option(help="Settlement cycle.")] = CycleCode.T1,
    short_name: Annotated[str | None, typer.Option()] = None,
    single_limit_minor: Annotated[int | None, typer.Option(help="Per-sale limit, fen.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Onboard a merchant."""
    try:
        merchant = merchants.create_merchant(context(), SYSTEM, merchants.NewMerchant(
            merchant_id, legal_name, merchant_type, mcc, short_name, cycle, single_limit_minor))
    except AutosettleError as exc:
        fail(exc)
        return
    if as_json:
        emit_json(merchant)
    else:
        console.print(f"merchant {merchant.merchant_id} created")


@merchants_app.command("list")
@guarded
def merchants_list(as_json: JsonFlag = False,
                   limit: Annotated[int, typer.Option(min=1, max=200)] = 200) -> None:
    """List merchants."""
    page = merchants.list_merchants(context(), SYSTEM, None, limit)
    if as_json:
        emit_json(list(page.items))
        return
    table = Table("merchant id", "name", "type", "mcc", "cycle", "status")
    for m in page.items:
        table.add_row(m.merchant_id, m.short_name, m.merchant_type, m.mcc, m.settlement_cycle,
                      m.status)
    console.print(table)


@merchants_app.command("add-account")
@guarded
def merchants_add_account(
    merchant_id: Annotated[str, typer.Option()],
    bank_name: Annotated[str, typer.Option()],
    account_number: Annotated[str, typer.Option()],
    holder_name: Annotated[str, typer.Option()],
    account_type: Annotated[AccountType, typer.Option()] = AccountType.CORPORATE,
    as_json: JsonFlag = False,
) -> None:
    """Register a merchant's settlement bank account."""
    try:
        account = merchants.add_settlement_account(context(), SYSTEM, merchant_id,
                                                   merchants.NewSettlementAccount(
                                                       bank_name, account_number, holder_name,
                                                       account_type))
    except AutosettleError as exc:
        fail(exc)
        return
    if as_json:
        emit_json(account)
    else:
        console.print(f"account {account.account_number_masked} added "
                      f"({'verified' if account.verified else 'NOT verified: holder mismatch'})")


@terminals_app.command("add")
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


@terminals_app.command("list")
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


@apikeys_app.command("create")
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


@apikeys_app.command("revoke")
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


@demo_app.command("seed")
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


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Run the platform: REST API, ISO 8583 terminal host, scheduler and background jobs."""
    import uvicorn

    from autosettle.api.app import create_app
    from autosettle.terminal_host.server import start_terminal_host
    from autosettle.terminal_host.simulator import DemoFleet

    settings = _settings()
    configure_logging(settings.log_level)  # control characters escaped (log injection)
    ctx = build_context(settings)
    bind_host = host or settings.api_host
    bind_port = port or settings.api_port
    keys_path = demo.keys_file(ctx)
    console.rule("autosettle")
    console.print(f"API           http://{bind_host}:{bind_port}  (docs: /docs, "
                  f"OpenAPI: /openapi.json, health: /healthz)")
    console.print(f"database      {_safe_url(settings.effective_database_url)}")
    console.print(f"terminal host ISO 8583 over TCP on {bind_host}:{settings.terminal_host_port} "
                  "(docs/terminal-integration.md)")
    if settings.demo_traffic_interval_s > 0:
        console.print(f"demo traffic  4 simulated POS terminals over ISO 8583 (TCP), each paying "
                      f"about every {settings.demo_traffic_interval_s:g} s "
                      "(watch: GET /v1/transactions; docs/terminal-simulator.md)")
    if settings.scheduler_enabled:
        console.print(f"scheduler     T+1/D+1 daily at {settings.settlement_time:%H:%M}, "
                      f"T+0/D+0 every {settings.intraday_interval_s} s (Asia/Shanghai)")
    if keys_path.exists():
        keys = json.loads(keys_path.read_text())
        console.print(f"operator key  [bold]{keys.get('operator', '?')}[/bold]")
        console.print(f"try:          curl -H 'Authorization: Bearer {keys.get('operator')}' "
                      f"http://{bind_host}:{bind_port}/v1/merchants")
        console.print(f"all demo keys {keys_path}")
    console.rule()
    runner = JobRunner(payment_jobs.tasks(ctx))
    runner.start()
    terminal_host = start_terminal_host(ctx, bind_host, settings.terminal_host_port)
    # The demo traffic goes over the real TCP path: a small fleet of simulated terminals
    # (in place of a cashier calling the payment service, whose transactions would land in
    # the same terminal batches unseen by the terminals and unbalance every batch close).
    fleet = (DemoFleet(ctx, bind_host, terminal_host.port,
                       settings.demo_traffic_interval_s).start()
             if settings.demo_traffic_interval_s > 0 else None)
    # Settlement runs can be long: their own thread, so reversal retries never wait on them.
    settlement_runner = JobRunner(settlement_jobs.tasks(ctx))
    settlement_runner.start()
    try:
        uvicorn.run(create_app(ctx), host=bind_host, port=bind_port,
                    log_level=settings.log_level.lower(), log_config=None)
    finally:
        if fleet is not None:
            fleet.stop()
        terminal_host.stop()
        settlement_runner.stop()
        runner.stop()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
