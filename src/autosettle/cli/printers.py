"""``autosettle printers add|list|set|remove|check|jobs|last|reprint|test|run``: receipt
printers, their diagnosis and the print queue (docs/printers.md)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from autosettle.cli.console import JsonFlag, console, context, emit_json, fail, guarded
from autosettle.domain.errors import AutosettleError
from autosettle.services import printing
from autosettle.services.context import SYSTEM
from autosettle.services.printing import NewPrinter, PrinterChanges

app = typer.Typer(help="Receipt printers: profiles, diagnosis, the print queue, reprints.",
                  no_args_is_help=True)
NameArg = Annotated[str, typer.Argument(help="The printer's name.")]
MARKS = {"ok": "[green]✔[/green]", "warning": "[yellow]![/yellow]", "failed": "[red]✘[/red]",
         "not_run": "[dim]·[/dim]"}


@app.command("add")
@guarded
def printers_add(
    name: NameArg,
    merchant_id: Annotated[str, typer.Option(help="15-character merchant id.")],
    terminal_id: Annotated[str, typer.Option(help="8-character terminal id.")],
    interface: Annotated[str, typer.Option(help="network, usb, serial, parallel or file.")],
    address: Annotated[str, typer.Option(help="network: host[:9100]; usb: 0416:5011; serial:"
                                         " /dev/ttyS0[@9600]; parallel: /dev/lp0; file: path")],
    width: Annotated[int, typer.Option(help="32 (58 mm) or 48 (80 mm) columns.")] = 32,
    encoding: Annotated[str, typer.Option(help="gb18030, gbk or ascii.")] = "gb18030",
    copies: Annotated[int, typer.Option(help="1-3: merchant, cardholder, bank copy.")] = 2,
    as_json: JsonFlag = False,
) -> None:
    """Give a terminal a receipt printer."""
    try:
        profile = printing.add_printer(context(), SYSTEM, NewPrinter(
            name, merchant_id, terminal_id, interface, address, width, encoding, copies))
    except AutosettleError as exc:
        fail(exc)
        return
    if as_json:
        emit_json(profile)
    else:
        console.print(f"printer {profile.name} added to terminal {terminal_id} "
                      f"({interface} {profile.address}); check it: autosettle printers check "
                      f"{profile.name}")


@app.command("list")
@guarded
def printers_list(merchant_id: Annotated[str | None, typer.Option()] = None,
                  as_json: JsonFlag = False) -> None:
    """List printers."""
    try:
        found = printing.list_printers(context(), SYSTEM, merchant_id)
    except AutosettleError as exc:
        fail(exc)
        return
    if as_json:
        emit_json(found)
        return
    table = Table("name", "merchant id", "terminal", "interface", "address", "width",
                  "copies", "enabled")
    for p in found:
        table.add_row(p.name, p.merchant_id, p.terminal_id, p.interface, p.address,
                      str(p.width_cols), str(p.copies), "yes" if p.enabled else "no")
    console.print(table)


@app.command("set")
@guarded
def printers_set(
    name: NameArg,
    interface: Annotated[str | None, typer.Option()] = None,
    address: Annotated[str | None, typer.Option()] = None,
    width: Annotated[int | None, typer.Option()] = None,
    encoding: Annotated[str | None, typer.Option()] = None,
    copies: Annotated[int | None, typer.Option()] = None,
    enabled: Annotated[bool | None, typer.Option("--enabled/--disabled")] = None,
) -> None:
    """Change a printer's settings."""
    try:
        p = printing.update_printer(context(), SYSTEM, name, PrinterChanges(
            interface, address, width, encoding, copies, enabled))
    except AutosettleError as exc:
        fail(exc)
        return
    console.print(f"printer {p.name}: {p.interface} {p.address}, {p.width_cols} columns, "
                  f"{p.copies} copies, {'enabled' if p.enabled else 'disabled'}")


@app.command("remove")
@guarded
def printers_remove(name: NameArg) -> None:
    """Remove a printer; its pending jobs are cancelled."""
    try:
        cancelled = printing.remove_printer(context(), SYSTEM, name)
    except AutosettleError as exc:
        fail(exc)
        return
    console.print(f"printer {name} removed ({cancelled} pending jobs cancelled)")


