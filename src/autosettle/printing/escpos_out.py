"""A slip as ESC/POS bytes, built with python-escpos's in-memory printer (``Dummy``).

The byte stream of one slip:

* ``ESC @`` (initialise), then ``FS &`` (Chinese character mode) when the slip is
  Chinese: from there on a GB18030 double-byte sequence prints one Chinese character and
  ASCII prints as ASCII;
* per line: alignment (``ESC a``), emphasis (``ESC E``) and double height (``GS !``) through
  python-escpos's ``set``, then the text encoded in the profile's encoding and ``LF``;
* ``FS .`` (leave Chinese mode) before the QR code, printed natively by the printer
  (``GS ( k``: model 2, the payload is the transaction reference);
* feed and a full cut (``GS V``) through python-escpos's ``cut``.

python-escpos's own ``text`` goes through its code-page "magic encoder", which knows no
GB18030: the text bytes are encoded here and sent raw.
"""

from __future__ import annotations

from typing import Final

from escpos.printer import Dummy

from autosettle.printing.layout import Align, Slip, center, clip, pad_left

ESC: Final = b"\x1b"
FS: Final = b"\x1c"
GS: Final = b"\x1d"
INIT: Final = ESC + b"@"
CHINESE_ON: Final = FS + b"&"
CHINESE_OFF: Final = FS + b"."
ENCODINGS: Final = ("gb18030", "gbk", "ascii")
"""What a printer profile may name. ``ascii``: a printer without a Chinese font, English
labels only."""
QR_MODULE_SIZE: Final = 5


def is_chinese(encoding: str) -> bool:
    """True when the printer prints Chinese in this encoding (GB18030 or its GBK subset)."""
    return encoding in ("gb18030", "gbk")


def to_escpos(slip: Slip, encoding: str = "gb18030") -> bytes:
    """The bytes that print ``slip`` on an ESC/POS printer.

    Characters the encoding cannot carry print as ``?``; text always goes out in full
    lines already laid out for the slip's width (the printer's own alignment is used only
    to centre or right-align a line).
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown printer encoding {encoding!r}; one of {ENCODINGS}")
    chinese = is_chinese(encoding) and slip.chinese
    p = Dummy()
    p._raw(INIT)
    if chinese:
        p._raw(CHINESE_ON)
    for line in slip.lines:
        p.set(align="left", bold=line.bold, double_height=line.large,
              normal_textsize=not line.large)
        p._raw(GS + (b"!\x01" if line.large else b"!\x00"))  # Chinese characters too
        text = _placed(line.text, line.align, slip.width_cols)
        p._raw(text.encode(encoding, errors="replace") + b"\n")
    p.set(align="center", bold=False, normal_textsize=True)
    if chinese:
        p._raw(CHINESE_OFF)
    if slip.qr:
        p.set(align="center")  # a native QR code follows the justification (ESC a)
        p.qr(slip.qr, size=QR_MODULE_SIZE, native=True)
        p._raw(b"\n")
    if slip.qr_caption:
        if chinese:
            p._raw(CHINESE_ON)
        p._raw(center(slip.qr_caption, slip.width_cols).encode(encoding, errors="replace")
               + b"\n")
        if chinese:
            p._raw(CHINESE_OFF)
    p.set(align="left")
    if slip.cut:
        p.cut()
    return bytes(p.output)


def _placed(text: str, align: Align, cols: int) -> str:
    # The printer aligns within its own line width, which may differ from the profile's
    # (a 48-column printer given a 32-column profile): pad here instead, left-aligned.
    if align is Align.RIGHT:
        return pad_left(text, cols)
    if align is Align.CENTER:
        return center(text, cols)
    return clip(text, cols)
