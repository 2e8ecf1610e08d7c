"""Settlement commands of ``autosettle`` (mounted on the main app by ``autosettle.cli``):

* ``autosettle settle --date YYYY-MM-DD [--cycles T1,D1] [--json]`` (with a progress bar)
* ``autosettle payouts export --date YYYY-MM-DD [--json]``
* ``autosettle calendar next --cycle T1 --date YYYY-MM-DD [--json]``
* ``autosettle maintenance announce --start ... --end ... --note ...``
* ``autosettle jobs runs [--job NAME] [--json]``
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from autosettle.cli.console import JsonFlag, console, context, emit_json, err_console, guarded
from autosettle.config import get_settings
from autosettle.domain.calendar import SHANGHAI, BusinessCalendar, SettlementCycle
from autosettle.domain.calendar import settlement_date as calendar_settlement_date
from autosettle.domain.errors import ValidationError
from autosettle.domain.money import Money
from autosettle.services import (
    business_dates,
    leases,
    maintenance,
    payouts,
    settlement,
    settlement_items,
)
from autosettle.services.context import SYSTEM

app = typer.Typer(no_args_is_help=True)
payouts_app = typer.Typer(help="Payout files.", no_args_is_help=True)
calendar_app = typer.Typer(help="The business calendar.", no_args_is_help=True)
maintenance_app = typer.Typer(help="Maintenance windows.", no_args_is_help=True)
jobs_app = typer.Typer(help="Scheduled job runs.", no_args_is_help=True)
app.add_typer(payouts_app, name="payouts")
app.add_typer(calendar_app, name="calendar")
app.add_typer(maintenance_app, name="maintenance")
app.add_typer(jobs_app, name="jobs")


def _day(text: str, name: str = "--date") -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{name} must be YYYY-MM-DD, got {text!r}") from None


def _instant(text: str, name: str) -> datetime:
    """ISO 8601; without an offset it is Shanghai wall-clock time."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{name} must be ISO 8601, e.g. 2026-10-01T01:00+08:00, "
                              f"got {text!r}") from None
    return value.replace(tzinfo=SHANGHAI) if value.tzinfo is None else value


def _money(minor: int) -> str:
    return Money(minor).format()


@app.command("settle")
@guarded
def settle(
    on: Annotated[str, typer.Option("--date", help="Settlement date, YYYY-MM-DD.")],
    cycles: Annotated[str, typer.Option(help="Comma-separated cycles.")] = "T1,D1",
    as_json: JsonFlag = False,
) -> None:
    """Settle every item due by a date (idempotent: a second run changes nothing).

    The date may not be after the current business date (Shanghai, cut-off 23:00)."""
    run_date = _day(on)
    parsed = tuple(dict.fromkeys(SettlementCycle.parse(c).value
                                 for c in cycles.split(",") if c.strip()))
    if not parsed:
        raise ValidationError("--cycles names no cycle")
    ctx = context()
    business_dates.require_run_date(ctx, run_date)  # refused before the bar is drawn
    total = settlement.merchant_count(ctx)  # the bar moves per merchant looked at
    if as_json:
        done = leases.settle_now(ctx, SYSTEM, run_date, parsed)
    else:
        with Progress(TextColumn("settling {task.description}"), BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), console=err_console,
                      transient=False) as bar:
            task = bar.add_task(f"{run_date.isoformat()} {'+'.join(parsed)}", total=total)
            done = leases.settle_now(ctx, SYSTEM, run_date, parsed,
                                     progress=lambda: bar.advance(task))
    summary = done.summary
    if as_json:
        emit_json({"status": done.outcome.status, "job": done.outcome.job_name,
                    "run_key": done.outcome.run_key, **dict(done.outcome.counts),
                    "error": done.outcome.error})
    elif summary is not None:
        table = Table("settlement run", summary.run_key)
        for name, value in (
                ("batches", str(summary.batches)), ("items", str(summary.items)),
                ("gross", _money(summary.gross_minor)), ("fees", _money(summary.fee_minor)),
                ("payout", _money(summary.payout_minor)),
                ("already settled", str(summary.skipped_existing)),
                ("carried (merchant not active)", str(len(summary.carried_merchants))),
                ("payouts blocked", str(summary.blocked_payouts)),
                ("merchants failed", str(len(summary.errors)))):
            table.add_row(name, value)
        console.print(table)
        for error in summary.errors:
            err_console.print(f"[yellow]merchant failed[/yellow] {error}")
    if done.outcome.status != leases.DONE:
        err_console.print(f"[red]error[/red] settlement run failed: {done.outcome.error}")
        raise typer.Exit(1)


