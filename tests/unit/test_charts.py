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
    nice_step,
    render_svg,
)


@given(st.integers(min_value=1, max_value=10**15))
def test_the_axis_top_is_four_round_steps_just_above_the_value(value: int) -> None:
    top = nice_ceiling(value)
    step, rest = divmod(top, 4)
    assert rest == 0 and top >= value
    assert str(step).rstrip("0") in {"1", "2", "25", "5"}
    assert step == nice_step(-(-value // 4))  # the smallest such step
    assert top < value * 3 or value < 4


@given(st.integers(min_value=1, max_value=10**15))
def test_nice_step_is_the_first_round_value_at_or_above(value: int) -> None:
    step = nice_step(value)
    assert step >= value and str(step).rstrip("0") in {"1", "2", "25", "5"}
    powers = [10**k for k in range(len(str(step)) + 1)]
    round_values = {p * k for p in powers for k in (1, 2, 5)} | {p * 25 for p in powers}
    assert not any(value <= r < step for r in round_values)


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
    counts = render_svg(Chart(ChartKind.LINE, "n", ("a", "b"), (Series("n", (5, 3)),)))
    ticks = re.findall(r'text-anchor="end" fill="#555">([^<]+)<', counts)
    assert ticks == ["0", "2", "4", "6", "8"]  # four equal, whole steps


def test_series_must_match_the_labels() -> None:
    with pytest.raises(ValueError, match="2 labels"):
        Chart(ChartKind.BAR, "t", ("a", "b"), (Series("s", (1,)),))