@app.command("check")
@guarded
def printers_check(name: NameArg,
                   test_page: Annotated[bool, typer.Option("--test-page/--no-test-page")]
                   = True, as_json: JsonFlag = False) -> None:
    """Find out what is wrong with a printer: interface, cable or network, status, paper,
    cover, test page, in that order. Exit status 1 when something is wrong."""
    try:
        found = printing.check(context(), SYSTEM, name, test_page)
    except AutosettleError as exc:
        fail(exc)
        return
    if as_json:
        emit_json(found)
    else:
        console.print(f"printer {found.printer_name} ({found.interface} {found.address})")
        for n, step in enumerate(found.steps, 1):
            detail = f" — {step.detail}" if step.detail else ""
            console.print(f" {MARKS[step.outcome.value]} {n}. {step.title_zh} "
                          f"{step.title_en}{detail}", highlight=False)
            if step.advice is not None:
                console.print(f"      问题: {step.advice.problem_zh}\n"
                              f"      处理: {step.advice.todo_zh}\n"
                              f"      problem: {step.advice.problem_en}\n"
                              f"      what to do: {step.advice.todo_en}", highlight=False)
        console.print("[green]打印机正常 the printer is ready[/green]" if found.ok
                      else "[red]打印机有故障 the printer needs attention[/red]")
    if not found.ok:
        raise typer.Exit(1)


@app.command("jobs")
@guarded
def printers_jobs(name: Annotated[str | None, typer.Argument(help="Only this printer.")]
                  = None,
                  state: Annotated[str | None, typer.Option(help="pending, printed or "
                                                            "cancelled.")] = None,
                  stuck: Annotated[bool, typer.Option("--stuck", help="Only jobs that are not "
                                                      "getting printed.")] = False,
                  limit: Annotated[int, typer.Option()] = 50, as_json: JsonFlag = False) -> None:
    """The print queue, newest first."""
    ctx = context()
    try:
        found = printing.list_jobs(ctx, SYSTEM, name, state, stuck, limit)
    except AutosettleError as exc:
        fail(exc)
        return
    if as_json:
        emit_json(found)
        return
    now = ctx.now()
    table = Table("job", "printer", "kind", "copy", "trace", "state", "tries", "next try",
                  "last error")
    for j in found:
        state_text = "stuck" if printing.is_stuck(j, now) else j.state.value
        table.add_row(str(j.job_id), j.printer_name, j.kind.value + (" dup" if j.duplicate
                                                                     else ""),
                      j.copy or "", j.stan or j.batch_no or "", state_text, str(j.attempts),
                      j.next_attempt_at.isoformat(timespec="seconds")
                      if j.state.value == "pending" else "", j.last_error or "")
    console.print(table)


@app.command("last")
@guarded
def printers_last(name: NameArg, count: Annotated[int, typer.Option(min=1, max=20)] = 1
                  ) -> None:
    """Show the last slips of a printer as text (what went, or goes, to the paper)."""
    ctx = context()
    try:
        profile = printing.get_printer(ctx, SYSTEM, name)
        found = printing.list_jobs(ctx, SYSTEM, name, None, False, count)
    except AutosettleError as exc:
        fail(exc)
        return
    for job in reversed(found):
        console.rule(f"job {job.job_id} {job.kind.value} {job.state.value}")
        console.print(printing.job_text(job, profile.width_cols), highlight=False,
                      markup=False)


@app.command("reprint")
@guarded
def printers_reprint(
    name: NameArg,
    trace: Annotated[str | None, typer.Option(help="凭证号 of the slip.")] = None,
    rrn: Annotated[str | None, typer.Option(help="参考号 of the slip.")] = None,
    txn_id: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Reprint (重打印 DUPLICATE) the last slip, or the one with this trace, RRN or id."""
    try:
        jobs = printing.reprint(context(), SYSTEM, name, trace=trace, rrn=rrn, txn_id=txn_id)
    except AutosettleError as exc:
        fail(exc)
        return
    console.print(f"{len(jobs)} duplicate slip(s) queued on {name}: "
                  + ", ".join(str(j.job_id) for j in jobs))


@app.command("test")
@guarded
def printers_test(name: NameArg) -> None:
    """Queue a test page (printed by the running queue, or by `printers run`)."""
    try:
        job = printing.print_test_page(context(), SYSTEM, name)
    except AutosettleError as exc:
        fail(exc)
        return
    console.print(f"test page queued on {name} (job {job.job_id})")


@app.command("run")
@guarded
def printers_run() -> None:
    """One round of the print queue now: enqueue new slips, print due jobs."""
    ctx = context()
    try:
        enqueued = printing.follow(ctx)
        run = printing.deliver(ctx)
    except AutosettleError as exc:
        fail(exc)
        return
    console.print(f"{enqueued} enqueued, {run.printed} printed, {run.failed} failed, "
                  f"{run.waiting} waiting")
