"""Read rendered reports back (CSV, XLSX, PDF) for the report tests."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from openpyxl import load_workbook
from pypdf import PdfReader

from autosettle.reports.formats import ReportFormat, render
from autosettle.reports.model import ColumnType, Report


def rendered(report_factory: Any, fmt: ReportFormat) -> bytes:
    """Render a fresh report (rows may be a one-shot stream) as ``fmt``."""
    out = io.BytesIO()
    render(report_factory(), fmt, out)
    return out.getvalue()


def fen(text: str) -> int:
    """'-1234.50' → -123450 (exactly)."""
    value = Decimal(text) * 100
    assert value == value.to_integral_value(), text
    return int(value)


@dataclass
class Table:
    header: list[str]
    rows: list[list[Any]]
    totals: list[Any]
    extra: dict[str, str]


def parse_csv(data: bytes) -> Table:
    assert data.startswith(b"\xef\xbb\xbf"), "CSV must start with the UTF-8 BOM"
    lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    blank = lines.index([])
    body = lines[:blank]
    assert body[-1][0] == "合计", body[-1]
    return Table(body[0], body[1:-1], body[-1], {r[0]: r[1] for r in lines[blank + 1:] if r})


def csv_totals(report: Report, table: Table) -> dict[str, int]:
    """The totals row of a CSV as integers (fen for money)."""
    found: dict[str, int] = {}
    for column, cell in zip(report.columns, table.totals, strict=True):
        if column.key in report.totals:
            found[column.key] = fen(cell) if column.type is ColumnType.MONEY else int(cell)
    return found


def parse_xlsx(data: bytes) -> tuple[Any, list[tuple[Any, ...]]]:
    wb = load_workbook(io.BytesIO(data))
    ws = wb.worksheets[0]
    return ws, list(ws.iter_rows(values_only=False))


def xlsx_totals(report: Report, rows: list[tuple[Any, ...]]) -> dict[str, int]:
    """The totals row of an XLSX sheet: money cells numeric with a ¥ format, read back to
    fen exactly (round(yuan × 100): the cell holds the exact decimal text)."""
    last = rows[-1]
    assert last[0].value == "合计"
    found: dict[str, int] = {}
    for column, cell in zip(report.columns, last, strict=True):
        if column.key not in report.totals:
            continue
        assert isinstance(cell.value, int | float), (column.key, cell.value)
        if column.type is ColumnType.MONEY:
            assert "¥" in cell.number_format
            found[column.key] = round(Decimal(str(cell.value)) * 100)
        else:
            found[column.key] = int(cell.value)
    return found


def pdf_text(data: bytes) -> tuple[list[str], list[bool]]:
    """The text of every page, and per font whether its program is embedded."""
    reader = PdfReader(io.BytesIO(data))
    texts = [page.extract_text() for page in reader.pages]
    embedded: list[bool] = []
    for page in reader.pages:
        resources = page["/Resources"]
        fonts = resources.get("/Font", {}) if resources else {}
        for ref in fonts.values():
            font = ref.get_object()
            descendants = font.get("/DescendantFonts")
            target = descendants[0].get_object() if descendants else font
            descriptor = target.get("/FontDescriptor")
            if descriptor is None:
                embedded.append(False)
                continue
            d = descriptor.get_object()
            embedded.append(any(k in d for k in ("/FontFile", "/FontFile2", "/FontFile3")))
    return texts, embedded
