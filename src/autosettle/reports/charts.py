"""One chart definition, rendered server-side as SVG (console) and reused by the PDFs.

A `Chart` is pure data: labels along the x axis and one or more series of integers
(fen, counts or basis points, as `unit` says). `render_svg` draws it with no JavaScript
and no external asset, so the console works offline and a test can read the numbers back
out of the markup (every bar and point carries a `<title>` with its exact value).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from html import escape

PALETTE = ("#1f6feb", "#e8590c", "#2f9e44", "#ae3ec9", "#f59f00", "#0c8599")


class ChartKind(StrEnum):
    BAR = "bar"
    LINE = "line"


class ChartUnit(StrEnum):
    FEN = "fen"  # money: shown as ¥1,234.56
    COUNT = "count"  # plain integers
    BASIS_POINTS = "bp"  # ratios: 9,750 bp is shown as 97.50%


@dataclass(frozen=True)
class Series:
    name: str
    values: tuple[int, ...]


@dataclass(frozen=True)
class Chart:
    kind: ChartKind
    title: str
    labels: tuple[str, ...]
    series: tuple[Series, ...]
    unit: ChartUnit = ChartUnit.COUNT

    def __post_init__(self) -> None:
        for s in self.series:
            if len(s.values) != len(self.labels):
                raise ValueError(
                    f"series {s.name!r} has {len(s.values)} values for {len(self.labels)} labels")


def format_value(value: int, unit: ChartUnit) -> str:
    """The exact value as a reader sees it (no rounding beyond the unit's own)."""
    if unit is ChartUnit.FEN:
        sign = "-" if value < 0 else ""
        yuan, fen = divmod(abs(value), 100)
        return f"{sign}¥{yuan:,}.{fen:02d}"
    if unit is ChartUnit.BASIS_POINTS:
        sign = "-" if value < 0 else ""
        whole, frac = divmod(abs(value), 100)
        return f"{sign}{whole}.{frac:02d}%"
    return f"{value:,}"


def axis_label(value: int, unit: ChartUnit) -> str:
    """A short axis tick: money in whole yuan (万 above 10,000), counts as they are."""
    if unit is ChartUnit.FEN:
        yuan = value // 100
        return f"¥{yuan // 10_000:,}万" if abs(yuan) >= 100_000 else f"¥{yuan:,}"
    if unit is ChartUnit.BASIS_POINTS:
        return f"{value // 100}%"
    return f"{value:,}"


def nice_step(value: int) -> int:
    """The smallest 1, 2, 2.5 or 5 × 10^k that is ≥ value (≥ 1; 2.5 only where whole)."""
    if value <= 1:
        return 1
    magnitude = 1
    while magnitude * 10 < value:
        magnitude *= 10
    steps = [magnitude, 2 * magnitude, 5 * magnitude, 10 * magnitude]
    if magnitude >= 10:
        steps.insert(2, 5 * magnitude // 2)
    return next(step for step in steps if step >= value)


def nice_ceiling(value: int) -> int:
    """The top of the y axis: four equal nice steps (`nice_step`) reaching ≥ value, so every
    one of the four gridlines falls on a whole, round value."""
    return 4 * nice_step(-(-max(value, 0) // 4))


def render_svg(chart: Chart, width: int = 640, height: int = 240) -> str:
    """The chart as a self-contained `<svg>` element (no scripts, no external references)."""
    left, right, top, bottom = 64, 12, 28, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for s in chart.series for v in s.values]
    top_value = nice_ceiling(max(values, default=0))
    n = max(len(chart.labels), 1)
    slot = plot_w / n

    def y_of(v: int) -> float:
        return top + plot_h - plot_h * max(v, 0) / top_value

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11">',
        f"<title>{escape(chart.title)}</title>",
        f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(chart.title)}</text>',
    ]
    for i in range(5):
        tick = top_value * i // 4
        y = y_of(tick)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">'
                     f"{escape(axis_label(tick, chart.unit))}</text>")
    label_every = max(1, -(-n // 12))
    for i, label in enumerate(chart.labels):
        if i % label_every == 0:
            x = left + slot * (i + 0.5)
            parts.append(f'<text x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                         f'fill="#555">{escape(label)}</text>')
    k = max(len(chart.series), 1)
    for si, s in enumerate(chart.series):
        color = PALETTE[si % len(PALETTE)]
        if chart.kind is ChartKind.BAR:
            bar_w = slot * 0.8 / k
            for i, v in enumerate(s.values):
                x = left + slot * i + slot * 0.1 + bar_w * si
                y = y_of(v)
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                    f'height="{top + plot_h - y:.1f}" fill="{color}">'
                    f"<title>{escape(chart.labels[i])} {escape(s.name)}: "
                    f"{escape(format_value(v, chart.unit))}</title></rect>")
        else:
            points = " ".join(f"{left + slot * (i + 0.5):.1f},{y_of(v):.1f}"
                              for i, v in enumerate(s.values))
            parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" '
                         f'stroke-width="2"/>')
            for i, v in enumerate(s.values):
                parts.append(
                    f'<circle cx="{left + slot * (i + 0.5):.1f}" cy="{y_of(v):.1f}" r="3" '
                    f'fill="{color}"><title>{escape(chart.labels[i])} {escape(s.name)}: '
                    f"{escape(format_value(v, chart.unit))}</title></circle>")
        lx = left + 8 + si * 140
        parts.append(f'<rect x="{lx}" y="{height - 14}" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{lx + 14}" y="{height - 5}">{escape(s.name)}</text>')
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" '
                 f'y2="{top + plot_h}" stroke="#888"/>')
    parts.append("</svg>")
    return "".join(parts)
