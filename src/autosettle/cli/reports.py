"""``autosettle reports NAME``: the reports of the console and the API, as files.

    autosettle reports statement --merchant 898310054110001 --from 2026-09-01 \\
        --to 2026-09-30 --format pdf --out statement.pdf
    autosettle reports daily-summary --date 2026-09-18 --format xlsx

Runs as the operator. Without ``--out`` the file is named after the report in the current
folder (CSV and JSON may go to standard output with ``--out -``). A report of more than
:data:`PROGRESS_ROWS_MIN` rows shows a progress bar on standard error. Files are created
0600 (they name merchants and their money).
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Final

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from autosettle.cli.console import context, err_console, guarded
from autosettle.domain.errors import ValidationError
from autosettle.private_files import open_private_binary
from autosettle.reports.catalog import ReportName, ReportRequest, build
from autosettle.reports.formats import ReportFormat, file_name, render
from autosettle.services.context import SYSTEM

PROGRESS_ROWS_MIN: Final = 1_000


def _day(text: str | None, name: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{name} must be YYYY-MM-DD, got {text!r}") from None


@guarded
def reports(
    name: Annotated[ReportName, typer.Argument(help="the report")],
    fmt: Annotated[ReportFormat, typer.Option("--format", "-f", help="file format")] = (
        ReportFormat.PDF),
    day: Annotated[str | None, typer.Option("--date", help=(
        "business date of daily-summary / terminal-health (YYYY-MM-DD, default today)"))] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="first day of the period")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="last day of the period")] = None,
    merchant: Annotated[str | None, typer.Option("--merchant", help=(
        "merchant id (required for statement)"))] = None,
    out: Annotated[str | None, typer.Option("--out", "-o", help=(
        "output file ('-': standard output, CSV and JSON only)"))] = None,
) -> None:
    """Write a report: daily-summary, settlement, statement, fee-analysis, terminal-health."""
    ctx = context()
    request = ReportRequest(name, _day(day, "--date"), _day(date_from, "--from"),
                            _day(date_to, "--to"), merchant)
    report = build(ctx, SYSTEM, request)
    if out == "-":
        if fmt in (ReportFormat.XLSX, ReportFormat.PDF):
            raise ValidationError(f"{fmt.value} cannot go to standard output: use --out FILE")
        render(report, fmt, sys.stdout.buffer)
        return
    path = Path(out) if out else Path(file_name(report, fmt))
    with open_private_binary(path) as handle:
        if report.row_count < PROGRESS_ROWS_MIN:
            render(report, fmt, handle)
        else:
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=err_console) as bar:
                task = bar.add_task(f"{report.name} → {path.name}", total=report.row_count)
                render(report, fmt, handle, progress=lambda n: bar.advance(task, n))
    err_console.print(f"{report.title}: {report.row_count} rows → {path}")
