"""The output formats and one entry point that renders a report in any of them."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import IO, Final

from autosettle.reports.model import Report
from autosettle.reports.pdf import write_pdf
from autosettle.reports.tabular import iter_csv, iter_json
from autosettle.reports.xlsx import write_xlsx


class ReportFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    PDF = "pdf"
    JSON = "json"


MEDIA_TYPES: Final = {
    ReportFormat.CSV: "text/csv; charset=utf-8",
    ReportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ReportFormat.PDF: "application/pdf",
    ReportFormat.JSON: "application/json",
}


def file_name(report: Report, fmt: ReportFormat) -> str:
    """``statement-898310000000001-2026-10-01_2026-10-31.pdf`` and the like (ASCII only)."""
    scope = report.header.merchant_id or "all"
    period = "_".join(v for _, v in report.parameters[:1]).replace(" ~ ", "_")
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "" for ch in period)
    return f"{report.name}-{scope}-{safe}.{fmt.value}"


def render(report: Report, fmt: ReportFormat, out: IO[bytes],
           progress: Callable[[int], None] | None = None) -> None:
    """Write ``report`` as ``fmt`` to ``out``; ``progress(n)`` is told of every n rows."""
    if fmt is ReportFormat.XLSX:
        write_xlsx(report, out, progress)
    elif fmt is ReportFormat.PDF:
        write_pdf(report, out, progress)
    else:
        chunks = iter_csv if fmt is ReportFormat.CSV else iter_json
        for chunk in chunks(report, progress):
            out.write(chunk)
