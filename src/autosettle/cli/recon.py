"""Reconciliation commands (``autosettle recon ...``; docs/reconciliation.md):

* ``recon import FILE --source acp|statement-csv|bank [--date D]`` (with a progress bar)
* ``recon run --date D [--channel issuer-sim|bank]``
* ``recon discrepancies [--date D] [--state open|resolved] [--class C] [--owner NAME]
  [--after ID] [--limit N]``
* ``recon assign ID --owner NAME`` / ``recon resolve ID --action adjust|accept|refund|resettle
  --reason TEXT``
* ``recon close --date D [--channel C]``
* ``recon summary --date D [--format csv|xlsx]``
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from autosettle.cli.console import JsonFlag, console, context, emit_json, err_console, guarded
from autosettle.domain.errors import ValidationError
from autosettle.domain.money import Money
from autosettle.services import recon
from autosettle.services.context import SYSTEM

app = typer.Typer(help="Reconciliation (对账): the other side's files against our records.",
                  no_args_is_help=True)
DEFAULT_CHANNEL = "issuer-sim"


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"--date must be YYYY-MM-DD, got {text!r}") from None


def _money(minor: int | None) -> str:
    return "" if minor is None else Money(minor).format()


@app.command("import")
@guarded
def import_(
    file: Annotated[Path, typer.Argument(help="The file to import.")],
    source: Annotated[str, typer.Option("--source", help="acp, statement-csv, bank, or a "
                                        "source of AUTOSETTLE_RECON_SOURCES_FILE.")],
    on: Annotated[str | None, typer.Option("--date", help="The file's business date when "
                                           "it has no header saying so.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Import one file: refused if imported before; rejected whole when truncated, when its
    control totals are wrong, or (per source) when it has bad lines; else bad lines are
    quarantined. Exit status 1 when rejected."""
    ctx = context()
    size = file.stat().st_size if file.is_file() else 0
    try:
        if as_json:
            result = recon.import_file(ctx, SYSTEM, file, source, file_date=_day(on))
        else:
            with Progress(TextColumn("importing {task.description}"), BarColumn(),
                          DownloadColumn(), TimeElapsedColumn(), console=err_console) as bar:
                task = bar.add_task(file.name, total=size)
                result = recon.import_file(ctx, SYSTEM, file, source, file_date=_day(on),
                                           progress=lambda n: bar.advance(task, n))
    except recon.ImportRejected as rejected:
        _report(rejected.result, as_json)
        raise typer.Exit(1) from None
    _report(result, as_json)


def _report(result: recon.ImportResult, as_json: bool) -> None:
    if as_json:
        emit_json(result)
        return
    verdict = "[green]imported[/green]" if result.accepted else "[red]rejected[/red]"
    console.print(f"{verdict} {result.source} file for {result.file_date}: {result.lines} "
                  f"line(s), {result.imported} imported, {len(result.bad)} bad")
    for problem in result.problems:
        err_console.print(f"[red]problem[/red] {problem}")
    for number, reason in result.bad[:50]:
        err_console.print(f"  line {number}: {reason}")
    if len(result.bad) > 50:
        err_console.print(f"  ... and {len(result.bad) - 50} more")


@app.command("run")
@guarded
def run(
    on: Annotated[str, typer.Option("--date", help="Business date, YYYY-MM-DD.")],
    channel: Annotated[str, typer.Option(help="issuer-sim, bank, ...")] = DEFAULT_CHANNEL,
    as_json: JsonFlag = False,
) -> None:
    """Match a channel's (or the bank's) lines of a date against our records."""
    result = recon.run_day(context(), SYSTEM, _day(on) or date.min, channel)
    if as_json:
        emit_json(result)
        return
    table = Table("class", "count", title=f"{channel} {on}: {result.ours} ours, "
                  f"{result.theirs} theirs")
    for klass, count in result.counts.items():
        table.add_row(klass, str(count))
    console.print(table)
    console.print(f"cleared {_money(result.cleared_minor)}; auto-resolved "
                  f"{result.auto_resolved}")


@app.command("discrepancies")
@guarded
def discrepancies(
    on: Annotated[str | None, typer.Option("--date")] = None,
    channel: Annotated[str | None, typer.Option()] = None,
    state: Annotated[str | None, typer.Option(help="open or resolved")] = None,
    klass: Annotated[str | None, typer.Option("--class")] = None,
    owner: Annotated[str | None, typer.Option(help="only this owner's")] = None,
    after: Annotated[int | None, typer.Option(help="ids above this one (the next page)")]
    = None,
    limit: Annotated[int, typer.Option(min=1, max=5000)] = 500,
    as_json: JsonFlag = False,
) -> None:
    """The discrepancy queue in id order: age, owner, state, both amounts."""
    rows = recon.list_discrepancies(context(), SYSTEM, channel=channel, on=_day(on),
                                    state=state, klass=klass, owner=owner, after=after,
                                    limit=limit)
    if as_json:
        emit_json(rows)
        return
    table = Table("id", "date", "channel", "class", "merchant", "ours", "theirs", "state",
                  "owner", "age (d)", "resolution")
    for d in rows:
        table.add_row(str(d.discrepancy_id), d.business_date.isoformat(), d.channel, d.klass,
                      d.merchant_id or "", _money(d.our_amount_minor),
                      _money(d.their_amount_minor), d.state, d.owner or "", str(d.age_days),
                      d.resolution or "")
    console.print(table)


@app.command("assign")
@guarded
def assign(discrepancy_id: int, owner: Annotated[str, typer.Option()],
           as_json: JsonFlag = False) -> None:
    """Give a discrepancy an owner."""
    d = recon.assign(context(), SYSTEM, discrepancy_id, owner)
    emit_json(d) if as_json else console.print(f"{d.discrepancy_id} owned by {d.owner}")


@app.command("resolve")
@guarded
def resolve(
    discrepancy_id: int,
    action: Annotated[str, typer.Option(help="adjust, accept, refund or resettle")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")],
    as_json: JsonFlag = False,
) -> None:
    """Close a discrepancy: post an adjustment, request a refund or re-settlement, or accept."""
    d = recon.resolve(context(), SYSTEM, discrepancy_id, action, reason)
    if as_json:
        emit_json(d)
    else:
        console.print(f"{d.discrepancy_id} {d.state} ({d.resolution})"
                      + (f", entry {d.entry_key}" if d.entry_key else ""))


@app.command("close")
@guarded
def close(
    on: Annotated[str, typer.Option("--date")],
    channel: Annotated[str, typer.Option()] = DEFAULT_CHANNEL,
    as_json: JsonFlag = False,
) -> None:
    """Close a business date whose discrepancies are all resolved; it cannot change after."""
    done = recon.close_day(context(), SYSTEM, _day(on) or date.min, channel)
    emit_json(done) if as_json else console.print(f"{channel} {on} closed")


@app.command("summary")
@guarded
def summary(
    on: Annotated[str, typer.Option("--date")],
    fmt: Annotated[str, typer.Option("--format", help="csv or xlsx")] = "csv",
    as_json: JsonFlag = False,
) -> None:
    """Write the daily reconciliation summary (per channel: counts and amounts per class,
    unresolved ageing) under <data_dir>/recon/."""
    ctx = context()
    day = _day(on) or date.min
    path = recon.export_summary(ctx, SYSTEM, day, fmt)
    if as_json:
        emit_json({"path": str(path), "rows": recon.summary(ctx, SYSTEM, day)})
    else:
        console.print(f"summary written to {path}")
