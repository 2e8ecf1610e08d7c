"""``autosettle terminal simulate``: a fleet of simulated POS terminals over real TCP.

The root CLI mounts :data:`app` as ``terminal``. The command runs where the
database is (it provisions the terminals through the service layer and reads the host's
batch totals to check its own); the terminal host may be another process (``autosettle
serve``) on ``--host``/``--port``, or one started here with ``--local``.

Exit status: 0 when every check passed, 1 when one failed (the summary says which), 2 for
a usage or set-up error.
"""

from __future__ import annotations

import json
import logging
import socket
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from autosettle.cli.console import console, context, err_console
from autosettle.domain.errors import AutosettleError
from autosettle.logging_setup import configure_logging
from autosettle.simulators.fleet import SIM_TERMINALS_MAX, prepare_fleet
from autosettle.simulators.report import Summary
from autosettle.simulators.terminal import (
    LATE_MARGIN_S,
    TIMEOUT_S_DEFAULT,
    SimulationConfig,
    run_simulation,
)
from autosettle.terminal_host.server import TerminalHostHandle, start_terminal_host

app = typer.Typer(help="Simulated POS terminals (ISO 8583 over TCP).", no_args_is_help=True)
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
TPS_MAX = 10_000.0
DURATION_S_MAX = 86_400.0
CONNECT_TIMEOUT_S = 3.0


