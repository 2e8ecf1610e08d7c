"""Declarative layouts of the other side's files (docs/reconciliation.md, "File layouts").

A *source* (the ACP detail file, a CSV statement, the bank return file ...) is described by
data, not code: ``services/recon_sources.toml`` holds the built-in ones and
:func:`sources_from_dict` turns that document into :class:`SourceSpec` values. The bulk
parser (``services/recon_parse.py``) reads whole chunks of lines with these specs; the
scalar helpers here (:func:`parse_amount`, :func:`fixed_record`) serve the file writers of
the simulators and the property tests.

Every imported line becomes the same *canonical* columns (:data:`CANONICAL`), whatever the
source: the matcher knows nothing of layouts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from autosettle.domain.errors import ValidationError

CANONICAL: Final = ("txn_type", "line_date", "txn_at_s", "merchant_id", "terminal_id",
                    "order_ref", "rrn", "trace", "batch_no", "pan_last4", "amount_minor",
                    "fee_minor", "currency", "result", "reason")
"""The columns of every imported line (``recon_lines``), besides file, line number and
source. ``txn_at_s``: seconds since the epoch, UTC. Amounts in fen, as in the file
(unsigned); the sign comes from ``txn_type``."""

KEY_COLUMNS: Final = frozenset({"order_ref", "rrn", "trace", "batch_no", "terminal_id",
                                "merchant_id"})
POLICIES: Final = ("reject", "quarantine")
FORMATS: Final = ("fixed", "csv")
KINDS: Final = ("channel", "bank")
UNITS: Final = ("fen", "yuan")
_FEN = re.compile(r"^\d{1,16}$")
_YUAN = re.compile(r"^-?\d{1,14}\.\d{2}$")


@dataclass(frozen=True, slots=True)
class FixedField:
    """A field of a fixed-width record: 0-based byte offset and width in bytes."""

    start: int
    width: int


@dataclass(frozen=True, slots=True)
class ControlSpec:
    """A header or trailer: the record starting with ``tag`` and its fields (``file_date``,
    ``count``, ``total``) at byte offsets (fixed) or column positions (CSV)."""

    tag: str
    fields: Mapping[str, FixedField]


@dataclass(frozen=True, slots=True)
class SourceSpec:
    name: str
    kind: str
    channel: str
    format: str
    encoding: str
    amounts: str
    on_bad_lines: str
    fields: Mapping[str, FixedField] = field(default_factory=dict)
    """fixed: raw field name -> position."""
    columns: Mapping[str, str] = field(default_factory=dict)
    """csv: raw field name -> column header."""
    record_bytes: int = 0
    """fixed: the exact length of a detail record (without the line end)."""
    header: ControlSpec | None = None
    trailer: ControlSpec | None = None
    codes: Mapping[str, str] = field(default_factory=dict)
    """The file's transaction (or result) codes -> txn_type (or ``paid``/``returned``)."""
    time_format: str = "%Y%m%d%H%M%S"
    """strptime format of ``txn_time`` (a format without a year takes the file's)."""
    date_format: str = "%Y%m%d"
    timezone: str = "Asia/Shanghai"
    currency: str = "CNY"
    keys: tuple[tuple[str, ...], ...] = ()
    """Key column sets, tried in order: a line pairs with one of ours on the first set
    whose columns it has."""
    delimiter: str = ","

    @property
    def time_has_year(self) -> bool:
        return "%Y" in self.time_format


def _positions(widths: Sequence[int], separator: int) -> list[FixedField]:
    out, at = [], 0
    for width in widths:
        out.append(FixedField(at, width))
        at += width + separator
    return out


def _control(raw: Mapping[str, Any] | None, what: str) -> ControlSpec | None:
    if raw is None:
        return None
    tag = str(raw["tag"])
    fields = {}
    for name, (start, width) in raw.get("fields", {}).items():
        if name not in ("file_date", "count", "total"):
            raise ValidationError(f"{what}: unknown control field {name!r}")
        fields[name] = FixedField(int(start) - 1, int(width))
    return ControlSpec(tag, fields)


