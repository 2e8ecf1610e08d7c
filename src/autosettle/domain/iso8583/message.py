"""ISO 8583 messages: encode and decode a payload (MTI, bitmap, fields) with typed errors,
and the checks every field's content passes.

A payload or field that is malformed is a :class:`MessageFormatError` (a
:class:`~autosettle.domain.errors.ValidationError` with ``field`` and, when known, the
``offset`` within the payload). ``pyiso8583``'s own errors are translated once, here; for
any input bytes :func:`decode_message` raises nothing else (a fuzz test proves it). No
error message or repr carries field values, so a PAN, track or key never reaches a log
through them.

>>> from autosettle.domain.iso8583.frame import Frame, Header, Tpdu, decode_frame, encode_frame
>>> frame = Frame(Tpdu(0x60, 0x0003, 0x0000), Header(), encode_message({"t": "0800"}))
>>> wire = encode_frame(frame)
>>> wire.hex()
'0015600003000060310031130108000000000000000000'
>>> decode_message(decode_frame(wire).payload).fields
{'t': '0800'}
>>> decode_frame(wire).tpdu.swapped()
Tpdu(tpdu_id=96, destination=0, source=3)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final, NamedTuple

import iso8583

from autosettle.domain.errors import ValidationError, require
from autosettle.domain.iso8583.spec import (
    BINARY_FIELD_IDS,
    BITMAP_SIZE_BYTES,
    CUP_POS_SPEC,
    FIELD_IDS,
    MAC_FIELD_KEY,
    MAC_FIELD_SIZE_BYTES,
    MTI_SIZE_BYTES,
    NUMERIC_FIELD_IDS,
    SENSITIVE_FIELD_IDS,
    TRACK_FIELD_IDS,
)

MTI_KEY: Final = "t"
"""Key of the message type in a fields dict (pyiso8583's name)."""
BITMAP_KEY: Final = "p"
"""Key pyiso8583 uses for the primary bitmap; never present in our decoded dicts."""
_TRACK_SEPARATOR: Final = "="
_TRACK_SEPARATOR_NIBBLE: Final = "D"
_DIGITS: Final = frozenset("0123456789")
_FIELD_LABELS: Final = {MTI_KEY: "MTI", BITMAP_KEY: "bitmap"}

class MessageFormatError(ValidationError):
    """The ISO 8583 payload or one of its fields is malformed.

    ``field`` is the fields-dict key (``"t"`` for the MTI, ``"p"`` for the bitmap, else
    the field number as a string); ``offset`` is the byte within the payload where the
    field starts, or ``None`` when the problem is not tied to a position (encoding).
    """

    def __init__(self, message: str, *, field: str, offset: int | None = None) -> None:
        label = _FIELD_LABELS.get(field, f"field {field}")
        where = "" if offset is None else f" at byte {offset}"
        super().__init__(f"{label}{where}: {message}")
        self.field = field
        self.offset = offset


# --------------------------------------------------------------------------- message


class MessageFields(dict[str, str]):
    """A fields dict (``"t"`` for the MTI, ``"2"``..``"64"``) whose repr hides card data.

    Values are strings as in ``pyiso8583``: digits for numeric fields, upper-case hex for
    binary fields, ``=`` as the track separator.
    """

    def __repr__(self) -> str:
        shown = (
            f"{key!r}: <{len(value)} chars hidden>"
            if key in SENSITIVE_FIELD_IDS
            else f"{key!r}: {value!r}"
            for key, value in self.items()
        )
        return "{" + ", ".join(shown) + "}"


class DecodedMessage(NamedTuple):
    """A decoded payload: its fields, and the bytes field 64 covers (MTI to field 63)."""

    fields: MessageFields
    mac_data: bytes

    def __repr__(self) -> str:
        return f"DecodedMessage(fields={self.fields!r}, mac_data=<{len(self.mac_data)} bytes>)"


MacFunction = Callable[[bytes], bytes]
"""Computes the 8-byte field 64 over the message bytes from the MTI to field 63."""


def encode_message(fields: Mapping[str, str], *, mac: MacFunction | None = None) -> bytes:
    """Encode a fields dict into an ISO 8583 payload (MTI onwards).

    With ``mac``, field 64 is added and set to ``mac(payload without field 64)``; the
    bitmap then already has bit 64 set, as CUP terminals compute it.

    >>> encode_message({"t": "0200", "3": "000000", "22": "021"}).hex()
    '020020000400000000000000000210'
    """
    doc = _prepare_for_encoding(fields)
    if mac is None:
        return _encode(doc)
    doc[MAC_FIELD_KEY] = "00" * MAC_FIELD_SIZE_BYTES
    mac_data = _encode(doc)[:-MAC_FIELD_SIZE_BYTES]
    code = mac(mac_data)
    require(len(code) == MAC_FIELD_SIZE_BYTES, "a MAC function must return 8 bytes")
    return mac_data + code


def decode_message(payload: bytes) -> DecodedMessage:
    """Decode an ISO 8583 payload (MTI onwards) into fields; check every field's content.

    Raises only :class:`MessageFormatError`, whatever the bytes.

    >>> decode_message(bytes.fromhex("020020000400000000000000000210")).fields
    {'t': '0200', '3': '000000', '22': '021'}
    """
    _check_bitmap(payload)
    try:
        doc_dec, doc_enc = iso8583.decode(payload, CUP_POS_SPEC)
    except iso8583.DecodeError as exc:
        # Copy out what we need: the library error holds the raw bytes (card data), so it
        # must not ride along as __context__ of our error.
        key, offset, reason = exc.field, exc.pos, exc.msg
    else:
        return _validated(payload, doc_dec, doc_enc)
    raise MessageFormatError(reason, field=key, offset=offset)


def _encode(doc: dict[str, str]) -> bytes:
    try:
        raw, _ = iso8583.encode(doc, CUP_POS_SPEC)
    except iso8583.EncodeError as exc:
        key, reason = exc.field, exc.msg
    else:
        return bytes(raw)
    raise MessageFormatError(reason, field=key)


def _prepare_for_encoding(fields: Mapping[str, str]) -> dict[str, str]:
    if MTI_KEY not in fields:
        raise MessageFormatError("is required", field=MTI_KEY)
    doc: dict[str, str] = {}
    for key, value in fields.items():
        if key == BITMAP_KEY:
            continue  # computed by the encoder
        if not isinstance(key, str):
            raise MessageFormatError("field keys must be strings", field=repr(key))
        if key != MTI_KEY and not (key.isdigit() and int(key) in FIELD_IDS):
            raise MessageFormatError("is not in the CUP POS layout", field=key)
        if not isinstance(value, str):
            raise MessageFormatError("value must be a string", field=key)
        problem = _content_problem(key, value)
        if problem is not None:
            raise MessageFormatError(problem, field=key)
        if key in TRACK_FIELD_IDS:
            value = value.replace(_TRACK_SEPARATOR, _TRACK_SEPARATOR_NIBBLE)
        doc[key] = value
    return doc


def _check_bitmap(payload: bytes) -> None:
    """Refuse bitmaps naming fields outside the layout (pyiso8583 would fail on them)."""
    if len(payload) < MTI_SIZE_BYTES + BITMAP_SIZE_BYTES:
        return  # too short: pyiso8583 reports the missing MTI or bitmap
    bitmap = int.from_bytes(payload[MTI_SIZE_BYTES : MTI_SIZE_BYTES + BITMAP_SIZE_BYTES], "big")
    for number in range(1, BITMAP_SIZE_BYTES * 8 + 1):
        present = bitmap >> (BITMAP_SIZE_BYTES * 8 - number) & 1
        if present and number not in FIELD_IDS:
            reason = (
                "secondary bitmap is not used in the CUP POS layout"
                if number == 1
                else "field is not in the CUP POS layout"
            )
            raise MessageFormatError(
                reason, field=str(number), offset=MTI_SIZE_BYTES + (number - 1) // 8
            )


def _validated(
    payload: bytes, doc_dec: dict[str, str], doc_enc: dict[str, dict[str, bytes]]
) -> DecodedMessage:
    fields = MessageFields()
    offset = 0
    for key, parts in doc_enc.items():
        value = doc_dec[key]
        if key != BITMAP_KEY:
            if key in TRACK_FIELD_IDS:
                value = value.replace(_TRACK_SEPARATOR_NIBBLE, _TRACK_SEPARATOR)
            problem = _content_problem(key, value)
            if problem is not None:
                raise MessageFormatError(problem, field=key, offset=offset)
            fields[key] = value
        offset += len(parts["len"]) + len(parts["data"])
    has_mac = MAC_FIELD_KEY in fields
    mac_data = payload[:-MAC_FIELD_SIZE_BYTES] if has_mac else payload
    return DecodedMessage(fields, bytes(mac_data))


def _content_problem(key: str, value: str) -> str | None:
    """Why ``value`` is not acceptable content for field ``key``, or None."""
    if key == MTI_KEY:
        if len(value) != 2 * MTI_SIZE_BYTES or not is_digits(value):
            return "must be 4 decimal digits"
    elif key in NUMERIC_FIELD_IDS:
        if not is_digits(value):
            return "must be decimal digits (bad BCD)"
    elif key in TRACK_FIELD_IDS:
        if not all(c in _DIGITS or c == _TRACK_SEPARATOR for c in value):
            return "must be digits and '=' separators"
    elif key in BINARY_FIELD_IDS:
        if len(value) % 2:
            return "binary data must be an even number of hex digits"
    elif not value.isprintable():  # an/ans text: no control characters (NUL, CR, LF, ...)
        return "must be printable text"
    return None


def is_digits(value: str) -> bool:
    """Only ASCII digits (``str.isdigit`` also accepts other scripts' digits)."""
    return all(c in _DIGITS for c in value)


# --------------------------------------------------------------------------- helpers


def check_digits(field_id: str, name: str, value: object, size: int) -> None:
    """``value`` is a string of exactly ``size`` digits, else :class:`MessageFormatError`."""
    if not (isinstance(value, str) and len(value) == size and is_digits(value)):
        raise MessageFormatError(f"{name} must be {size} digits", field=field_id)


def check_range(field_id: str, name: str, value: object, maximum: int) -> None:
    """``value`` is an integer 0..``maximum``, else :class:`MessageFormatError`."""
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= maximum
    if not ok:
        raise MessageFormatError(f"{name} must be an integer 0..{maximum}", field=field_id)