@payouts_app.command("export")
@guarded
def payouts_export(
    on: Annotated[str, typer.Option("--date", help="Payouts due by this date.")],
    as_json: JsonFlag = False,
) -> None:
    """Write the payout files (CSV and fixed-width) for a date; pending payouts become sent.

    The date may not be after the current business date."""
    file = payouts.export_payouts(context(), _day(on))
    if as_json:
        emit_json({"date": file.date.isoformat(), "csv": str(file.csv_path),
                    "fixed_width": str(file.fixed_width_path), "count": file.count,
                    "total_minor": file.total_minor})
        return
    console.print(f"{file.count} payout(s), total {_money(file.total_minor)}")
    console.print(f"  CSV          {file.csv_path}")
    console.print(f"  fixed-width  {file.fixed_width_path}")


def _calendar() -> BusinessCalendar:
    """The business calendar with the operator's overrides; without a database yet, the
    holiday data alone."""
    found = settlement_items.calendar_at(get_settings().effective_database_url)
    if found is None:
        err_console.print("[yellow]note[/yellow] no database yet: calendar overrides "
                          "not applied")
        return BusinessCalendar()
    return found


@calendar_app.command("next")
@guarded
def calendar_next(
    cycle: Annotated[str, typer.Option(help="T0, T1, D0 or D1 (T+1 ... accepted).")],
    on: Annotated[str, typer.Option("--date", help="Business date, YYYY-MM-DD.")],
    as_json: JsonFlag = False,
) -> None:
    """Print the settlement date of a business date on a cycle, as YYYY-MM-DD."""
    business_day = _day(on)
    code = SettlementCycle.parse(cycle).value
    cal = _calendar()
    result = calendar_settlement_date(business_day, code, cal)
    for warning in cal.alerts():
        err_console.print(f"[yellow]warning[/yellow] {warning.message}")
    if as_json:
        emit_json({"business_date": business_day.isoformat(), "cycle": code,
                    "settlement_date": result.isoformat(),
                    "business_date_is_workday": cal.is_workday(business_day),
                    "settlement_date_is_workday": cal.is_workday(result)})
        return
    typer.echo(result.isoformat())


@maintenance_app.command("announce")
@guarded
def maintenance_announce(
    start: Annotated[str, typer.Option(help="Start, ISO 8601 (no offset: Shanghai time).")],
    end: Annotated[str, typer.Option(help="End, ISO 8601 (no offset: Shanghai time).")],
    note: Annotated[str, typer.Option(help="What merchants are told.")],
    as_json: JsonFlag = False,
) -> None:
    """Announce a maintenance window: jobs due inside it run when it ends."""
    ctx = context()
    window = maintenance.announce(ctx, SYSTEM, _instant(start, "--start"),
                                  _instant(end, "--end"), note)
    runs = maintenance.deferred_runs(window, ctx.settings.settlement_time,
                                     ctx.settings.cutoff, ctx.settings.intraday_interval_s)
    if as_json:
        emit_json({"window_id": window.window_id, "starts_at": window.starts_at.isoformat(),
                    "ends_at": window.ends_at.isoformat(), "note": window.note,
                    "deferred_runs": [{"job": r.job, "scheduled_at": r.scheduled_at
                                       .isoformat(), "runs_at": r.runs_at.isoformat()}
                                      for r in runs]})
        return
    local_end = window.ends_at.astimezone(SHANGHAI)
    console.print(f"maintenance window {window.window_id} announced, until "
                  f"{local_end:%Y-%m-%d %H:%M} (Shanghai)")
    for r in runs:
        console.print(f"  {r.job:<16} due {r.scheduled_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}"
                      f" runs at {r.runs_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}")


@jobs_app.command("runs")
@guarded
def jobs_runs(
    job: Annotated[str | None, typer.Option(help="Only this job.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=leases.RECENT_RUNS_MAX)] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Recent runs of the scheduler's jobs and of manual settlements."""
    runs = leases.recent_runs(context(), job, limit)
    if as_json:
        emit_json([{"job": r.job_name, "run_key": r.run_key, "status": r.status,
                     "owner": r.owner, "started_at": r.started_at.isoformat(),
                     "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                     "counts": r.counts, "error": r.error} for r in runs])
        return
    table = Table("job", "run key", "status", "finished (UTC)", "result")
    for r in runs:
        detail = r.error or ", ".join(f"{k}={v}" for k, v in r.counts.items()
                                      if k in ("batches", "count", "payout_minor",
                                               "total_minor", "open_terminal_batches"))
        table.add_row(r.job_name, r.run_key, r.status,
                      f"{r.finished_at:%m-%d %H:%M:%S}" if r.finished_at else "", detail)
    console.print(table)