def source_from_dict(name: str, raw: Mapping[str, Any]) -> SourceSpec:
    """One ``[sources.NAME]`` table; ``ValidationError`` for anything it cannot mean."""
    fmt = raw.get("format", "fixed")
    for value, allowed, what in ((fmt, FORMATS, "format"), (raw.get("kind"), KINDS, "kind"),
                                 (raw.get("amounts", "fen"), UNITS, "amounts"),
                                 (raw.get("on_bad_lines", "reject"), POLICIES, "on_bad_lines")):
        if value not in allowed:
            raise ValidationError(f"source {name}: {what} must be one of {allowed}")
    try:
        "".encode(raw.get("encoding", "utf-8"))
    except LookupError:
        raise ValidationError(f"source {name}: unknown encoding") from None
    fields: dict[str, FixedField] = {}
    record_bytes = 0
    if fmt == "fixed":
        if "widths" in raw:
            positions = _positions([int(w) for w in raw["widths"]], int(raw.get("separator", 0)))
            for fname, index in raw["fields"].items():
                fields[fname] = positions[int(index) - 1]
            last = positions[-1]
            record_bytes = last.start + last.width
        else:
            for fname, (start, width) in raw["fields"].items():
                fields[fname] = FixedField(int(start) - 1, int(width))
            record_bytes = int(raw["record_bytes"])
    keys = tuple(tuple(k) for k in raw.get("keys", [["order_ref"]]))
    for key in keys:
        if not key or not set(key) <= KEY_COLUMNS:
            raise ValidationError(f"source {name}: key columns must be among "
                                  f"{sorted(KEY_COLUMNS)}")
    return SourceSpec(
        name=name, kind=raw["kind"], channel=raw.get("channel", ""), format=fmt,
        encoding=raw.get("encoding", "utf-8"), amounts=raw.get("amounts", "fen"),
        on_bad_lines=raw.get("on_bad_lines", "reject"), fields=fields,
        columns=dict(raw.get("columns", {})), record_bytes=record_bytes,
        header=_control(raw.get("header"), name), trailer=_control(raw.get("trailer"), name),
        codes=dict(raw.get("codes", {})), time_format=raw.get("time_format", "%Y%m%d%H%M%S"),
        date_format=raw.get("date_format", "%Y%m%d"),
        timezone=raw.get("timezone", "Asia/Shanghai"), currency=raw.get("currency", "CNY"),
        keys=keys, delimiter=raw.get("delimiter", ","))


def sources_from_dict(doc: Mapping[str, Any]) -> dict[str, SourceSpec]:
    """Every source of a parsed configuration document (``[sources.NAME]`` tables)."""
    return {name: source_from_dict(name, raw) for name, raw in doc.get("sources", {}).items()}


def parse_amount(text: str, unit: str) -> int:
    """Fen from the file's text: digits (fen) or ``123.45`` (yuan, exactly two decimals).

    >>> parse_amount("000000012345", "fen"), parse_amount("123.45", "yuan")
    (12345, 12345)
    """
    text = text.strip()
    if unit == "fen":
        if not _FEN.match(text):
            raise ValidationError(f"amount {text!r} is not a whole number of fen")
        return int(text)
    if not _YUAN.match(text):
        raise ValidationError(f"amount {text!r} is not yuan with two decimals")
    try:
        return int(Decimal(text) * 100)
    except InvalidOperation:  # pragma: no cover - the pattern admits none
        raise ValidationError(f"amount {text!r} is not a number") from None


def fixed_record(spec: SourceSpec, values: Mapping[str, str], encoding: str | None = None,
                 ) -> bytes:
    """One detail record of ``spec`` (writers: simulators, tests): every field padded to
    its width (numbers right-aligned with zeros, text left-aligned with spaces), the
    separators spaces; widths count bytes in the file's encoding."""
    enc = encoding or spec.encoding
    out = bytearray(b" " * spec.record_bytes)
    for name, pos in spec.fields.items():
        text = values.get(name, "")
        raw = text.encode(enc)
        if len(raw) > pos.width:
            raise ValidationError(f"{name} {text!r} is wider than {pos.width} bytes")
        cell = raw.rjust(pos.width, b"0") if text.isdigit() else raw.ljust(pos.width, b" ")
        out[pos.start:pos.start + pos.width] = cell
    return bytes(out)


def control_record(control: ControlSpec, file_date: date, count: int, total: int) -> bytes:
    """A header or trailer of a fixed-width file."""
    width = max((p.start + p.width for p in control.fields.values()), default=len(control.tag))
    out = bytearray(b" " * width)
    out[:len(control.tag)] = control.tag.encode()
    values = {"file_date": f"{file_date:%Y%m%d}", "count": str(count), "total": str(total)}
    for name, pos in control.fields.items():
        out[pos.start:pos.start + pos.width] = values[name].rjust(pos.width, "0").encode()
    return bytes(out)
