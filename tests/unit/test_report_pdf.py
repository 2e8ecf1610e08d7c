"""The PDF rendering: page furniture on every page, one embedded font, charts, totals."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from pypdf import PdfReader

from autosettle.reports.charts import Chart, ChartKind, ChartUnit, Series
from autosettle.reports.formats import ReportFormat, render
from autosettle.reports.model import Column, ColumnType, Figure, Header, Report

NAME = "华联超市有限公司上海市浦东新区第一百货商店分店 Hualian Supermarket Pudong Branch No. 1"


def report(rows: int) -> Report:
    columns = (Column("at", "时间", ColumnType.DATETIME, 19),
               Column("what", "摘要", ColumnType.TEXT, 16),
               Column("amount", "发生额", ColumnType.MONEY, 15))
    at = datetime(2026, 9, 18, 4, tzinfo=UTC)
    return Report(
        "statement", "商户对账单 Merchant statement", Header("898310054110001", NAME),
        (("期间 Period", "2026-09-18 ~ 2026-09-18"),), columns,
        ((at, f"消费入账 第{i}笔" * (3 if i == 7 else 1), 12_345 + i) for i in range(rows)),
        rows, {"amount": sum(12_345 + i for i in range(rows))},
        figures=(Figure("closing", "期末余额 Closing balance", 98_765),),
        charts=(Chart(ChartKind.BAR, "本期变动 Movements", ("消费", "划款"),
                      (Series("增加 in", (5, 0)), Series("减少 out", (0, 3))), ChartUnit.FEN),
                Chart(ChartKind.LINE, "每日笔数 Daily count", ("09-17", "09-18"),
                      (Series("笔数", (4, 9)),))),
        generated_at=at)


def pages_of(rows: int) -> tuple[PdfReader, list[str]]:
    out = io.BytesIO()
    render(report(rows), ReportFormat.PDF, out)
    reader = PdfReader(io.BytesIO(out.getvalue()))
    return reader, ["".join(page.extract_text().split()) for page in reader.pages]


def test_every_page_has_the_merchant_title_and_page_number() -> None:
    _, texts = pages_of(300)
    assert len(texts) >= 3
    for n, text in enumerate(texts, start=1):
        assert "898310054110001" in text and "华联超市" in text
        assert f"第{n}/{len(texts)}页" in text
        assert "时间摘要发生额" in text  # the table header repeats
    assert "本期变动Movements" in texts[0] and "每日笔数Dailycount" in texts[0]
    assert "期末余额Closingbalance:¥987.65" in texts[0]
    assert "合计¥37,483.50" in texts[-1]  # Σ 123.45 + i fen, i < 300
    assert "2026-09-1812:00:00" in texts[0]  # Shanghai time


def test_only_the_embedded_cjk_font_is_used() -> None:
    reader, _ = pages_of(40)
    names = set()
    for page in reader.pages:
        for ref in page["/Resources"]["/Font"].values():
            font = ref.get_object()
            names.add(str(font["/BaseFont"]))
            descriptor = font["/FontDescriptor"].get_object()
            assert "/FontFile2" in descriptor  # TrueType program embedded
    assert len(names) == 1 and next(iter(names)).endswith("AutosettleSansSC-Regular")


def test_an_empty_report_is_one_page_with_its_totals() -> None:
    _, texts = pages_of(0)
    assert len(texts) == 1 and "第1/1页" in texts[0] and "合计" in texts[0]
