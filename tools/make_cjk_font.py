"""Build the CJK font the PDF reports embed: src/autosettle/reports/fonts/.

reportlab embeds TrueType (glyf) fonts only; Noto Sans CJK as Debian ships it
(fonts-noto-cjk) has CFF outlines. This script takes Noto Sans CJK SC Regular from the
Debian collection, keeps the characters a report can print (GB2312: the 6,763 common
simplified hanzi and its symbols, printable ASCII, the punctuation and currency signs the
reports use), converts the cubic CFF outlines to quadratic TrueType ones (fontTools cu2qu),
drops hinting and layout tables, renames the family (the OFL asks a modified font not to
pass for the original) and writes it xz-compressed, with the SIL Open Font License next to
it. The PDF renderer decompresses it in memory; reportlab then embeds only the glyphs a
document uses.

Run it (dev dependency fonttools) when the character set changes:

    .venv/bin/python tools/make_cjk_font.py [/path/to/NotoSansCJK-Regular.ttc]
"""

from __future__ import annotations

import io
import lzma
import sys
from pathlib import Path

from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.subset import Options, Subsetter
from fontTools.ttLib import TTCollection, TTFont, newTable

SOURCE = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
OUT_DIR = Path(__file__).resolve().parent.parent / "src" / "autosettle" / "reports" / "fonts"
FONT_FILE = "AutosettleSansSC-Regular.ttf.xz"
LICENSE_FILE = "OFL.txt"
FAMILY = "Autosettle Sans SC"
POSTSCRIPT_NAME = "AutosettleSansSC-Regular"
MAX_ERR_EM = 0.001  # cu2qu tolerance: 1/1000 em, invisible at report sizes
EXTRA = ("¥￥€£·•—–―‘’“”…‰℃※→←↑↓√×÷±≤≥≠∞°′″§№☆★○●◎◇◆□■△▲−～〜"
         "、。，：；！？（）《》〈〉【】「」『』〔〕［］｛｝％＋－＝／")


def gb2312_characters() -> set[str]:
    """Every character GB2312 encodes (rows 0xA1..0xF7, cells 0xA1..0xFE)."""
    found: set[str] = set()
    for high in range(0xA1, 0xF8):
        for low in range(0xA1, 0xFF):
            try:
                found.add(bytes((high, low)).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return found


def wanted_codepoints() -> set[int]:
    chars = gb2312_characters() | {chr(c) for c in range(0x20, 0x7F)} | set(EXTRA)
    return {ord(c) for c in chars}


def pick_sc(collection: TTCollection) -> TTFont:
    for font in collection.fonts:
        if font["name"].getDebugName(1) == "Noto Sans CJK SC":
            return font
    raise SystemExit("Noto Sans CJK SC not found in the collection")


def subset(font: TTFont, codepoints: set[int]) -> None:
    options = Options()
    options.layout_features = []  # no OpenType layout: reports set text left to right
    options.hinting = False
    options.desubroutinize = True
    options.notdef_outline = True
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6, 13, 14]
    options.name_languages = [0x409]
    options.drop_tables += ["VORG", "vhea", "vmtx", "GSUB", "GPOS", "GDEF", "BASE", "DSIG"]
    subsetter = Subsetter(options)
    subsetter.populate(unicodes=codepoints)
    subsetter.subset(font)


def cff_to_glyf(font: TTFont) -> None:
    """Replace the CFF table with glyf/loca outlines (quadratic curves)."""
    order = font.getGlyphOrder()
    glyph_set = font.getGlyphSet()
    max_err = MAX_ERR_EM * font["head"].unitsPerEm
    glyphs = {}
    for name in order:
        pen = TTGlyphPen(None)
        glyph_set[name].draw(Cu2QuPen(pen, max_err, reverse_direction=True))
        glyphs[name] = pen.glyph()
    del font["CFF "]
    glyf = newTable("glyf")
    glyf.glyphOrder = order
    glyf.glyphs = glyphs
    font["glyf"] = glyf
    font["loca"] = newTable("loca")
    maxp = font["maxp"]
    maxp.tableVersion = 0x00010000
    for field in ("maxZones", "maxTwilightPoints", "maxStorage", "maxFunctionDefs",
                  "maxInstructionDefs", "maxStackElements", "maxSizeOfInstructions"):
        setattr(maxp, field, 1 if field == "maxZones" else 0)
    maxp.maxComponentElements = maxp.maxComponentDepth = 0
    font["head"].glyphDataFormat = 0
    font["head"].indexToLocFormat = 1
    post = font["post"]
    post.formatType = 3.0  # no glyph names: smaller
    font.sfntVersion = "\x00\x01\x00\x00"
    glyf.compile(font)  # fills in bounding boxes; maxp recalculated on save


def rename(font: TTFont) -> str:
    """The modified font's own names; returns the upstream copyright notice."""
    name = font["name"]
    notice = name.getDebugName(0) or ""
    for record in list(name.names):
        if record.nameID in (1, 4, 16):
            name.setName(FAMILY if record.nameID != 4 else f"{FAMILY} Regular",
                         record.nameID, record.platformID, record.platEncID, record.langID)
        elif record.nameID == 3:
            name.setName(f"{POSTSCRIPT_NAME};subset", 3, record.platformID,
                         record.platEncID, record.langID)
        elif record.nameID == 6:
            name.setName(POSTSCRIPT_NAME, 6, record.platformID, record.platEncID,
                         record.langID)
    return notice


LICENSE_HEAD = """{file} is a modified version of Noto Sans CJK SC Regular
(https://github.com/googlefonts/noto-cjk), made by tools/make_cjk_font.py: subset to
GB2312, ASCII and report punctuation, outlines converted to TrueType, renamed.

{notice}

This Font Software is licensed under the SIL Open Font License, Version 1.1.
The license text follows; it is also available with a FAQ at https://openfontlicense.org

"""


def license_text(notice: str) -> str:
    ofl = Path("/usr/share/doc/fonts-noto-cjk/copyright")
    body = ofl.read_text(encoding="utf-8") if ofl.exists() else ""
    start = body.find("License: SIL-1.1\n -")
    end = body.find("License: GPL-3+", start)
    if start < 0 or end < 0:
        raise SystemExit("the OFL text was not found in the Debian copyright file")
    lines = body[start:end].splitlines()[1:]
    text = "\n".join("" if line.strip() == "." else line[1:] for line in lines).rstrip()
    return LICENSE_HEAD.format(file=FONT_FILE, notice=notice) + text + "\n"


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else SOURCE
    collection = TTCollection(str(source))
    font = pick_sc(collection)
    subset(font, wanted_codepoints())
    cff_to_glyf(font)
    notice = rename(font)
    font.recalcTimestamp = False
    buffer = io.BytesIO()
    font.save(buffer)
    raw = buffer.getvalue()
    packed = lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / FONT_FILE).write_bytes(packed)
    (OUT_DIR / LICENSE_FILE).write_text(license_text(notice), encoding="utf-8")
    glyphs = len(font.getGlyphOrder())
    print(f"{FONT_FILE}: {glyphs} glyphs, {len(raw):,} bytes TrueType, "
          f"{len(packed):,} bytes xz")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
