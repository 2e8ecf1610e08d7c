"""The chart definition and its SVG: exact values in the markup, axis tops, no scripts."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autosettle.reports.charts import (
    Chart,
    ChartKind,
    ChartUnit,
    Series,
    format_value,
    nice_ceiling,
    render_svg,
)


@given(st.integers(min_value=1, max_value=10**15))
def test_nice_ceiling_is_the_first_round_value_at_or_above(value: int) -> None:
    top = nice_ceiling(value)
    assert top >= value
    digits = str(top).rstrip("0")
    assert digits in {"1", "2", "25", "5"}
    assert top < value * 5 or value < 3


@given(st.integers(min_value=-10**12, max_value=10**12))
def test_money_reads_back_to_the_same_fen(fen: int) -> None:
    text = format_value(fen, ChartUnit.FEN)
    sign = -1 if text.startswith("-") else 1
    assert sign * int(re.sub(r"[^0-9]", "", text)) == fen


def test_svg_carries_every_exact_value_and_nothing_executable() -> None:
    chart = Chart(ChartKind.BAR, "今日 <Today>", ("09", "10"),
                  (Series("金额", (123456, 5)), Series("退货", (0, 7))), ChartUnit.FEN)
    svg = render_svg(chart)
    assert "09 金额: ¥1,234.56" in svg
    assert "10 退货: ¥0.07" in svg
    assert "&lt;Today&gt;" in svg
    assert "<script" not in svg and "href" not in svg
    line = render_svg(Chart(ChartKind.LINE, "t", ("a",), (Series("n", (9750,)),),
                            ChartUnit.BASIS_POINTS))
    assert "a n: 97.50%" in line


def test_series_must_match_the_labels() -> None:
    with pytest.raises(ValueError, match="2 labels"):
        Chart(ChartKind.BAR, "t", ("a", "b"), (Series("s", (1,)),))
