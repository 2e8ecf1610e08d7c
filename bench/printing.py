"""Rendering slips: ESC/POS bytes and PNG e-receipts, against the plainest equivalent.

Workload: a CUP sales slip (58 mm, 32 columns, Chinese with English labels, QR code) with a
different trace number each time, built from its data (layout included in the time).

Cases (no database):

- ``escpos``: the slip as ESC/POS bytes (python-escpos in-memory printer, GB18030 text,
  native QR, cut). Reference: the slip's plain text encoded in GB18030 (the bytes of the
  text alone, no commands).
- ``png``: the slip as a PNG at printer resolution, one glyph per grid cell, with its QR
  code. Reference: Pillow drawing the same text in one ``multiline_text`` call with the
  same font into a picture of the same size, saved as PNG (no grid, no QR code).

What it tells: the price of exact printer layout and commands over "just the text". A
till prints one slip per payment, so either rate is far above what one printer uses.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import replace

from PIL import Image, ImageDraw

from autosettle.printing import escpos_out, layout, raster, slips
from bench.core import BenchConfig, BenchReport, Measurement, peak_rss_bytes, reset_peak_rss

NAME = "printing"
SLIPS = 2000
SLIPS_QUICK = 200
PNG_SLIPS = 200
PNG_SLIPS_QUICK = 30
BASE = slips.ReceiptData(
    merchant_name="华联超市 Hualian Supermarket", merchant_id="898310054110001",
    terminal_id="HL000001", txn_type="sale", amount_minor=123456, currency="CNY",
    at_utc="2026-09-18T02:00:00+00:00", batch_no="000001", trace="000000",
    rrn="123456789012", reference="3f2a9c0d8e7b4a61b5c2d9e8f7a6b5c4", approved=True,
    pan_masked="622202*********0014", card_brand="unionpay", card_kind="debit",
    issuer="Industrial and Commercial Bank of China", auth_code="A1B2C3")


def _slip(n: int) -> layout.Slip:
    return slips.receipt_slip(replace(BASE, trace=f"{n % 1_000_000:06d}"), 32)


def _timed(count: int, work: Callable[[int], object]) -> float:
    started = time.perf_counter()
    for n in range(count):
        work(n)
    return time.perf_counter() - started


def _reference_png(fonts: raster.Fonts) -> Callable[[int], bytes]:
    size = raster.to_image(_slip(0), fonts).size  # the same picture size as ours

    def draw(n: int) -> bytes:
        text = layout.as_text(_slip(n))
        image = Image.new("L", size, 255)
        ImageDraw.Draw(image).multiline_text((24, 24), text, font=fonts.regular, fill=0,
                                             spacing=6)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=6)
        return buffer.getvalue()
    return draw


def run(config: BenchConfig) -> BenchReport:
    report = BenchReport(NAME, "slips rendered per second (ESC/POS bytes; PNG e-receipt)")
    fonts = raster.load_fonts()
    report.facts["font"] = fonts.source
    count = SLIPS_QUICK if config.quick else SLIPS
    png_count = PNG_SLIPS_QUICK if config.quick else PNG_SLIPS
    cases = (
        ("escpos", count, lambda n: escpos_out.to_escpos(_slip(n)),
         "plain text .encode('gb18030')",
         lambda n: layout.as_text(_slip(n)).encode("gb18030")),
        ("png", png_count, lambda n: raster.to_png(_slip(n), fonts),
         "Pillow multiline_text + PNG", _reference_png(fonts)),
    )
    for case, items, ours, reference, theirs in cases:
        config.progress(f"printing: {case} x {items}")
        reset_peak_rss()
        ours(0)  # warm: imports, font cache
        seconds = _timed(items, ours)
        rss = peak_rss_bytes()
        theirs(0)
        reference_seconds = _timed(items, theirs)
        report.measurements.append(Measurement(
            database="-", case=case, items=items, batch_size=1, seconds=seconds,
            rate_per_s=items / seconds, reference=reference,
            reference_seconds=reference_seconds,
            reference_rate_per_s=items / reference_seconds, peak_rss_bytes=rss,
            unit="slips"))
    return report
