"""A slip as a picture (PNG, with Pillow) and as a PDF page (reportlab): the e-receipt.

The picture is what the thermal printer would print: a grid of 12x24-dot cells (a
Chinese character takes two), 384 dots across for 58 mm paper and 576 for 80 mm, at the
printer's 203 dpi, with a white margin, the QR code and its caption.

Fonts. Chinese needs a CJK font. :func:`find_font` takes the configured one, else the
first of :data:`FONT_CANDIDATES` present (Debian's ``fonts-noto-cjk``: Noto Sans Mono CJK
SC, whose Latin glyphs are exactly half a Chinese one, like a printer's font). Pillow
reads the ``.ttc`` collection directly. With no CJK font on the machine the slip still
renders, with Pillow's built-in font (Chinese characters then show as boxes) and a
warning in the log: an e-receipt never fails for want of a font.

PDF. reportlab embeds TrueType fonts only, not the CFF outlines of Noto CJK (``.otf`` /
``.ttc``), so the PDF page *is the PNG* (exactly the printed look, any viewer), with the
slip's text laid over it invisibly in reportlab's built-in CID font ``STSong-Light`` (no
font file needed: the viewer supplies it) so the text can be searched and copied.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Final

import qrcode
from PIL import Image, ImageChops, ImageDraw, ImageFont

from autosettle.printing.layout import Align, Slip, center, char_width, clip, pad_left

log = logging.getLogger(__name__)

CELL_W_PX: Final = 12
CELL_H_PX: Final = 24
LINE_GAP_PX: Final = 6
BASELINE_PX: Final = 19
"""Where every glyph of a cell row stands: Chinese and Latin share one baseline."""
MARGIN_PX: Final = 24
QR_BOX_PX: Final = 6
DPI: Final = 203
FONT_CANDIDATES: Final = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/System/Library/Fonts/PingFang.ttc",
)
PREFERRED_FACE: Final = "Noto Sans Mono CJK SC"
FACES_IN_COLLECTION_MAX: Final = 32
PDF_CID_FONT: Final = "STSong-Light"

FontType = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True, slots=True)
class Fonts:
    """The regular and bold faces a slip is drawn with, and where they came from."""

    regular: FontType
    bold: FontType
    source: str
    cjk: bool


def find_font(configured: str = "") -> str | None:
    """The CJK font file to use: ``configured`` if it exists, else the first candidate."""
    for candidate in ((configured,) if configured else ()) + FONT_CANDIDATES:
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def _face(path: str, size: int) -> ImageFont.FreeTypeFont:
    """The preferred face of a collection (or the file's only face)."""
    if path.endswith(".ttc"):
        for index in range(FACES_IN_COLLECTION_MAX):
            try:
                font = ImageFont.truetype(path, size, index=index)
            except OSError:
                break
            if font.getname()[0] == PREFERRED_FACE:
                return font
    return ImageFont.truetype(path, size)


@lru_cache(maxsize=8)
def load_fonts(configured: str = "") -> Fonts:
    """The fonts for slips (cached): a CJK font when the machine has one."""
    path = find_font(configured)
    if path is not None:
        try:
            regular = _face(path, CELL_H_PX - 2)
            bold_path = path.replace("Regular", "Bold")
            bold = _face(bold_path, CELL_H_PX - 2) if Path(bold_path).is_file() else regular
            return Fonts(regular, bold, path, True)
        except OSError as exc:
            log.warning("cannot load the font %s (%s): slips use the built-in font", path, exc)
    else:
        log.warning("no CJK font found (install fonts-noto-cjk or set AUTOSETTLE_RECEIPT_FONT):"
                    " Chinese characters on PNG/PDF receipts show as boxes")
    fallback = ImageFont.load_default(CELL_H_PX - 4)
    return Fonts(fallback, fallback, "built-in", False)


def _line_text(text: str, align: Align, cols: int) -> str:
    if align is Align.RIGHT:
        return pad_left(text, cols)
    if align is Align.CENTER:
        return center(text, cols)
    return clip(text, cols)


@lru_cache(maxsize=4096)
def _glyph(ch: str, font: FontType, width: int) -> Image.Image:
    """One character in its grid cell (``width`` columns), drawn once and reused."""
    cell = Image.new("L", (width * CELL_W_PX, CELL_H_PX), 255)
    draw = ImageDraw.Draw(cell)
    left, _, right, _ = draw.textbbox((0, BASELINE_PX), ch, font=font, anchor="ls")
    x = (width * CELL_W_PX - (right - left)) // 2 - left
    draw.text((x, BASELINE_PX), ch, font=font, fill=0, anchor="ls")
    return cell


def _draw_row(text: str, font: FontType, cols: int) -> Image.Image:
    """One printed line on the character grid, black on white, one cell row high."""
    row = Image.new("L", (cols * CELL_W_PX, CELL_H_PX), 255)
    col = 0
    for ch in text:
        width = char_width(ch)
        if ch != " " and width:
            row.paste(_glyph(ch, font, width), (col * CELL_W_PX, 0))
        col += width
    return row


def to_image(slip: Slip, fonts: Fonts | None = None) -> Image.Image:
    """The slip as a grayscale picture at printer resolution (203 dpi)."""
    fonts = fonts or load_fonts()
    cols = slip.width_cols
    rows: list[Image.Image] = []
    for line in slip.lines:
        text = _line_text(line.text, line.align, cols)
        row = _draw_row(text, fonts.bold if line.bold else fonts.regular, cols)
        if line.bold and fonts.bold is fonts.regular:
            row = _embolden(row)
        if line.large:
            row = row.resize((row.width, row.height * 2), Image.Resampling.NEAREST)
        rows.append(row)
    qr_image = _qr(slip.qr) if slip.qr else None
    caption = (_draw_row(center(slip.qr_caption, cols), fonts.regular, cols)
               if slip.qr_caption else None)
    width = cols * CELL_W_PX + 2 * MARGIN_PX
    height = (2 * MARGIN_PX + sum(r.height + LINE_GAP_PX for r in rows)
              + (qr_image.height + LINE_GAP_PX if qr_image else 0)
              + (CELL_H_PX + LINE_GAP_PX if caption else 0))
    page = Image.new("L", (width, height), 255)
    y = MARGIN_PX
    for row in rows:
        page.paste(row, (MARGIN_PX, y))
        y += row.height + LINE_GAP_PX
    if qr_image is not None:
        page.paste(qr_image, ((width - qr_image.width) // 2, y))
        y += qr_image.height + LINE_GAP_PX
    if caption is not None:
        page.paste(caption, (MARGIN_PX, y))
    return page


def _embolden(row: Image.Image) -> Image.Image:
    """Bold without a bold face: the glyphs drawn twice, one dot apart (as printers do)."""
    shifted = Image.new("L", row.size, 255)
    shifted.paste(row, (1, 0))
    return ImageChops.darker(row, shifted)


def _qr(payload: str) -> Image.Image:
    code = qrcode.QRCode(box_size=QR_BOX_PX, border=1,
                         error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(payload)
    code.make(fit=True)
    image = code.make_image(fill_color="black", back_color="white")
    return image.get_image().convert("L")  # type: ignore[no-any-return]


def to_png(slip: Slip, fonts: Fonts | None = None) -> bytes:
    """The slip as a PNG file (grayscale, 203 dpi recorded in the file)."""
    buffer = io.BytesIO()
    to_image(slip, fonts).save(buffer, format="PNG", dpi=(DPI, DPI), compress_level=6)
    return buffer.getvalue()


def to_pdf(slip: Slip, text: str, fonts: Fonts | None = None) -> bytes:
    """The slip as a one-page PDF: the picture, with ``text`` (its plain text) invisible
    over it for search and copy."""
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    image = to_image(slip, fonts)
    points_per_px = 72 / DPI
    width_pt, height_pt = image.width * points_per_px, image.height * points_per_px
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=(width_pt, height_pt), invariant=True)
    pdf.setTitle("autosettle receipt")
    pdf.drawImage(ImageReader(image), 0, 0, width_pt, height_pt)
    if PDF_CID_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(PDF_CID_FONT))
    layer = pdf.beginText()
    layer.setTextRenderMode(3)  # invisible: searchable text over the picture
    size_pt = CELL_H_PX * points_per_px * 0.8
    layer.setFont(PDF_CID_FONT, size_pt)
    layer.setTextOrigin(MARGIN_PX * points_per_px, height_pt - (MARGIN_PX + CELL_H_PX)
                        * points_per_px)
    layer.setLeading((CELL_H_PX + LINE_GAP_PX) * points_per_px)
    for line in text.splitlines():
        layer.textLine(line)
    pdf.drawText(layer)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
