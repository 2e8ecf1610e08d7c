"""Slips as values: lines of text on a fixed number of columns, a QR code, a cut.

Thermal printers print on a character grid: 32 columns on 58 mm paper, 48 on 80 mm (12x24
dot ASCII font, 384 and 576 dots). A Chinese character is a full-width glyph and takes two
columns (Unicode East Asian Width ``W`` or ``F``). Every layout decision here counts
columns that way, so the ESC/POS bytes, the plain text and the PNG of one slip agree.

Pure: standard library only.

>>> display_width("金额 AMOUNT")
11
>>> pad_between("金额", "RMB 12.34", 16)
'金额   RMB 12.34'
>>> wrap("持卡人签名 CARDHOLDER SIGNATURE", 16)
['持卡人签名', 'CARDHOLDER', 'SIGNATURE']
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

WIDTH_58MM_COLS: Final = 32
WIDTH_80MM_COLS: Final = 48
WIDTHS_COLS: Final = (WIDTH_58MM_COLS, WIDTH_80MM_COLS)
LINES_PER_SLIP_MAX: Final = 400
"""A bound on one slip (a settlement slip of every type is about 60 lines)."""


class Align(StrEnum):
    LEFT = "left"
    CENTER = "center"
    RIGHT = "right"


@dataclass(frozen=True, slots=True)
class Line:
    """One printed line: text no wider than the slip, its alignment and emphasis.

    ``large`` is double height (same columns), for the amount and the title.
    """

    text: str = ""
    align: Align = Align.LEFT
    bold: bool = False
    large: bool = False


@dataclass(frozen=True, slots=True)
class Slip:
    """A laid-out slip: lines on ``width_cols`` columns, then an optional QR code, a cut."""

    width_cols: int
    lines: tuple[Line, ...]
    qr: str | None = None
    qr_caption: str | None = None
    chinese: bool = True
    cut: bool = field(default=True)


def char_width(ch: str) -> int:
    """Columns one character takes: 2 for wide/full-width, 0 for combining, else 1."""
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Columns ``text`` takes on the printer."""
    return sum(char_width(ch) for ch in text)


def clip(text: str, cols: int) -> str:
    """``text`` cut to at most ``cols`` columns (never half a wide character)."""
    out: list[str] = []
    used = 0
    for ch in text:
        w = char_width(ch)
        if used + w > cols:
            break
        out.append(ch)
        used += w
    return "".join(out)


def pad_right(text: str, cols: int) -> str:
    """``text`` filled with spaces to ``cols`` columns (clipped when longer)."""
    text = clip(text, cols)
    return text + " " * (cols - display_width(text))


def pad_left(text: str, cols: int) -> str:
    """``text`` right-aligned in ``cols`` columns (clipped when longer)."""
    text = clip(text, cols)
    return " " * (cols - display_width(text)) + text


def center(text: str, cols: int) -> str:
    """``text`` centred in ``cols`` columns (the extra space goes right), no trailing fill."""
    text = clip(text, cols)
    return " " * ((cols - display_width(text)) // 2) + text


def pad_between(left: str, right: str, cols: int) -> str:
    """``left`` and ``right`` on one line of ``cols`` columns, at least one space apart.

    The caller checks that they fit (:func:`fits`); otherwise the right part is clipped.
    """
    gap = cols - display_width(left) - display_width(right)
    if gap < 1:
        return clip(f"{left} {right}", cols)
    return left + " " * gap + right


def fits(left: str, right: str, cols: int) -> bool:
    """True when ``left`` and ``right`` fit on one line with a space between them."""
    return display_width(left) + 1 + display_width(right) <= cols


def wrap(text: str, cols: int) -> list[str]:
    """``text`` broken into lines of at most ``cols`` columns.

    Breaks at spaces where it can; a run of Chinese (no spaces) breaks between any two
    characters; a word longer than a line is cut.
    """
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        if not word:
            continue
        candidate = f"{current} {word}" if current else word
        if display_width(candidate) <= cols:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = ""
        while display_width(word) > cols:
            head = clip(word, cols)
            lines.append(head)
            word = word[len(head):]
        current = word
    if current:
        lines.append(current)
    return lines or [""]


def as_text(slip: Slip) -> str:
    """The slip as plain text: one line per printed line, then the QR code (its payload
    when it fits on a line) and its caption."""
    out = [_place(line, slip.width_cols) for line in slip.lines]
    if slip.qr:
        marked = f"[QR {slip.qr}]"
        out.append(center(marked if display_width(marked) <= slip.width_cols else "[QR]",
                          slip.width_cols))
    if slip.qr_caption:
        out.append(center(slip.qr_caption, slip.width_cols))
    return "\n".join(text.rstrip() for text in out) + "\n"


def _place(line: Line, cols: int) -> str:
    if line.align is Align.CENTER:
        return center(line.text, cols)
    if line.align is Align.RIGHT:
        return pad_left(line.text, cols)
    return clip(line.text, cols)
