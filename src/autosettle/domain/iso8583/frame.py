"""Frames on the wire: the length prefix, the TPDU and the 6-byte CUP header around an
ISO 8583 payload.

One frame as a CUP POS terminal sends it::

    +-----------+--------------------+----------------------+-------------------------+
    | length    | TPDU (5 bytes)     | header (6 bytes)     | ISO 8583 payload        |
    | 2 B, big- | id, destination,   | app type, version,   | MTI (2 B BCD), bitmap   |
    | endian    | source address     | status|request, sw   | (8 B), fields ... 64    |
    +-----------+--------------------+----------------------+-------------------------+

The length counts everything after itself. A wrong length, TPDU or header is a
:class:`FrameError` (a :class:`~autosettle.domain.errors.ValidationError` with ``part`` and
``offset``); for any input bytes :func:`decode_frame` raises nothing else. The payload is
encoded and decoded by :mod:`autosettle.domain.iso8583.message`; the private fields' layouts
are in :mod:`autosettle.domain.iso8583.fields`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from autosettle.domain.errors import ValidationError
from autosettle.domain.iso8583.spec import BITMAP_SIZE_BYTES, MTI_SIZE_BYTES

LENGTH_PREFIX_SIZE_BYTES: Final = 2
TPDU_SIZE_BYTES: Final = 5
HEADER_SIZE_BYTES: Final = 6
FRAME_SIZE_BYTES_MIN: Final = (
    TPDU_SIZE_BYTES + HEADER_SIZE_BYTES + MTI_SIZE_BYTES + BITMAP_SIZE_BYTES
)
"""Smallest frame body (after the length prefix): TPDU, header, MTI and bitmap."""
FRAME_SIZE_BYTES_MAX: Final = 2048
"""Largest frame body we accept; every field at its maximum length makes 1873 bytes."""
TPDU_ID_TRANSACTION: Final = 0x60

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
