"""Golden images: the rendered slips look like a real POS slip, and stay so.

Each slip is rendered with the CJK font (fonts-noto-cjk) and compared with the PNG kept in
``golden/``: same size, and the mean difference of the pixels within a tolerance (font
hinting may move a few grey levels between Pillow and FreeType versions, never a glyph).
To accept a deliberate change, delete the golden file and run the test once: it writes
the new picture, which must be looked at before it is committed.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat
from test_print_slips import SALE, SETTLEMENT

from autosettle.printing import layout, raster, slips

GOLDEN = Path(__file__).parent / "golden"
MEAN_DIFFERENCE_MAX = 2.0
"""Mean absolute difference per pixel (0-255) tolerated."""

CASES = {
    "sale-58mm-merchant": lambda: slips.receipt_slip(SALE, 32, slips.CopyKind.MERCHANT),
    "sale-80mm-cardholder-duplicate": lambda: slips.receipt_slip(
        replace(SALE, pin_verified=True), 48, slips.CopyKind.CARDHOLDER, duplicate=True),
    "refund-58mm": lambda: slips.receipt_slip(
        replace(SALE, txn_type="refund", amount_minor=500, original_trace="000100"), 32),
    "decline-58mm": lambda: slips.render(
        replace(SALE, approved=False, response_code="51", auth_code=None), 32),
    "settlement-80mm": lambda: slips.settlement_slip(
        replace(SETTLEMENT, foreign_balanced=False), 48),
}


@pytest.fixture(scope="module")
def fonts() -> raster.Fonts:
    found = raster.load_fonts()
    if not found.cjk:
        pytest.skip("no CJK font on this machine (apt-get install fonts-noto-cjk)")
    return found


@pytest.mark.parametrize("name", sorted(CASES))
def test_slip_matches_its_golden_image(name: str, fonts: raster.Fonts,
                                       tmp_path: Path) -> None:
    slip: layout.Slip = CASES[name]()
    image = raster.to_image(slip, fonts)
    golden = GOLDEN / f"{name}.png"
    if not golden.exists():
        GOLDEN.mkdir(exist_ok=True)
        image.save(golden, optimize=True)
        pytest.fail(f"wrote {golden}: look at it, then run again")
    expected = Image.open(golden).convert("L")
    assert image.size == expected.size
    difference = ImageStat.Stat(ImageChops.difference(image, expected)).mean[0]
    if difference > MEAN_DIFFERENCE_MAX:
        image.save(tmp_path / f"{name}.png")
        pytest.fail(f"{name}: mean difference {difference:.2f} > {MEAN_DIFFERENCE_MAX} "
                    f"(got {tmp_path / name}.png)")


def test_the_picture_is_printer_sized_and_black_on_white(fonts: raster.Fonts) -> None:
    for cols in (32, 48):
        image = raster.to_image(slips.receipt_slip(SALE, cols), fonts)
        assert image.width == cols * raster.CELL_W_PX + 2 * raster.MARGIN_PX
        low, high = image.getextrema()
        assert (low, high) == (0, 255)


def test_without_a_cjk_font_the_slip_still_renders() -> None:
    builtin = raster.Fonts(*(2 * [raster.ImageFont.load_default(20)]), "built-in", False)
    png = raster.to_png(slips.receipt_slip(SALE, 32), builtin)
    assert png.startswith(b"\x89PNG")
    assert raster.find_font("/no/such/font.ttc") in (None, *raster.FONT_CANDIDATES)
