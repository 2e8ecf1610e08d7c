"""Money in every report format, exactly (hypothesis), and the renderers' typed cells."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import UTC, date, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from autosettle.reports.catalog import Movement, describe, movement_of
from autosettle.reports.charts import ChartUnit, format_value
from autosettle.reports.formats import ReportFormat, file_name, render
from autosettle.reports.model import (
    Column,
    ColumnType,
    Figure,
    Header,
    Report,
    fen_text,
    fen_to_decimal,
)
from autosettle.reports.pdf import pdf_cell
from autosettle.reports.tabular import text_cell
from autosettle.reports.xlsx import MONEY_FORMAT, excel_value

LEDGER_FEN = st.integers(-10**15, 10**15)  # journal_lines.amount_minor's CHECK range


def money_report(values: list[int]) -> Report:
    columns = (Column("day", "日期", ColumnType.DATE), Column("at", "时间", ColumnType.DATETIME),
               Column("what", "摘要", ColumnType.TEXT), Column("n", "笔数", ColumnType.COUNT),
               Column("amount", "金额", ColumnType.MONEY))
    rows = [(date(2026, 9, 18), datetime(2026, 9, 18, 4, 5, 6, tzinfo=UTC), f"第{i}笔", i, v)
            for i, v in enumerate(values)]
    return Report("test", "测试 Test", Header("898310000000001", "华联超市"),
                  (("期间 Period", "2026-09-18"),), columns, rows, len(rows),
                  {"n": sum(range(len(values))), "amount": sum(values)},
                  figures=(Figure("closing", "期末余额", sum(values)),))


@given(LEDGER_FEN)
def test_decimal_yuan_is_exact(fen: int) -> None:
    value = fen_to_decimal(fen)
    assert value * 100 == fen
    assert value.as_tuple().exponent == -2
    assert "E" not in str(value)


@given(LEDGER_FEN)
def test_csv_text_is_exact(fen: int) -> None:
    text = fen_text(fen)
    assert re.fullmatch(r"-?\d+\.\d\d", text)
    assert Decimal(text) * 100 == fen
    assert text_cell(fen, ColumnType.MONEY) == text


@given(LEDGER_FEN)
def test_pdf_text_is_exact(fen: int) -> None:
    shown = pdf_cell(fen, ColumnType.MONEY)
    assert shown == format_value(fen, ChartUnit.FEN)
    assert Decimal(shown.replace("¥", "").replace(",", "")) * 100 == fen


@settings(max_examples=25)
@given(st.lists(LEDGER_FEN, min_size=1, max_size=20))
def test_xlsx_money_cells_hold_the_exact_decimal(values: list[int]) -> None:
    """The sheet XML carries each amount's exact decimal text; openpyxl reads it back as a
    number that rounds to the same fen; the number format shows ¥."""
    out = io.BytesIO()
    render(money_report(values), ReportFormat.XLSX, out)
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode()
    numbers = re.findall(r'<c r="E(\d+)"[^>]*><v>([^<]*)</v>', xml)
    written = {int(row): text for row, text in numbers}
    for i, fen in enumerate(values):
        assert Decimal(written[i + 2]) * 100 == fen
    assert Decimal(written[len(values) + 2]) * 100 == sum(values)
    sheet = load_workbook(io.BytesIO(out.getvalue())).worksheets[0]
    for i, fen in enumerate(values):
        cell = sheet.cell(row=i + 2, column=5)
        assert isinstance(cell.value, int | float)
        assert round(Decimal(repr(cell.value)) * 100) == fen
        assert cell.number_format == MONEY_FORMAT


def test_xlsx_types_and_layout() -> None:
    out = io.BytesIO()
    render(money_report([123, -45]), ReportFormat.XLSX, out)
    book = load_workbook(io.BytesIO(out.getvalue()))
    sheet = book.worksheets[0]
    assert sheet.freeze_panes == "A2"
    assert [c.value for c in sheet[1]] == ["日期", "时间", "摘要", "笔数", "金额"]
    assert sheet["A2"].value == datetime(2026, 9, 18) and sheet["A2"].is_date
    assert sheet["B2"].value == datetime(2026, 9, 18, 12, 5, 6)  # Shanghai wall clock
    assert sheet["D3"].value == 1 and sheet["D3"].number_format == "#,##0"
    assert sheet["A4"].value == "合计" and sheet["A4"].font.b
    assert sheet.column_dimensions["C"].width > 10
    summary = book.worksheets[1]
    assert summary["A1"].value == "测试 Test"


def test_excel_value_of_times_is_shanghai() -> None:
    at = datetime(2026, 9, 18, 16, 30, tzinfo=UTC)
    assert excel_value(at, ColumnType.DATETIME) == datetime(2026, 9, 19, 0, 30)
    assert excel_value(None, ColumnType.MONEY) is None
    assert excel_value(5, ColumnType.COUNT) == 5


def test_csv_layout() -> None:
    out = io.BytesIO()
    render(money_report([123, -45]), ReportFormat.CSV, out)
    data = out.getvalue()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows[0] == ["日期", "时间", "摘要", "笔数", "金额"]
    assert rows[1] == ["2026-09-18", "2026-09-18 12:05:06", "第0笔", "0", "1.23"]
    assert rows[3] == ["合计", "", "", "1", "0.78"]
    assert rows[4] == []
    assert ["期末余额", "0.78"] in rows


def test_file_names_are_ascii() -> None:
    name = file_name(money_report([1]), ReportFormat.PDF)
    assert name == "test-898310000000001-2026-09-18.pdf"


def test_every_entry_kind_has_a_statement_group() -> None:
    assert movement_of("sale.captured") is Movement.SALES
    assert movement_of("completion.hold_captured") is Movement.SALES
    assert movement_of("void.voided") is Movement.RETURNS
    assert movement_of("refund.refunded") is Movement.RETURNS
    assert movement_of("reversal.reversed") is Movement.REVERSALS
    assert movement_of("settlement") is Movement.FEES
    for event in ("sent", "failed", "confirmed"):
        assert movement_of(f"payout.{event}") is Movement.PAYOUTS
    assert movement_of("adjustment") is Movement.OTHER
    assert describe("sale.captured") == "消费入账 sale"
    assert describe("payout.failed") == "划款退回 payout"
    assert describe("odd") == "odd"
