"""Streaming, columnar parsing of the other side's files (docs/reconciliation.md).

A file is read in chunks of a few megabytes; each chunk's lines become one polars frame
whose fields are cut, checked and converted column by column (no Python work per line).
Byte positions: a chunk of a fixed-width file is decoded as Latin-1 (one character per
byte) so that slicing by characters slices by bytes; the file's own encoding (GBK,
GB 18030, UTF-8) is checked on any chunk that is not plain ASCII, and the few text fields
that may hold Chinese are decoded from it.

What a line needs to be good: the layout's length, a known transaction (or result) code, a
whole amount (fen, or yuan with two decimals), a readable time when the layout has one, and
one complete key. Anything else makes it a *bad line*: its number and reason are reported;
the source's policy then rejects the whole file or quarantines those lines.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO

import polars as pl

from autosettle.domain.errors import ValidationError
from autosettle.domain.recon_layouts import CANONICAL, ControlSpec, SourceSpec, parse_amount

CHUNK_BYTES = 8 * 1024 * 1024
_TEXT_FIELDS = ("merchant_id", "terminal_id", "order_ref", "rrn", "trace", "batch_no")


@dataclass(slots=True)
class ParseReport:
    """What reading a file found (besides the good lines, handed out frame by frame)."""

    file_date: date | None = None
    lines: int = 0
    """Detail lines, good and bad."""
    good: int = 0
    total_minor: int = 0
    """Sum of the amounts that could be read (good and bad lines)."""
    unreadable_amounts: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """File-level: truncation, control totals, a missing header."""
    header: dict[str, int | date] = field(default_factory=dict)
    trailer: dict[str, int | date] = field(default_factory=dict)


def _control(text: str, spec: ControlSpec, fields: list[str] | None,
             unit: str = "fen") -> dict[str, int | date]:
    out: dict[str, int | date] = {}
    for name, pos in spec.fields.items():
        raw = (fields[pos.start] if fields is not None and pos.start < len(fields)
               else text[pos.start:pos.start + pos.width]).strip()
        try:
            if name == "file_date":
                out[name] = datetime.strptime(raw, "%Y%m%d").date()  # noqa: DTZ007
            elif name == "total" and fields is not None:
                out[name] = parse_amount(raw, unit)
            else:
                out[name] = int(raw)
        except (ValueError, ValidationError):
            raise ValidationError(f"control record field {name} {raw!r} is unreadable") from None
    return out


def _lines(handle: BinaryIO, report: ParseReport,
           progress: Callable[[int], None] | None) -> Iterator[tuple[int, list[bytes]]]:
    """(first line number, lines) per chunk; a last line without its line end is noted as
    a truncation."""
    carry = b""
    number = 1
    while True:
        block = handle.read(CHUNK_BYTES)
        if progress is not None and block:
            progress(len(block))
        if not block:
            break
        data = carry + block
        cut = data.rfind(b"\n")
        if cut < 0:
            carry = data
            continue
        carry = data[cut + 1:]
        lines = data[:cut].split(b"\n")
        yield number, lines
        number += len(lines)
    if carry.strip():
        report.problems.append(f"truncated: line {number} has no line end")
        yield number, [carry]


def _bad_encoding(lines: list[bytes], encoding: str, first: int) -> dict[int, str]:
    out = {}
    for i, raw in enumerate(lines):
        try:
            raw.decode(encoding)
        except UnicodeDecodeError:
            out[first + i] = f"not valid {encoding}"
    return out


def parse_file(path: Path, spec: SourceSpec, on_frame: Callable[[pl.DataFrame], None], *,
               file_date: date | None = None,
               progress: Callable[[int], None] | None = None,
               report: ParseReport | None = None) -> ParseReport:
    """Read ``path`` as ``spec`` says; hand every chunk's good lines (canonical columns plus
    ``line_no``) to ``on_frame``; return what was found."""
    report = report if report is not None else ParseReport(file_date=file_date)
    columns: list[str] | None = None
    trailer_seen_at: int | None = None
    with open(path, "rb") as handle:
        for first, raw_lines in _lines(handle, report, progress):
            raw_lines = [r[:-1] if r.endswith(b"\r") else r for r in raw_lines]
            ascii_only = all(r.isascii() for r in raw_lines)
            bad_enc = {} if ascii_only else _bad_encoding(raw_lines, spec.encoding, first)
            if spec.format == "fixed":
                texts = [r.decode("latin-1") for r in raw_lines]
            else:
                texts = [r.decode(spec.encoding, errors="replace") for r in raw_lines]
            numbers = list(range(first, first + len(texts)))
            if first == 1:
                if spec.format == "csv":
                    columns = next(iter(_csv_rows([texts[0]], spec.delimiter)), [])
                    texts, numbers = texts[1:], numbers[1:]
                elif spec.header is not None:
                    if texts and texts[0].startswith(spec.header.tag):
                        report.header = _control(texts[0], spec.header, None)
                        texts, numbers = texts[1:], numbers[1:]
                    else:
                        report.problems.append("no header record on line 1")
            keep_t, keep_n = [], []
            for text, number in zip(texts, numbers, strict=True):
                if not text.strip():
                    continue
                if trailer_seen_at is not None:
                    report.problems.append(f"line {number} comes after the trailer")
                    break
                if spec.trailer is not None and text.startswith(spec.trailer.tag):
                    trailer_seen_at = number
                    fields = _csv_rows([text], spec.delimiter)[0] \
                        if spec.format == "csv" else None
                    report.trailer = _control(text, spec.trailer, fields, spec.amounts)
                    continue
                keep_t.append(text)
                keep_n.append(number)
            if not keep_t:
                continue
            raw = _raw_fields(keep_t, spec, columns)
            frame = _convert(raw.with_columns(pl.Series("line_no", keep_n, pl.Int64)), spec,
                             report.file_date or report.header.get("file_date"),  # type: ignore[arg-type]
                             None if ascii_only else spec.encoding)
            if bad_enc:
                frame = frame.with_columns(pl.when(pl.col("line_no").is_in(list(bad_enc)))
                                           .then(pl.lit(f"not valid {spec.encoding}"))
                                           .otherwise(pl.col("bad")).alias("bad"))
            _account(frame, report)
            good = frame.filter(pl.col("bad").is_null()).select(["line_no", *CANONICAL])
            if good.height:
                on_frame(good)
    if spec.trailer is not None and trailer_seen_at is None:
        report.problems.append("truncated: no trailer record")
    _check_controls(report)
    if report.file_date is None:
        report.file_date = report.header.get("file_date")  # type: ignore[assignment]
    return report


def _account(frame: pl.DataFrame, report: ParseReport) -> None:
    report.lines += frame.height
    amounts = frame.select(pl.col("amount_minor").sum().alias("a"),
                           pl.col("amount_minor").null_count().alias("b"),
                           pl.col("bad").null_count().alias("c")).row(0)
    report.total_minor += int(amounts[0] or 0)
    report.unreadable_amounts += int(amounts[1])
    report.good += int(amounts[2])
    bad = frame.filter(pl.col("bad").is_not_null()).select("line_no", "bad")
    report.bad.extend((int(n), str(r)) for n, r in bad.iter_rows())


def _check_controls(report: ParseReport) -> None:
    for record, what in ((report.header, "header"), (report.trailer, "trailer")):
        count = record.get("count")
        if count is not None and count != report.lines:
            report.problems.append(f"{what} says {count} lines, the file has {report.lines}")
        total = record.get("total")
        if total is not None and report.unreadable_amounts == 0 and total != report.total_minor:
            report.problems.append(f"{what} says a total of {total} fen, the lines add up "
                                   f"to {report.total_minor}")


def _csv_rows(texts: list[str], delimiter: str) -> list[list[str]]:
    import csv
    return list(csv.reader(texts, delimiter=delimiter))


def _raw_fields(texts: list[str], spec: SourceSpec, columns: list[str] | None) -> pl.DataFrame:
    if spec.format == "fixed":
        s = pl.Series("raw", texts, pl.Utf8)
        frame = pl.DataFrame({"raw": s})
        return frame.with_columns(
            [pl.col("raw").str.slice(p.start, p.width).str.strip_chars().alias(name)
             for name, p in spec.fields.items()]
            + [pl.col("raw").str.len_chars().alias("_len")]).drop("raw")
    header = columns or []
    buffer = io.BytesIO("\n".join(texts).encode() + b"\n")
    table = pl.read_csv(buffer, has_header=False, infer_schema=False,
                        separator=spec.delimiter, truncate_ragged_lines=True,
                        new_columns=[f"c{i}" for i in range(len(header))] or None)
    picked = []
    for name, title in spec.columns.items():
        if title in header and f"c{header.index(title)}" in table.columns:
            picked.append(pl.col(f"c{header.index(title)}").str.strip_chars()
                          .str.strip_chars("`").alias(name))
        else:
            picked.append(pl.lit(None, pl.Utf8).alias(name))
    return table.select(picked).with_columns(pl.lit(None, pl.Int64).alias("_len"))


def _blank(name: str) -> pl.Expr:
    return pl.when(pl.col(name).str.len_chars() == 0).then(None).otherwise(pl.col(name))


def _convert(raw: pl.DataFrame, spec: SourceSpec, file_date: date | None,
             non_ascii_encoding: str | None) -> pl.DataFrame:
    """Canonical columns and ``bad`` (the first reason a line is bad, else null)."""
    have = set(raw.columns)

    def col(name: str) -> pl.Expr:
        return _blank(name) if name in have else pl.lit(None, pl.Utf8)

    if spec.amounts == "fen":
        def money(name: str) -> pl.Expr:
            c = col(name)
            return pl.when(c.str.contains(r"^\d{1,16}$")).then(c.str.to_integer(strict=False))
    else:
        def money(name: str) -> pl.Expr:
            c = col(name)
            return pl.when(c.str.contains(r"^\d{1,14}\.\d{2}$")).then(
                c.str.replace(".", "", literal=True).str.to_integer(strict=False))
    code_field = "txn_code" if spec.kind == "channel" else "result_code"
    mapped = col(code_field).replace_strict(dict(spec.codes), default=None,
                                            return_dtype=pl.Utf8)
    when: pl.Expr
    if "txn_time" in have and "txn_date" in have:
        when = (col("txn_date") + " " + col("txn_time")).str.strptime(
            pl.Datetime, f"{spec.date_format} {spec.time_format}", strict=False)
    elif "txn_time" in have and not spec.time_has_year:
        base = file_date or datetime.now(UTC).date()
        year = base.year
        guess = (pl.lit(f"{year}") + col("txn_time")).str.strptime(
            pl.Datetime, "%Y" + spec.time_format, strict=False)
        limit = datetime.combine(base, datetime.min.time())
        when = pl.when(guess > pl.lit(limit) + pl.duration(days=183)).then(
            guess.dt.offset_by("-1y")).otherwise(guess)
    elif "txn_time" in have:
        when = col("txn_time").str.strptime(pl.Datetime, spec.time_format, strict=False)
    else:
        when = pl.lit(None, pl.Datetime)
    out = raw.with_columns(
        mapped.alias("txn_type"), money("amount").alias("amount_minor"),
        money("fee").alias("fee_minor"), when.alias("_when"),
        col("account").str.slice(-4).alias("pan_last4") if "account" in have
        else pl.lit(None, pl.Utf8).alias("pan_last4"),
        *[col(n).alias(n) for n in _TEXT_FIELDS],
    )
    reason_text = pl.lit(None, pl.Utf8)
    if spec.kind == "bank" and "reason" in have:
        reason_text = pl.concat_str([col("reason_code"), col("reason")], separator=" ",
                                    ignore_nulls=True)
        if non_ascii_encoding is not None:
            enc = non_ascii_encoding
            reason_text = reason_text.map_elements(
                lambda s: s.encode("latin-1").decode(enc, errors="replace"),
                return_dtype=pl.Utf8)
    has_key = pl.lit(False)
    for key in spec.keys:
        complete = pl.lit(True)
        for k in key:
            complete = complete & pl.col(k).is_not_null()
        has_key = has_key | complete
    bad: Any = pl.when(pl.lit(spec.format == "fixed") & (pl.col("_len") != spec.record_bytes)).then(
        pl.format("line is {} bytes, the layout says " + str(spec.record_bytes),
                  pl.col("_len")))
    bad = bad.when(pl.col("txn_type").is_null()).then(
        pl.format("unknown code {}", col(code_field).fill_null("(blank)")))
    bad = bad.when(pl.col("amount_minor").is_null()).then(
        pl.format("amount {} is not " + ("whole fen" if spec.amounts == "fen"
                                         else "yuan with two decimals"),
                  col("amount").fill_null("(blank)")))
    bad = bad.when(col("fee").is_not_null() & pl.col("fee_minor").is_null()).then(
        pl.lit("fee is not a number"))
    if "txn_time" in have:
        bad = bad.when(pl.col("_when").is_null()).then(pl.lit("time is not readable"))
    bad = bad.when(~has_key).then(pl.lit("no complete key"))
    tz = spec.timezone
    line_date = pl.col("_when").dt.date() if "txn_time" in have \
        else pl.lit(file_date, pl.Date)
    return out.with_columns(
        bad.alias("bad"),
        line_date.alias("line_date"),
        pl.col("_when").dt.replace_time_zone(tz, ambiguous="earliest",
                                             non_existent="null").dt.epoch("s")
        .alias("txn_at_s"),
        pl.lit(spec.currency).alias("currency"),
        (mapped if spec.kind == "bank" else pl.lit(None, pl.Utf8)).alias("result"),
        reason_text.str.slice(0, 100).alias("reason"),
    )
