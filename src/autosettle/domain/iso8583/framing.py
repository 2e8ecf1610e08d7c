"""Frames and messages on the wire, and the layouts of the private fields 48, 60 and 61.

One frame as a CUP POS terminal sends it::

    +-----------+--------------------+----------------------+-------------------------+
    | length    | TPDU (5 bytes)     | header (6 bytes)     | ISO 8583 payload        |
    | 2 B, big- | id, destination,   | app type, version,   | MTI (2 B BCD), bitmap   |
    | endian    | source address     | status|request, sw   | (8 B), fields ... 64    |
    +-----------+--------------------+----------------------+-------------------------+

The length counts everything after itself. Errors are values of two types, both
:class:`~autosettle.domain.errors.ValidationError`:

* :class:`FrameError` - the length, TPDU or header is wrong (``part``, ``offset``);
* :class:`MessageFormatError` - the payload or one field is malformed (``field``,
  ``offset`` within the payload when known).

``pyiso8583``'s own errors are translated once, here; for any input bytes
:func:`decode_frame` and :func:`decode_message` raise nothing else (a fuzz test proves
it). No error message or repr carries field values, so a PAN, track or key never reaches
a log through them.

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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
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

# --------------------------------------------------------------------------- limits

LENGTH_PREFIX_SIZE_BYTES: Final = 2
TPDU_SIZE_BYTES: Final = 5
HEADER_SIZE_BYTES: Final = 6
FRAME_SIZE_BYTES_MIN: Final = (
    TPDU_SIZE_BYTES + HEADER_SIZE_BYTES + MTI_SIZE_BYTES + BITMAP_SIZE_BYTES
)
"""Smallest frame body (after the length prefix): TPDU, header, MTI and bitmap."""
FRAME_SIZE_BYTES_MAX: Final = 2048
"""Largest frame body we accept; every field at its maximum length makes 1873 bytes."""

MTI_KEY: Final = "t"
"""Key of the message type in a fields dict (pyiso8583's name)."""
BITMAP_KEY: Final = "p"
"""Key pyiso8583 uses for the primary bitmap; never present in our decoded dicts."""

TPDU_ID_TRANSACTION: Final = 0x60
_TRACK_SEPARATOR: Final = "="
_TRACK_SEPARATOR_NIBBLE: Final = "D"
_DIGITS: Final = frozenset("0123456789")
_FIELD_LABELS: Final = {MTI_KEY: "MTI", BITMAP_KEY: "bitmap"}

# --------------------------------------------------------------------------- errors


class FrameError(ValidationError):
    """The frame around the ISO 8583 payload is wrong: length, TPDU or header.

    ``part`` is one of ``"length"``, ``"tpdu"``, ``"header"``, ``"payload"``; ``offset``
    is the byte within the frame (length prefix included) where the problem starts.
    """

    def __init__(self, message: str, *, part: str, offset: int) -> None:
        super().__init__(f"frame {part} at byte {offset}: {message}")
        self.part = part
        self.offset = offset


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


# --------------------------------------------------------------------------- frame


@dataclass(frozen=True, slots=True)
class Tpdu:
    """Transport protocol data unit: id (``0x60``), destination and source address."""

    tpdu_id: int = TPDU_ID_TRANSACTION
    destination: int = 0
    source: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.tpdu_id <= 0xFF:
            raise ValidationError("TPDU id must fit in one byte")
        if not (0 <= self.destination <= 0xFFFF and 0 <= self.source <= 0xFFFF):
            raise ValidationError("TPDU addresses must fit in two bytes")

    def swapped(self) -> Tpdu:
        """The TPDU of the answer: source and destination exchanged."""
        return Tpdu(self.tpdu_id, destination=self.source, source=self.destination)

    def to_bytes(self) -> bytes:
        """The 5 wire bytes."""
        return (
            bytes([self.tpdu_id])
            + self.destination.to_bytes(2, "big")
            + self.source.to_bytes(2, "big")
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Tpdu:
        """Parse exactly 5 bytes."""
        if len(data) != TPDU_SIZE_BYTES:
            raise FrameError(
                f"TPDU is {len(data)} bytes, expecting {TPDU_SIZE_BYTES}",
                part="tpdu",
                offset=LENGTH_PREFIX_SIZE_BYTES,
            )
        return cls(data[0], int.from_bytes(data[1:3], "big"), int.from_bytes(data[3:5], "big"))


@dataclass(frozen=True, slots=True)
class Header:
    """The 6-byte CUP message header (e.g. ``60 31 00 31 13 01``).

    Byte 0 application type, byte 1 software version, byte 2 terminal status (high
    nibble) and processing request (low nibble), bytes 3-5 software sub-version. The
    codec does not interpret them; the host decides what to check and what to answer.
    """

    application_type: int = 0x60
    version: int = 0x31
    terminal_status: int = 0
    processing_request: int = 0
    software_version: bytes = bytes.fromhex("311301")

    def __post_init__(self) -> None:
        if not (0 <= self.application_type <= 0xFF and 0 <= self.version <= 0xFF):
            raise ValidationError("header application type and version are one byte each")
        if not (0 <= self.terminal_status <= 0xF and 0 <= self.processing_request <= 0xF):
            raise ValidationError("header terminal status and processing request are nibbles")
        if len(self.software_version) != 3:
            raise ValidationError("header software version is 3 bytes")

    def to_bytes(self) -> bytes:
        """The 6 wire bytes."""
        status = (self.terminal_status << 4) | self.processing_request
        return bytes([self.application_type, self.version, status]) + self.software_version

    @classmethod
    def from_bytes(cls, data: bytes) -> Header:
        """Parse exactly 6 bytes."""
        if len(data) != HEADER_SIZE_BYTES:
            raise FrameError(
                f"header is {len(data)} bytes, expecting {HEADER_SIZE_BYTES}",
                part="header",
                offset=LENGTH_PREFIX_SIZE_BYTES + TPDU_SIZE_BYTES,
            )
        return cls(data[0], data[1], data[2] >> 4, data[2] & 0xF, bytes(data[3:6]))


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame: TPDU, header and the ISO 8583 payload (MTI onwards)."""

    tpdu: Tpdu
    header: Header
    payload: bytes = field(repr=False)

    def answer(self, payload: bytes, header: Header | None = None) -> Frame:
        """The frame carrying ``payload`` back: TPDU swapped, same header by default."""
        return Frame(self.tpdu.swapped(), header or self.header, payload)


def encode_frame(frame: Frame) -> bytes:
    """Serialize a frame with its 2-byte big-endian length prefix."""
    body = frame.tpdu.to_bytes() + frame.header.to_bytes() + frame.payload
    if not FRAME_SIZE_BYTES_MIN <= len(body) <= FRAME_SIZE_BYTES_MAX:
        raise FrameError(
            f"frame body of {len(body)} bytes is outside "
            f"{FRAME_SIZE_BYTES_MIN}..{FRAME_SIZE_BYTES_MAX}",
            part="length",
            offset=0,
        )
    return len(body).to_bytes(LENGTH_PREFIX_SIZE_BYTES, "big") + body


def parse_frame_length(prefix: bytes) -> int:
    """Read the 2-byte length prefix and check it against the frame size limits.

    A socket reader calls this on the first two bytes, then reads exactly that many more
    and hands them to :func:`decode_frame_body`.
    """
    if len(prefix) != LENGTH_PREFIX_SIZE_BYTES:
        raise FrameError(
            f"length prefix is {len(prefix)} bytes, expecting {LENGTH_PREFIX_SIZE_BYTES}",
            part="length",
            offset=0,
        )
    size_bytes = int.from_bytes(prefix, "big")
    if not FRAME_SIZE_BYTES_MIN <= size_bytes <= FRAME_SIZE_BYTES_MAX:
        raise FrameError(
            f"declared length {size_bytes} is outside "
            f"{FRAME_SIZE_BYTES_MIN}..{FRAME_SIZE_BYTES_MAX}",
            part="length",
            offset=0,
        )
    return size_bytes


def decode_frame_body(body: bytes) -> Frame:
    """Split a frame body (everything after the length prefix) into TPDU, header, payload."""
    if len(body) < FRAME_SIZE_BYTES_MIN:
        if len(body) < TPDU_SIZE_BYTES:
            part = "tpdu"
        elif len(body) < TPDU_SIZE_BYTES + HEADER_SIZE_BYTES:
            part = "header"
        else:
            part = "payload"
        raise FrameError(
            f"frame body is {len(body)} bytes, expecting at least {FRAME_SIZE_BYTES_MIN}",
            part=part,
            offset=LENGTH_PREFIX_SIZE_BYTES + len(body),
        )
    if len(body) > FRAME_SIZE_BYTES_MAX:
        raise FrameError(
            f"frame body is {len(body)} bytes, more than {FRAME_SIZE_BYTES_MAX}",
            part="length",
            offset=0,
        )
    header_end = TPDU_SIZE_BYTES + HEADER_SIZE_BYTES
    return Frame(
        Tpdu.from_bytes(bytes(body[:TPDU_SIZE_BYTES])),
        Header.from_bytes(bytes(body[TPDU_SIZE_BYTES:header_end])),
        bytes(body[header_end:]),
    )


def decode_frame(data: bytes) -> Frame:
    """Parse one complete frame, length prefix included; the length must match exactly."""
    size_bytes = parse_frame_length(bytes(data[:LENGTH_PREFIX_SIZE_BYTES]))
    body = data[LENGTH_PREFIX_SIZE_BYTES:]
    if len(body) != size_bytes:
        raise FrameError(
            f"length prefix says {size_bytes} bytes, {len(body)} follow",
            part="length",
            offset=0,
        )
    return decode_frame_body(bytes(body))


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
        if len(value) != 2 * MTI_SIZE_BYTES or not _is_digits(value):
            return "must be 4 decimal digits"
    elif key in NUMERIC_FIELD_IDS:
        if not _is_digits(value):
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


def _is_digits(value: str) -> bool:
    return all(c in _DIGITS for c in value)


# --------------------------------------------------------------------------- helpers


def _check_digits(field_id: str, name: str, value: object, size: int) -> None:
    if not (isinstance(value, str) and len(value) == size and _is_digits(value)):
        raise MessageFormatError(f"{name} must be {size} digits", field=field_id)


def _check_range(field_id: str, name: str, value: object, maximum: int) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= maximum
    if not ok:
        raise MessageFormatError(f"{name} must be an integer 0..{maximum}", field=field_id)


# --------------------------------------------------------------------------- field 60


class TransactionType(StrEnum):
    """Field 60.1: the transaction type code."""

    NETWORK_MANAGEMENT = "00"
    BALANCE_INQUIRY = "01"
    PRE_AUTH = "10"
    PRE_AUTH_VOID = "11"
    COMPLETION = "20"
    COMPLETION_VOID = "21"
    SALE = "22"
    VOID = "23"
    REFUND = "25"


class NetworkManagementCode(StrEnum):
    """Field 60.3 codes every source agrees on (end of batch upload is 202 or 207)."""

    FINANCIAL = "000"
    SIGN_ON_SINGLE_LENGTH = "001"
    SIGN_OFF = "002"
    SIGN_ON_DOUBLE_LENGTH = "003"
    SIGN_ON_DOUBLE_LENGTH_WITH_TDK = "004"
    SETTLEMENT = "201"
    IC_ADVICE_UPLOAD = "203"
    ECHO = "301"


FIELD60_DIGITS_MIN: Final = 11
FIELD60_DIGITS_MAX: Final = 19
BATCH_NO_MAX: Final = 999_999
TRACE_MAX: Final = 999_999


@dataclass(frozen=True, slots=True)
class Field60:
    """Field 60: 60.1 type (2), 60.2 batch (6), 60.3 network management code (3), then
    optionally 60.4 (1, terminal read capability) and 60.5 (1, IC condition code), then
    any further sub-fields kept verbatim in ``extension``."""

    txn_type: str
    batch_no: int
    network_mgmt_code: str
    read_capability: str | None = None
    ic_condition: str | None = None
    extension: str = ""

    def __post_init__(self) -> None:
        _check_digits("60", "60.1", self.txn_type, 2)
        _check_range("60", "60.2 batch number", self.batch_no, BATCH_NO_MAX)
        _check_digits("60", "60.3", self.network_mgmt_code, 3)
        if self.read_capability is not None:
            _check_digits("60", "60.4", self.read_capability, 1)
        if self.ic_condition is not None:
            _check_digits("60", "60.5", self.ic_condition, 1)
            if self.read_capability is None:
                raise MessageFormatError("60.5 needs 60.4", field="60")
        if self.extension:
            if self.ic_condition is None:
                raise MessageFormatError("sub-fields after 60.5 need 60.4 and 60.5", field="60")
            if not _is_digits(self.extension) or len(build_field60(self)) > FIELD60_DIGITS_MAX:
                raise MessageFormatError("extension must be digits within n..19", field="60")


def build_field60(value: Field60) -> str:
    """Field 60 as its digit string.

    >>> build_field60(Field60(TransactionType.SALE, 1, "000", "6", "0"))
    '2200000100060'
    """
    return (
        f"{value.txn_type}{value.batch_no:06d}{value.network_mgmt_code}"
        f"{value.read_capability or ''}{value.ic_condition or ''}{value.extension}"
    )


def parse_field60(value: str) -> Field60:
    """Parse field 60 (11 to 19 digits)."""
    if not (FIELD60_DIGITS_MIN <= len(value) <= FIELD60_DIGITS_MAX and _is_digits(value)):
        raise MessageFormatError(
            f"must be {FIELD60_DIGITS_MIN} to {FIELD60_DIGITS_MAX} digits", field="60"
        )
    return Field60(
        txn_type=value[0:2],
        batch_no=int(value[2:8]),
        network_mgmt_code=value[8:11],
        read_capability=value[11:12] or None,
        ic_condition=value[12:13] or None,
        extension=value[13:],
    )


# --------------------------------------------------------------------------- field 61

FIELD61_DIGITS_SHORT: Final = 12
FIELD61_DIGITS_WITH_DATE: Final = 16
FIELD61_DIGITS_MAX: Final = 29


@dataclass(frozen=True, slots=True)
class Field61:
    """Field 61, original message: batch (6), trace (6), optional date MMDD (4), rest."""

    batch_no: int
    trace: int
    date_mmdd: str | None = None
    extension: str = ""

    def __post_init__(self) -> None:
        _check_range("61", "61.1 original batch", self.batch_no, BATCH_NO_MAX)
        _check_range("61", "61.2 original trace", self.trace, TRACE_MAX)
        if self.date_mmdd is not None:
            _check_digits("61", "61.3 original date", self.date_mmdd, 4)
        if self.extension:
            if self.date_mmdd is None:
                raise MessageFormatError("sub-fields after 61.3 need 61.3", field="61")
            too_long = FIELD61_DIGITS_WITH_DATE + len(self.extension) > FIELD61_DIGITS_MAX
            if not _is_digits(self.extension) or too_long:
                raise MessageFormatError("extension must be digits within n...29", field="61")


def build_field61(value: Field61) -> str:
    """Field 61 as its digit string.

    >>> build_field61(Field61(batch_no=1, trace=123, date_mmdd="0412"))
    '0000010001230412'
    """
    return f"{value.batch_no:06d}{value.trace:06d}{value.date_mmdd or ''}{value.extension}"


def parse_field61(value: str) -> Field61:
    """Parse field 61 (12 digits, or 16 to 29 digits with the original date)."""
    fits = len(value) == FIELD61_DIGITS_SHORT or (
        FIELD61_DIGITS_WITH_DATE <= len(value) <= FIELD61_DIGITS_MAX
    )
    if not (fits and _is_digits(value)):
        raise MessageFormatError("must be 12 digits, or 16 to 29 with the date", field="61")
    return Field61(
        batch_no=int(value[0:6]),
        trace=int(value[6:12]),
        date_mmdd=value[12:16] or None,
        extension=value[16:],
    )


# --------------------------------------------------------------------------- field 48

AMOUNT_MINOR_MAX: Final = 10**12 - 1
"""n12 amounts in fen."""
SETTLEMENT_COUNT_MAX: Final = 999
SETTLEMENT_BLOCK_DIGITS: Final = 12 + 3 + 12 + 3 + 1
SETTLEMENT_FIELD_DIGITS: Final = 2 * SETTLEMENT_BLOCK_DIGITS


class ReconciliationCode(StrEnum):
    """The last digit of each settlement block: ``0`` in requests, the verdict in answers."""

    REQUEST = "0"
    BALANCED = "1"
    NOT_BALANCED = "2"
    ERROR = "3"


_RECONCILIATION_CODES: Final = frozenset(code.value for code in ReconciliationCode)


@dataclass(frozen=True, slots=True)
class CardTotals:
    """One settlement block (domestic or foreign cards) of field 48."""

    debit_amount_minor: int = 0
    debit_count: int = 0
    credit_amount_minor: int = 0
    credit_count: int = 0
    code: ReconciliationCode = ReconciliationCode.REQUEST

    def __post_init__(self) -> None:
        _check_range("48", "debit amount", self.debit_amount_minor, AMOUNT_MINOR_MAX)
        _check_range("48", "debit count", self.debit_count, SETTLEMENT_COUNT_MAX)
        _check_range("48", "credit amount", self.credit_amount_minor, AMOUNT_MINOR_MAX)
        _check_range("48", "credit count", self.credit_count, SETTLEMENT_COUNT_MAX)
        if not isinstance(self.code, ReconciliationCode):
            raise MessageFormatError("reconciliation code is not a known code", field="48")


@dataclass(frozen=True, slots=True)
class SettlementTotals:
    """Field 48 of 0500/0510: the domestic block, then the foreign block (62 digits)."""

    domestic: CardTotals
    foreign: CardTotals = CardTotals()


def build_settlement_totals(totals: SettlementTotals) -> str:
    """Field 48 of a settlement message as its digit string."""
    return "".join(
        f"{block.debit_amount_minor:012d}{block.debit_count:03d}"
        f"{block.credit_amount_minor:012d}{block.credit_count:03d}{block.code.value}"
        for block in (totals.domestic, totals.foreign)
    )


def parse_settlement_totals(value: str) -> SettlementTotals:
    """Parse field 48 of a settlement message (exactly 62 digits)."""
    if len(value) != SETTLEMENT_FIELD_DIGITS or not _is_digits(value):
        raise MessageFormatError(
            f"settlement totals must be {SETTLEMENT_FIELD_DIGITS} digits", field="48"
        )
    blocks = [
        value[start : start + SETTLEMENT_BLOCK_DIGITS] for start in (0, SETTLEMENT_BLOCK_DIGITS)
    ]
    return SettlementTotals(*(_parse_card_totals(block) for block in blocks))


def _parse_card_totals(block: str) -> CardTotals:
    if block[30] not in _RECONCILIATION_CODES:
        raise MessageFormatError("reconciliation code is not a known code", field="48")
    return CardTotals(
        debit_amount_minor=int(block[0:12]),
        debit_count=int(block[12:15]),
        credit_amount_minor=int(block[15:27]),
        credit_count=int(block[27:30]),
        code=ReconciliationCode(block[30]),
    )


# --------------------------------------------------------------------------- 0320 field 48

BATCH_UPLOAD_ENTRIES_MAX: Final = 8
BATCH_UPLOAD_ENTRY_DIGITS: Final = 40
BATCH_UPLOAD_PAN_DIGITS: Final = 20
BATCH_UPLOAD_TOTAL_DIGITS: Final = 4
PAN_DIGITS_MIN: Final = 12
PAN_DIGITS_MAX: Final = 19


class CardOrganisation(StrEnum):
    """First two digits of a batch upload entry."""

    DOMESTIC = "00"
    FOREIGN = "01"


_CARD_ORGANISATIONS: Final = frozenset(org.value for org in CardOrganisation)


@dataclass(frozen=True, slots=True)
class BatchUploadEntry:
    """One 40-digit entry of a 0320 batch upload: org, trace, PAN (zero-padded), amount."""

    card_org: CardOrganisation
    trace: int
    pan: str = field(repr=False)
    amount_minor: int

    def __post_init__(self) -> None:
        if not isinstance(self.card_org, CardOrganisation):
            raise MessageFormatError("card organisation is not a known code", field="48")
        _check_range("48", "trace", self.trace, TRACE_MAX)
        _check_range("48", "amount", self.amount_minor, AMOUNT_MINOR_MAX)
        pan_ok = PAN_DIGITS_MIN <= len(self.pan) <= PAN_DIGITS_MAX and _is_digits(self.pan)
        if not pan_ok or self.pan.startswith("0"):
            raise MessageFormatError("PAN must be 12 to 19 digits, not starting 0", field="48")

    @property
    def masked_pan(self) -> str:
        """BIN and last four digits only (PCI DSS 3.4.1)."""
        return self.pan[:6] + "*" * (len(self.pan) - 10) + self.pan[-4:]


def build_batch_upload(entries: Sequence[BatchUploadEntry]) -> str:
    """Field 48 of a 0320 batch upload: 2-digit count, then up to 8 entries of 40 digits."""
    if not 1 <= len(entries) <= BATCH_UPLOAD_ENTRIES_MAX:
        raise MessageFormatError(
            f"a batch upload carries 1 to {BATCH_UPLOAD_ENTRIES_MAX} entries", field="48"
        )
    return f"{len(entries):02d}" + "".join(
        f"{e.card_org.value}{e.trace:06d}{e.pan.zfill(BATCH_UPLOAD_PAN_DIGITS)}"
        f"{e.amount_minor:012d}"
        for e in entries
    )


def parse_batch_upload(value: str) -> tuple[BatchUploadEntry, ...]:
    """Parse field 48 of a 0320 batch upload into its entries."""
    if len(value) < 2 or not _is_digits(value):
        raise MessageFormatError("batch upload must be digits with a 2-digit count", field="48")
    count = int(value[:2])
    if not 1 <= count <= BATCH_UPLOAD_ENTRIES_MAX:
        raise MessageFormatError(
            f"batch upload count must be 1 to {BATCH_UPLOAD_ENTRIES_MAX}", field="48"
        )
    if len(value) != 2 + count * BATCH_UPLOAD_ENTRY_DIGITS:
        raise MessageFormatError("batch upload length does not match its count", field="48")
    return tuple(_parse_entry(value, 2 + i * BATCH_UPLOAD_ENTRY_DIGITS) for i in range(count))


def _parse_entry(value: str, start: int) -> BatchUploadEntry:
    entry = value[start : start + BATCH_UPLOAD_ENTRY_DIGITS]
    if entry[0:2] not in _CARD_ORGANISATIONS:
        raise MessageFormatError("card organisation is not a known code", field="48")
    return BatchUploadEntry(
        card_org=CardOrganisation(entry[0:2]),
        trace=int(entry[2:8]),
        pan=entry[8:28].lstrip("0"),
        amount_minor=int(entry[28:40]),
    )


def build_batch_upload_end(total_count: int) -> str:
    """Field 48 of the last 0320: the total number of uploaded transactions (4 digits)."""
    _check_range("48", "total count", total_count, 10**BATCH_UPLOAD_TOTAL_DIGITS - 1)
    return f"{total_count:0{BATCH_UPLOAD_TOTAL_DIGITS}d}"


def parse_batch_upload_end(value: str) -> int:
    """Parse field 48 of the last 0320 (4 digits)."""
    if len(value) != BATCH_UPLOAD_TOTAL_DIGITS or not _is_digits(value):
        raise MessageFormatError("batch upload total must be 4 digits", field="48")
    return int(value)


# --------------------------------------------------------------------------- field 54

BALANCE_FIELD_SIZE: Final = 20
BALANCE_ACCOUNT_TYPE_DEFAULT: Final = "00"
BALANCE_AMOUNT_TYPE_AVAILABLE: Final = "02"
_BALANCE_SIGNS: Final = frozenset("CD")


@dataclass(frozen=True, slots=True)
class BalanceAmount:
    """Field 54 of a balance inquiry answer (an...020).

    Account type (2), amount type (2, ``02`` available balance), currency (3, numeric ISO
    4217), sign (``C`` credit balance, ``D`` debit/overdrawn) and the amount (12, minor
    units).

    >>> build_balance_amount(BalanceAmount(amount_minor=12345))
    '0002156C000000012345'
    >>> parse_balance_amount('0002156D000000000100').signed_minor
    -100
    """

    amount_minor: int
    currency_numeric: str = "156"
    negative: bool = False
    account_type: str = BALANCE_ACCOUNT_TYPE_DEFAULT
    amount_type: str = BALANCE_AMOUNT_TYPE_AVAILABLE

    def __post_init__(self) -> None:
        _check_range("54", "balance", self.amount_minor, AMOUNT_MINOR_MAX)
        _check_digits("54", "currency", self.currency_numeric, 3)
        _check_digits("54", "account type", self.account_type, 2)
        _check_digits("54", "amount type", self.amount_type, 2)

    @property
    def signed_minor(self) -> int:
        """The balance with its sign (negative when overdrawn)."""
        return -self.amount_minor if self.negative else self.amount_minor


def build_balance_amount(value: BalanceAmount) -> str:
    """Field 54 as its 20 characters."""
    sign = "D" if value.negative else "C"
    return (f"{value.account_type}{value.amount_type}{value.currency_numeric}{sign}"
            f"{value.amount_minor:012d}")


def parse_balance_amount(value: str) -> BalanceAmount:
    """Parse field 54 (exactly 20 characters)."""
    ok = (len(value) == BALANCE_FIELD_SIZE and value[7] in _BALANCE_SIGNS
          and _is_digits(value[:7]) and _is_digits(value[8:]))
    if not ok:
        raise MessageFormatError("balance must be 2+2+3 digits, C or D, 12 digits", field="54")
    return BalanceAmount(
        amount_minor=int(value[8:]),
        currency_numeric=value[4:7],
        negative=value[7] == "D",
        account_type=value[0:2],
        amount_type=value[2:4],
    )