@app.command("simulate")
def simulate(
    terminals: Annotated[int | None, typer.Option(
        "--terminals", min=1, max=SIM_TERMINALS_MAX,
        help="How many terminals (default: all demo terminals, or all of --create).")] = None,
    tps: Annotated[float, typer.Option(
        min=0.01, max=TPS_MAX, help="Cashier actions per second, whole fleet.")] = 2.0,
    duration: Annotated[float, typer.Option(
        min=0.1, max=DURATION_S_MAX, help="Seconds of traffic before the batch close.")] = 10.0,
    host: Annotated[str | None, typer.Option(
        help="Terminal host address (default: the API host setting).")] = None,
    port: Annotated[int | None, typer.Option(
        help="Terminal host port (default: terminal_host_port, 5800).")] = None,
    local: Annotated[bool, typer.Option(
        "--local", help="Start a terminal host in this process on a free port.")] = False,
    create: Annotated[int | None, typer.Option(
        "--create", min=1, max=SIM_TERMINALS_MAX,
        help="Use N simulator terminals SM000001.. (created if missing) instead of the "
             "demo terminals.")] = None,
    reprovision: Annotated[bool, typer.Option(
        "--reprovision", help="Reset and provision again terminals whose TMK the simulator "
        "does not hold.")] = False,
    unbalanced: Annotated[int, typer.Option(
        min=0, help="Terminals that lose a journal entry before the batch close (0320 "
        "upload).")] = 0,
    no_faults: Annotated[bool, typer.Option(
        "--no-faults", help="No late issuer answers and no dropped connections.")] = False,
    timeout: Annotated[float, typer.Option(
        min=0.2, max=120.0, help="Seconds a terminal waits for an answer.")] = TIMEOUT_S_DEFAULT,
    seed: Annotated[int | None, typer.Option(help="Seed of the cashiers' choices.")] = None,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Log every message on stderr.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Run N terminals against the terminal host, close their batches, check the totals."""
    configure_logging(logging.INFO if verbose else logging.WARNING)
    if verbose:
        logging.getLogger("autosettle.terminal_sim").setLevel(logging.DEBUG)
    ctx = context()
    target = (host or ctx.settings.api_host, port or ctx.settings.terminal_host_port)
    if not local and not _reachable(*target):
        err_console.print(f"[red]error[/red] no terminal host at {target[0]}:{target[1]}: "
                          "start one ('make run' or 'autosettle serve'), or pass --local")
        raise typer.Exit(EXIT_USAGE)
    try:
        fleet = prepare_fleet(ctx, terminals=terminals, create=create,
                              reprovision=reprovision)
    except AutosettleError as exc:
        err_console.print(f"[red]error[/red] {exc.code}: {exc.message}")
        raise typer.Exit(EXIT_USAGE) from None
    local_host: TerminalHostHandle | None = None
    try:
        if local:
            local_host = start_terminal_host(ctx, "127.0.0.1", 0)
            target = (local_host.host, local_host.port)
        config = SimulationConfig(
            tps=tps, duration_s=duration, host=target[0], port=target[1], timeout_s=timeout,
            seed=seed, faults=not no_faults, unbalanced=unbalanced)
        if not as_json:
            err_console.print(
                f"simulating {len(fleet.profiles)} terminal(s) at {tps:g} TPS for "
                f"{duration:g} s against {config.host}:{config.port}"
                + ("" if no_faults else f" (late issuer answers after "
                   f"{timeout + LATE_MARGIN_S:g} s; the host's channel timeout is "
                   f"{ctx.settings.channel_timeout_s:g} s here)"))
        summary = run_simulation(ctx, fleet, config)
    finally:
        fleet.release()
        if local_host is not None:
            local_host.stop()
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), indent=2, ensure_ascii=False))
    else:
        print_summary(summary)
    if not summary.ok:
        raise typer.Exit(EXIT_CHECK_FAILED)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), CONNECT_TIMEOUT_S):
            return True
    except OSError:
        return False


def _fen(minor: int) -> str:
    return f"{minor / 100:,.2f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def print_summary(summary: Summary, out: Console | None = None) -> None:
    """The human-readable summary."""
    out = out or console
    data: dict[str, Any] = summary.as_dict()
    out.print(f"[bold]{len(summary.terminals)} terminal(s)[/bold], {summary.duration_s:.1f} s: "
              f"{summary.financial_sent} financial message(s), {summary.tps_achieved:.2f}/s "
              f"(target {summary.tps_target:g} cashier actions/s)")
    codes = "  ".join(f"{code} ×{count}" for code, count in data["response_codes"].items())
    out.print(f"answers      {codes}")
    table = Table("message", "sent", "answered", "no answer", "approved", "approved CNY",
                  "codes", title_justify="left")
    for name, row in data["messages"].items():
        table.add_row(name, str(row["sent"]), str(row["answered"]), str(row["no_answer"]),
                      str(row["approved"]), _fen(row["approved_minor"]),
                      " ".join(f"{c}×{n}" for c, n in row["codes"].items()))
    out.print(table)
    latency = summary.latency()
    out.print(f"latency      p50 {_ms(latency['p50_ms'])}, p99 {_ms(latency['p99_ms'])}, "
              f"max {_ms(latency['max_ms'])} (answered messages; sales p50 "
              f"{_ms(latency['sale_p50_ms'])}, p99 {_ms(latency['sale_p99_ms'])})")
    faults, reversals = data["faults"], data["reversals"]
    out.print(f"faults       {faults['timeouts_injected']} late issuer answer(s), "
              f"{faults['dropped_connections']} dropped connection(s); reversals sent "
              f"{reversals['sent']}, acknowledged {reversals['acknowledged']}, pending "
              f"{reversals['pending_at_end']}")
    if data["recovered_journal_entries"]:
        out.print(f"recovered    {data['recovered_journal_entries']} transaction(s) of open "
                  "batches reloaded at sign-on")
    for batch in summary.batches:
        mark = "[green]ok[/green]" if batch.as_dict()["ok"] else "[red]MISMATCH[/red]"
        domestic = batch.terminal_totals["domestic"]
        foreign = batch.terminal_totals["foreign"]
        out.print(f"batch close  {batch.terminal_id} batch {batch.batch_no}: {batch.verdict} "
                  f"(expected {'balanced' if batch.expected_balanced else 'not balanced'}) "
                  f"{mark}; debit {domestic['debit_count'] + foreign['debit_count']} / "
                  f"{_fen(domestic['debit_amount_minor'] + foreign['debit_amount_minor'])}, "
                  f"credit {domestic['credit_count'] + foreign['credit_count']} / "
                  f"{_fen(domestic['credit_amount_minor'] + foreign['credit_amount_minor'])}"
                  + (f"; upload {' '.join(batch.upload_codes)}, flags {batch.flags}"
                     if batch.upload_codes else ""))
    for reason in summary.skipped:
        out.print(f"[yellow]skipped[/yellow]      {reason}")
    for check in summary.checks:
        mark = "[green]✓[/green]" if check.ok else "[red]✗[/red]"
        out.print(f"check        {mark} {check.name}: {check.detail}")
    out.print("[green]all checks passed[/green]" if summary.ok
              else "[red]some checks failed[/red]")
