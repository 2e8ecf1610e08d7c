"""PDF rendering (reportlab), page by page: a statement of any length never sits in memory.

Every page carries the merchant's header (legal name and merchant id), the report's title
and "第 n / N 页" (N is a form drawn once at the end and shown on every page). The first
page holds the parameters, the summary figures and the charts, drawn with reportlab graphics
from the same :class:`~autosettle.reports.charts.Chart` objects the console renders as SVG.
All text is set in the embedded CJK font (:mod:`autosettle.reports.fonts`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import IO, Final

from reportlab.graphics import renderPDF
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.linecharts import HorizontalLineChart
from reportlab.graphics.shapes import Drawing, Rect, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from autosettle.domain.calendar import SHANGHAI
from autosettle.reports.charts import (
    PALETTE,
    Chart,
    ChartKind,
    ChartUnit,
    axis_label,
    format_value,
    nice_ceiling,
)
from autosettle.reports.fonts import cjk_font
from autosettle.reports.model import Cell, ColumnType, Report

PAGE: Final = landscape(A4)
MARGIN_PT: Final = 36.0
ROW_PT: Final = 13.0
BODY_PT: Final = 7.5
HEADER_BAND_PT: Final = 40.0
FOOTER_BAND_PT: Final = 28.0
CHART_W_PT: Final = 370.0
CHART_H_PT: Final = 170.0
TOTAL_PAGES_FORM: Final = "autosettle-total-pages"
PROGRESS_EVERY_ROWS: Final = 500


def pdf_cell(value: Cell, column_type: ColumnType) -> str:
    """A cell as printed: money ``¥1,234.56``, counts grouped, Shanghai times."""
    if value is None:
        return ""
    if column_type is ColumnType.MONEY and isinstance(value, int):
        return format_value(value, ChartUnit.FEN)
    if column_type is ColumnType.COUNT and isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, datetime):
        return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _fit(text: str, font: str, size: float, width: float) -> str:
    """``text`` cut (with an ellipsis) to fit ``width`` points."""
    if len(text) * size * 0.5 <= width or stringWidth(text, font, size) <= width:
        return text
    while text and stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text + "…"


class _Pages:
    """The canvas with the page furniture: header band, footer with page numbers."""

    def __init__(self, canvas: Canvas, report: Report, font: str) -> None:
        self.c, self.report, self.font = canvas, report, font
        self.number = 0
        self.width, self.height = PAGE
        self.y = 0.0

    def new_page(self) -> None:
        if self.number:
            self.c.showPage()
        self.number += 1
        c, r, f = self.c, self.report, self.font
        top = self.height - MARGIN_PT
        c.setFont(f, 11)
        half = (self.width - 2 * MARGIN_PT) / 2 - 10
        who = (f"商户号 {r.header.merchant_id}  " if r.header.merchant_id else "") + r.header.name
        c.drawString(MARGIN_PT, top - 12, _fit(who, f, 11, half))
        c.setFont(f, 10)
        c.drawRightString(self.width - MARGIN_PT, top - 12, _fit(r.title, f, 10, half))
        c.setStrokeColor(colors.HexColor("#1f6feb"))
        c.setLineWidth(1)
        c.line(MARGIN_PT, top - 20, self.width - MARGIN_PT, top - 20)
        c.setFont(f, 8)
        c.setFillColor(colors.HexColor("#555555"))
        if r.generated_at is not None:
            at = r.generated_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
            c.drawString(MARGIN_PT, MARGIN_PT - 10, f"生成于 {at} (Asia/Shanghai)  autosettle")
        text = f"第 {self.number} / "
        mid = self.width / 2
        c.drawRightString(mid, MARGIN_PT - 10, text)
        c.saveState()
        c.translate(mid, MARGIN_PT - 10)
        c.doForm(TOTAL_PAGES_FORM)
        c.restoreState()
        c.setFillColor(colors.black)
        self.y = top - HEADER_BAND_PT

    def room(self) -> float:
        return self.y - (MARGIN_PT + FOOTER_BAND_PT - 10)

    def finish(self) -> None:
        c = self.c
        c.beginForm(TOTAL_PAGES_FORM)
        c.setFont(self.font, 8)
        c.setFillColor(colors.HexColor("#555555"))
        c.drawString(0, 0, f"{self.number} 页")
        c.endForm()
        c.showPage()


def _chart_drawing(chart: Chart, font: str) -> Drawing:
    """The chart with reportlab graphics: the same labels, series, unit and y-axis top as
    :func:`~autosettle.reports.charts.render_svg`."""
    drawing = Drawing(CHART_W_PT, CHART_H_PT)
    # The renderer's starting font (else it sets Helvetica, a font the PDF would not embed).
    setattr(drawing, "initialFontName", font)  # noqa: B010 - not in the type stubs
    drawing.add(String(4, CHART_H_PT - 12, chart.title, fontName=font, fontSize=9))
    values = [v for s in chart.series for v in s.values]
    top = nice_ceiling(max(values, default=0))
    plot: VerticalBarChart | HorizontalLineChart
    plot = VerticalBarChart() if chart.kind is ChartKind.BAR else HorizontalLineChart()
    plot.x, plot.y = 52, 34
    plot.width, plot.height = int(CHART_W_PT - 62), int(CHART_H_PT - 58)
    labels = list(chart.labels) or [""]
    plot.data = [list(s.values) or [0] for s in chart.series] or [[0]]
    plot.categoryAxis.categoryNames = labels
    plot.categoryAxis.labels.fontName = font
    plot.categoryAxis.labels.fontSize = 6.5
    plot.valueAxis.valueMin = 0
    plot.valueAxis.valueMax = top
    plot.valueAxis.valueStep = max(top // 4, 1)
    plot.valueAxis.labels.fontName = font
    plot.valueAxis.labels.fontSize = 6.5
    unit = chart.unit
    plot.valueAxis.labelTextFormat = lambda v: axis_label(int(v), unit)
    for index in range(len(chart.series)):
        color = colors.HexColor(PALETTE[index % len(PALETTE)])
        if isinstance(plot, VerticalBarChart):
            plot.bars[index].fillColor = color
            plot.bars[index].strokeColor = None
        else:
            plot.lines[index].strokeColor = color
    drawing.add(plot)
    for index, series in enumerate(chart.series):
        x = 52 + index * 110
        swatch = Rect(x, 4, 7, 7)
        swatch.fillColor = colors.HexColor(PALETTE[index % len(PALETTE)])
        swatch.strokeColor = None
        drawing.add(swatch)
        drawing.add(String(x + 10, 5, series.name, fontName=font, fontSize=7))
    return drawing


def _first_page(pages: _Pages) -> None:
    c, r, f = pages.c, pages.report, pages.font
    c.setFont(f, 16)
    c.drawString(MARGIN_PT, pages.y, r.title)
    pages.y -= 20
    c.setFont(f, 9)
    for label, value in r.parameters:
        c.drawString(MARGIN_PT, pages.y, f"{label}: {value}")
        pages.y -= 12
    pages.y -= 4
    column_x = (MARGIN_PT, MARGIN_PT + 250, MARGIN_PT + 500)
    for index, figure in enumerate(r.figures):
        x = column_x[index % 3]
        c.drawString(x, pages.y, f"{figure.label}:")
        c.drawRightString(x + 230, pages.y, pdf_cell(figure.value, figure.type))
        if index % 3 == 2 or index == len(r.figures) - 1:
            pages.y -= 13
    for note in r.notes:
        c.setFont(f, 7.5)
        c.drawString(MARGIN_PT, pages.y, _fit(note, f, 7.5, pages.width - 2 * MARGIN_PT))
        pages.y -= 11
    if r.charts:
        pages.y -= 4
        for index, chart in enumerate(r.charts[:2]):
            drawing = _chart_drawing(chart, f)
            renderPDF.draw(drawing, c, MARGIN_PT + index * (CHART_W_PT + 20),
                           pages.y - CHART_H_PT)
        pages.y -= CHART_H_PT + 10


def _column_x(report: Report, width: float) -> list[tuple[float, float]]:
    total = sum(c.width for c in report.columns) or 1
    x, spans = MARGIN_PT, []
    for column in report.columns:
        w = width * column.width / total
        spans.append((x, w))
        x += w
    return spans


def _draw_row(pages: _Pages, cells: list[str], report: Report,
              spans: list[tuple[float, float]], size: float) -> None:
    c, f = pages.c, pages.font
    c.setFont(f, size)
    for text, column, (x, w) in zip(cells, report.columns, spans, strict=True):
        text = _fit(text, f, size, w - 4)
        if column.type in (ColumnType.MONEY, ColumnType.COUNT):
            c.drawRightString(x + w - 2, pages.y, text)
        else:
            c.drawString(x + 2, pages.y, text)
    pages.y -= ROW_PT


def _table_header(pages: _Pages, report: Report, spans: list[tuple[float, float]]) -> None:
    c = pages.c
    c.setFillColor(colors.HexColor("#dde7f6"))
    c.rect(MARGIN_PT, pages.y - 3.5, pages.width - 2 * MARGIN_PT, ROW_PT, stroke=0, fill=1)
    c.setFillColor(colors.black)
    _draw_row(pages, [col.title for col in report.columns], report, spans, BODY_PT + 0.5)


def write_pdf(report: Report, out: IO[bytes],
              progress: Callable[[int], None] | None = None) -> None:
    """Write the report as PDF to ``out`` (a binary file opened for writing)."""
    font = cjk_font()
    canvas = Canvas(out, pagesize=PAGE, pageCompression=1,
                    initialFontName=font,  # type: ignore[arg-type]  # the stubs say float
                    initialFontSize=BODY_PT)
    canvas.setTitle(report.title)
    canvas.setAuthor("autosettle")
    canvas.setSubject(report.header.name)
    pages = _Pages(canvas, report, font)
    pages.new_page()
    _first_page(pages)
    spans = _column_x(report, pages.width - 2 * MARGIN_PT)
    if pages.room() < ROW_PT * 3:
        pages.new_page()
    _table_header(pages, report, spans)
    done = 0
    for row in report.rows:
        if pages.room() < ROW_PT:
            pages.new_page()
            _table_header(pages, report, spans)
        _draw_row(pages, [pdf_cell(v, col.type) for v, col in
                          zip(row, report.columns, strict=True)], report, spans, BODY_PT)
        done += 1
        if progress is not None and done % PROGRESS_EVERY_ROWS == 0:
            progress(PROGRESS_EVERY_ROWS)
    if progress is not None and done % PROGRESS_EVERY_ROWS:
        progress(done % PROGRESS_EVERY_ROWS)
    if pages.room() < ROW_PT:
        pages.new_page()
        _table_header(pages, report, spans)
    canvas.setStrokeColor(colors.HexColor("#888888"))
    canvas.line(MARGIN_PT, pages.y + ROW_PT - 3, pages.width - MARGIN_PT, pages.y + ROW_PT - 3)
    _draw_row(pages, [pdf_cell(v, col.type) for v, col in
                      zip(report.totals_row(), report.columns, strict=True)],
              report, spans, BODY_PT + 0.5)
    pages.finish()
    canvas.save()
