"""The CJK font the PDF reports embed, shipped in the package (works with no system fonts).

``AutosettleSansSC-Regular.ttf.xz`` is Noto Sans CJK SC subset to GB2312 + ASCII + report
punctuation with TrueType outlines (reportlab embeds only TrueType), made by
tools/make_cjk_font.py; SIL Open Font License in ``OFL.txt``. It is decompressed in memory
once per process; reportlab embeds the glyphs each document uses.
"""

from __future__ import annotations

import io
import lzma
import threading
from importlib.resources import files
from typing import Final

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

FONT_NAME: Final = "AutosettleSansSC"
FONT_FILE: Final = "AutosettleSansSC-Regular.ttf.xz"
_lock = threading.Lock()


def font_bytes() -> bytes:
    """The TrueType font file (decompressed)."""
    packed = files("autosettle.reports.fonts").joinpath(FONT_FILE).read_bytes()
    return lzma.decompress(packed)


def cjk_font() -> str:
    """Register the font with reportlab (once) and return its name."""
    with _lock:
        if FONT_NAME not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(FONT_NAME, io.BytesIO(font_bytes())))
    return FONT_NAME
