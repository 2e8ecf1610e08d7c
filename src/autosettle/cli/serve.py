"""``autosettle serve``: the platform in one process (REST API, terminal host, jobs), with
the channel the ``channel`` setting names and, when asked, the demo fleet."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from autosettle.cli.console import console, fail
from autosettle.cli.wiring import channel_for, describe_channel
from autosettle.config import get_settings
from autosettle.domain.errors import AutosettleError
from autosettle.jobs import ledger as ledger_jobs
from autosettle.jobs import payments as payment_jobs
from autosettle.jobs import print_queue as print_jobs
from autosettle.jobs import settlement as settlement_jobs
from autosettle.jobs.runner import JobRunner
from autosettle.logging_setup import configure_logging
from autosettle.services import database, printing
from autosettle.services.context import build_context
from autosettle.simulators import demo_seed as demo
from autosettle.simulators.demo_recon import DemoRecon


def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Run the platform: REST API, ISO 8583 terminal host, scheduler and background jobs."""
    import uvicorn

    from autosettle.api.app import create_app
    from autosettle.simulators.terminal import DemoFleet
    from autosettle.terminal_host.server import start_terminal_host
    from autosettle.web.app import mount_console

    settings = get_settings()
    configure_logging(settings.log_level)  # control characters escaped (log injection)
    try:
        channel = describe_channel(settings)
        ctx = build_context(settings, channel=channel_for(settings))
    except AutosettleError as exc:
        fail(exc)
        return
    bind_host = host or settings.api_host
    bind_port = port or settings.api_port
    keys_path = demo.keys_file(ctx)
    console.rule("autosettle")
    console.print(f"API           http://{bind_host}:{bind_port}  (docs: /docs, "
                  f"OpenAPI: /openapi.json, health: /healthz)")
    console.print(f"console       http://{bind_host}:{bind_port}/console/  (docs/console.md)")
    console.print(f"database      {database.display_url(settings.effective_database_url)}")
    console.print(f"channel       {channel} (setting AUTOSETTLE_CHANNEL)")
    console.print(f"terminal host ISO 8583 over TCP on {bind_host}:{settings.terminal_host_port} "
                  "(docs/terminal-integration.md)")
    if settings.demo_traffic_interval_s > 0:
        console.print(f"demo traffic  4 simulated POS terminals over ISO 8583 (TCP), each paying "
                      f"about every {settings.demo_traffic_interval_s:g} s "
                      "(watch: GET /v1/transactions; docs/terminal-simulator.md)")
        console.print(f"reconciliation the issuer's clearing file and the bank's return file "
                      f"after {2 * settings.intraday_interval_s} s, with a few discrepancies "
                      "(autosettle recon discrepancies; docs/reconciliation.md)")
    if settings.scheduler_enabled:
        console.print(f"scheduler     T+1/D+1 daily at {settings.settlement_time:%H:%M}, "
                      f"T+0/D+0 every {settings.intraday_interval_s} s (Asia/Shanghai)")
        if settings.risk_scoring_enabled:
            console.print(f"risk scoring  cash-out, each business date at "
                          f"{settings.risk_scoring_time:%H:%M} (before its T+1/D+1 run)")
    if settings.demo_traffic_interval_s > 0 and settings.print_queue_enabled:
        from autosettle.simulators.fleet import demo_terminals

        spool = settings.data_dir / "printer"
        printing.ensure_demo_printers(ctx, spool, demo_terminals())
        console.print(f"printers      demo slips as ESC/POS in {spool}/<terminal>.prn; read "
                      "them: autosettle printers last demo-hl000001 (docs/printers.md)")
    if keys_path.exists():
        keys = json.loads(keys_path.read_text())
        console.print(f"operator key  [bold]{keys.get('operator', '?')}[/bold]")
        console.print(f"try:          curl -H 'Authorization: Bearer {keys.get('operator')}' "
                      f"http://{bind_host}:{bind_port}/v1/merchants")
        console.print(f"all demo keys {keys_path}")
        logins = ", ".join(f"{u.username} / {u.password}" for u in demo.DEMO_USERS)
        console.print(f"demo logins   {logins}")
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
    # The ledger's balance checkpoints in the same thread, so one follows each settlement run.
    settlement_runner = JobRunner(settlement_jobs.tasks(ctx) + ledger_jobs.tasks(ctx))
    settlement_runner.start()
    # Printers answer within their timeout at best: their own thread, never in a payment's way.
    print_runner = JobRunner(print_jobs.tasks(ctx) if settings.print_queue_enabled else [])
    print_runner.start()
    # The demo day's reconciliation files (docs/reconciliation.md), once per business date.
    demo_recon = (DemoRecon(ctx, 2 * settings.intraday_interval_s).start()
                  if settings.demo_traffic_interval_s > 0 else None)
    try:
        uvicorn.run(mount_console(create_app(ctx), ctx), host=bind_host, port=bind_port,
                    log_level=settings.log_level.lower(), log_config=None)
    finally:
        if demo_recon is not None:
            demo_recon.stop()
        if fleet is not None:
            fleet.stop()
        terminal_host.stop()
        settlement_runner.stop()
        print_runner.stop()
        runner.stop()
