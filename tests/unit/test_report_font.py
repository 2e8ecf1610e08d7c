"""The CJK font shipped for the PDF reports: TrueType (reportlab embeds only that), renamed,
licensed, and covering every character the reports print."""

from __future__ import annotations

import io
from importlib.resources import files
from pathlib import Path

from fontTools.ttLib import TTFont

import autosettle.reports
from autosettle.reports.fonts import FONT_FILE, font_bytes

REPORTS = Path(autosettle.reports.__file__).parent


def test_truetype_outlines_and_own_name() -> None:
    font = TTFont(io.BytesIO(font_bytes()))
    assert "glyf" in font and "CFF " not in font
    assert font["name"].getDebugName(1) == "Autosettle Sans SC"
    assert (REPORTS / "fonts" / FONT_FILE).stat().st_size < 1_300_000


def test_every_character_the_reports_print_has_a_glyph() -> None:
    cmap = TTFont(io.BytesIO(font_bytes())).getBestCmap()
    printed = {ch for source in REPORTS.glob("*.py")
               for ch in source.read_text(encoding="utf-8") if not ch.isascii()}
    printed |= set("第页¥，。：（）") | {chr(c) for c in range(0x20, 0x7F)}
    printed -= {"\ufeff"}  # the CSV byte-order mark is never drawn
    missing = sorted(ch for ch in printed if ord(ch) not in cmap)
    assert not missing, missing
    gb2312 = bytes((0xD6, 0xD0)).decode("gb2312") + bytes((0xF7, 0xFE)).decode("gb2312")
    assert all(ord(ch) in cmap for ch in gb2312)  # 中 and the last GB2312 hanzi


def test_the_license_ships_next_to_the_font() -> None:
    text = files("autosettle.reports.fonts").joinpath("OFL.txt").read_text(encoding="utf-8")
    assert "SIL OPEN FONT LICENSE Version 1.1" in text
    assert FONT_FILE in text and "Noto Sans CJK" in text
