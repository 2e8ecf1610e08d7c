"""XLSX rendering (openpyxl, write-only: rows stream to disk, memory stays flat).

Typed cells: money is numeric yuan built exactly from integer fen
(:func:`~autosettle.reports.model.fen_to_decimal`, written as its decimal text, never via a
float) with a ``¥#,##0.00`` number format; counts are integers; dates are dates and times
Shanghai wall-clock datetimes. The header row is frozen, columns have widths, the totals row
is bold. A second sheet holds the title, parameters and summary figures.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import Cell as SheetCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from autosettle.domain.calendar import SHANGHAI
from autosettle.reports.model import Cell, Column, ColumnType, Report, fen_to_decimal

MONEY_FORMAT = '"¥"#,##0.00;-"¥"#,##0.00'
COUNT_FORMAT = "#,##0"
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
PROGRESS_EVERY_ROWS = 500
_FORMATS = {ColumnType.MONEY: MONEY_FORMAT, ColumnType.COUNT: COUNT_FORMAT,
            ColumnType.DATE: DATE_FORMAT, ColumnType.DATETIME: DATETIME_FORMAT}
_HEADER_FILL = PatternFill("solid", fgColor="DDE7F6")


def excel_value(value: Cell, column_type: ColumnType) -> Any:
    """The value a cell holds: exact yuan for money, naive Shanghai time for datetimes."""
    if value is None:
        return None
    if column_type is ColumnType.MONEY and isinstance(value, int):
        return fen_to_decimal(value)
    if isinstance(value, datetime):
        return value.astimezone(SHANGHAI).replace(tzinfo=None)
    if isinstance(value, date | int | str):
        return value
    return str(value)  # pragma: no cover - Cell has no other types


def _cell(ws: WriteOnlyWorksheet, value: Cell, column: Column, bold: bool = False) -> SheetCell:
    cell = WriteOnlyCell(ws, value=excel_value(value, column.type))
    if column.type is ColumnType.MONEY and isinstance(value, int):
        # openpyxl writes numbers with "%.16g" (through a float): 9824.03 would reach the
        # file as 9824.030000000001. The numeric cell gets the exact decimal text instead
        # (tests/unit/test_report_formats.py reads the sheet XML back).
        setattr(cell, "_value", str(fen_to_decimal(value)))  # noqa: B010 - private slot
    number_format = _FORMATS.get(column.type)
    if number_format is not None:
        cell.number_format = number_format
    if bold:
        cell.font = Font(bold=True)
    return cell


def write_xlsx(report: Report, out: IO[bytes],
               progress: Callable[[int], None] | None = None) -> None:
    """Write the workbook to ``out`` (a binary file opened for writing)."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("报表 Report")
    ws.freeze_panes = "A2"
    for index, column in enumerate(report.columns, start=1):
        ws.column_dimensions[get_column_letter(index)].width = column.width + 2
    header = []
    for column in report.columns:
        cell = WriteOnlyCell(ws, value=column.title)
        cell.font = Font(bold=True)
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(horizontal="center")
        header.append(cell)
    ws.append(header)
    done = 0
    for row in report.rows:
        ws.append([_cell(ws, v, c) for v, c in zip(row, report.columns, strict=True)])
        done += 1
        if progress is not None and done % PROGRESS_EVERY_ROWS == 0:
            progress(PROGRESS_EVERY_ROWS)
    if progress is not None and done % PROGRESS_EVERY_ROWS:
        progress(done % PROGRESS_EVERY_ROWS)
    ws.append([_cell(ws, v, c, bold=True)
               for v, c in zip(report.totals_row(), report.columns, strict=True)])
    _summary(wb, report)
    wb.save(out)


def _summary(wb: Workbook, report: Report) -> None:
    ws = wb.create_sheet("摘要 Summary")
    ws.column_dimensions["A"].width = 34
    ws.column_dimensions["B"].width = 40
    title = WriteOnlyCell(ws, value=report.title)
    title.font = Font(bold=True, size=14)
    ws.append([title])
    ws.append(["商户 Merchant", f"{report.header.name} {report.header.merchant_id or ''}"
               .strip()])
    for label, value in report.parameters:
        ws.append([label, value])
    for figure in report.figures:
        column = Column(figure.key, figure.label, figure.type)
        ws.append([figure.label, _cell(ws, figure.value, column)])
    if report.generated_at is not None:
        at = Column("generated_at", "", ColumnType.DATETIME)
        ws.append(["生成时间 Generated at", _cell(ws, report.generated_at, at)])
    for note in report.notes:
        ws.append([note])
