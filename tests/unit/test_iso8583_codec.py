"""ISO 8583 codec for CUP POS: frames, every message type, private fields, and a fuzz test.

The fuzz tests run ``AUTOSETTLE_FUZZ_EXAMPLES`` examples each (2000 by default; the
nightly run sets 100000): whatever the bytes, decoding raises only our typed errors.
"""

from __future__ import annotations

import doctest
import os
import string
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autosettle.domain.errors import ValidationError
from autosettle.domain.iso8583 import crypto, fields, frame, message, spec
from autosettle.domain.iso8583.fields import (
    BatchUploadEntry,
    CardOrganisation,
    CardTotals,
    Field60,
    Field61,
    NetworkManagementCode,
    ReconciliationCode,
    SettlementTotals,
    TransactionType,
    build_batch_upload,
    build_batch_upload_end,
    build_field60,
    build_field61,
    build_settlement_totals,
    parse_batch_upload,
    parse_batch_upload_end,
    parse_field60,
    parse_field61,
    parse_settlement_totals,
)
from autosettle.domain.iso8583.frame import (
    FRAME_SIZE_BYTES_MAX,
    FRAME_SIZE_BYTES_MIN,
    Frame,
    FrameError,
    Header,
    Tpdu,
    decode_frame,
    decode_frame_body,
    encode_frame,
    parse_frame_length,
)
from autosettle.domain.iso8583.message import MessageFormatError, decode_message, encode_message
from autosettle.domain.iso8583.spec import CUP_POS_SPEC, FIELD_IDS

FUZZ_EXAMPLES = int(os.environ.get("AUTOSETTLE_FUZZ_EXAMPLES", "2000"))
fuzz_settings = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

PAN = "6222021234567890123"
TRACK2 = f"{PAN}=28122011234567"
MAK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
TPDU = Tpdu(0x60, destination=0x0003, source=0x0000)
HEADER = Header()
BATCH = 1
TERMINAL = {"41": "12345678", "42": "898310048160001"}
PIN_BLOCK_HEX = "1A2B3C4D5E6F7081"


def _f60(txn: TransactionType, nmc: str = NetworkManagementCode.FINANCIAL) -> str:
    if txn is TransactionType.NETWORK_MANAGEMENT:
        return build_field60(Field60(txn, BATCH, nmc))
    return build_field60(Field60(txn, BATCH, nmc, "6", "0"))


def _card_present(proc: str, cond: str, txn: TransactionType, amount: str | None) -> dict[str, str]:
    fields = {
        "2": PAN,
        "3": proc,
        "11": "000123",
        "14": "2812",
        "22": "021",
        "25": cond,
        "26": "12",
        "35": TRACK2,
        "49": "156",
        "52": PIN_BLOCK_HEX,
        "53": "2600000000000000",
        "60": _f60(txn),
        **TERMINAL,
    }
    if amount is not None:
        fields["4"] = amount
    return fields


def sale() -> dict[str, str]:
    return {"t": "0200", **_card_present("000000", "00", TransactionType.SALE, "000000012345")}


def sale_answer() -> dict[str, str]:
    return {
        "t": "0210",
        "2": PAN,
        "3": "000000",
        "4": "000000012345",
        "11": "000123",
        "12": "153012",
        "13": "0412",
        "14": "2812",
        "15": "0412",
        "25": "00",
        "32": "48020000",
        "37": "041215301234",
        "38": "A1B2C3",
        "39": "00",
        "44": "0102030405060708",
        "49": "156",
        "60": _f60(TransactionType.SALE),
        "63": "CUP",
        **TERMINAL,
    }


def void() -> dict[str, str]:
    fields = _card_present("200000", "00", TransactionType.VOID, "000000012345")
    fields |= {"37": "041215301234", "38": "A1B2C3", "61": build_field61(Field61(BATCH, 123))}
    return {"t": "0200", **fields}


def refund() -> dict[str, str]:
    fields = _card_present("200000", "00", TransactionType.REFUND, "000000005000")
    fields |= {"37": "041215301234", "61": build_field61(Field61(BATCH, 123, "0412"))}
    return {"t": "0220", **fields, "63": "000"}


def pre_auth() -> dict[str, str]:
    return {"t": "0100", **_card_present("030000", "06", TransactionType.PRE_AUTH, "000000100000")}


def pre_auth_void() -> dict[str, str]:
    fields = _card_present("200000", "06", TransactionType.PRE_AUTH_VOID, "000000100000")
    fields |= {"38": "A1B2C3", "61": build_field61(Field61(0, 0, "0412"))}
    return {"t": "0100", **fields}


def completion() -> dict[str, str]:
    fields = _card_present("000000", "06", TransactionType.COMPLETION, "000000080000")
    fields |= {"38": "A1B2C3", "61": build_field61(Field61(0, 0, "0412"))}
    return {"t": "0200", **fields}


def completion_void() -> dict[str, str]:
    fields = _card_present("200000", "06", TransactionType.COMPLETION_VOID, "000000080000")
    fields |= {"37": "041215301299", "38": "A1B2C3", "61": build_field61(Field61(BATCH, 124))}
    return {"t": "0200", **fields}


def balance_inquiry() -> dict[str, str]:
    return {"t": "0200", **_card_present("310000", "00", TransactionType.BALANCE_INQUIRY, None)}


def reversal() -> dict[str, str]:
    original = sale()
    for dropped in ("35", "36", "52", "26", "53", "37"):
        original.pop(dropped, None)
    return {**original, "t": "0400", "39": "98", "61": build_field61(Field61(BATCH, 123))}


def sign_on() -> dict[str, str]:
    return {
        "t": "0800",
        "11": "000001",
        "60": _f60(TransactionType.NETWORK_MANAGEMENT, NetworkManagementCode.SIGN_ON_DOUBLE_LENGTH),
        "63": "001",
        **TERMINAL,
    }


def sign_on_answer() -> dict[str, str]:
    tmk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    pik, mak, tdk = (crypto.generate_key(16) for _ in range(3))
    field62 = crypto.build_working_keys_field(tmk, pik, mak, tdk, double_length=True)
    return {
        "t": "0810",
        "11": "000001",
        "12": "080000",
        "13": "0412",
        "32": "48020000",
        "37": "041208000001",
        "39": "00",
        "60": _f60(TransactionType.NETWORK_MANAGEMENT, NetworkManagementCode.SIGN_ON_DOUBLE_LENGTH),
        "62": field62.hex().upper(),
        **TERMINAL,
    }


def echo() -> dict[str, str]:
    return {
        "t": "0820",
        "11": "000002",
        "60": _f60(TransactionType.NETWORK_MANAGEMENT, NetworkManagementCode.ECHO),
        **TERMINAL,
    }


SETTLEMENT = SettlementTotals(
    domestic=CardTotals(1_234_500, 12, 5_000, 1, ReconciliationCode.REQUEST),
    foreign=CardTotals(99_900, 1, 0, 0, ReconciliationCode.REQUEST),
)


def settlement() -> dict[str, str]:
    return {
        "t": "0500",
        "11": "000130",
        "48": build_settlement_totals(SETTLEMENT),
        "49": "156",
        "60": _f60(TransactionType.NETWORK_MANAGEMENT, NetworkManagementCode.SETTLEMENT),
        "63": "001",
        **TERMINAL,
    }


UPLOAD = tuple(
    BatchUploadEntry(CardOrganisation.DOMESTIC, trace, f"62220212345678{trace:05d}", 100 * trace)
    for trace in range(1, 9)
)


def batch_upload() -> dict[str, str]:
    return {
        "t": "0320",
        "11": "000131",
        "48": build_batch_upload(UPLOAD),
        "60": _f60(TransactionType.NETWORK_MANAGEMENT, NetworkManagementCode.SETTLEMENT),
        **TERMINAL,
    }


def batch_upload_end() -> dict[str, str]:
    return {
        "t": "0320",
        "11": "000132",
        "48": build_batch_upload_end(8),
        "60": _f60(TransactionType.NETWORK_MANAGEMENT, "207"),
        **TERMINAL,
    }


MESSAGES: dict[str, Callable[[], dict[str, str]]] = {
    "sale": sale,
    "sale answer": sale_answer,
    "void": void,
    "refund": refund,
    "pre-auth": pre_auth,
    "pre-auth void": pre_auth_void,
    "completion": completion,
    "completion void": completion_void,
    "balance inquiry": balance_inquiry,
    "reversal": reversal,
    "sign-on": sign_on,
    "sign-on answer": sign_on_answer,
    "echo": echo,
    "settlement": settlement,
    "batch upload": batch_upload,
    "batch upload end": batch_upload_end,
}


def _mac(data: bytes) -> bytes:
    return crypto.mac_cup_ecb(MAK, data)


# -- every message type, through frame and MAC ----------------------------------------------
@pytest.mark.parametrize("name", list(MESSAGES))
def test_message_round_trip_through_frame_and_mac(name: str) -> None:
    fields = MESSAGES[name]()
    wire = encode_frame(Frame(TPDU, HEADER, encode_message(fields, mac=_mac)))

    frame = decode_frame(wire)
    decoded = decode_message(frame.payload)

    assert (frame.tpdu, frame.header) == (TPDU, HEADER)
    received_mac = bytes.fromhex(decoded.fields.pop("64"))
    assert decoded.fields == fields
    assert crypto.macs_equal(_mac(decoded.mac_data), received_mac)
    assert decoded.mac_data == frame.payload[: -spec.MAC_FIELD_SIZE_BYTES]


def test_reversal_copies_the_sale_without_sensitive_fields() -> None:
    decoded = decode_message(encode_message(reversal())).fields
    assert {"35", "52", "26", "53", "37"}.isdisjoint(decoded)
    assert decoded["39"] == "98"
    assert parse_field61(decoded["61"]) == Field61(BATCH, 123)


def test_sign_on_answer_carries_checkable_working_keys() -> None:
    tmk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    keys = crypto.WorkingKeys(*(crypto.generate_key(16) for _ in range(3)))
    field62 = crypto.build_working_keys_field(tmk, keys.pik, keys.mak, keys.tdk, True)
    fields = {**sign_on_answer(), "62": field62.hex().upper()}
    decoded = decode_message(encode_message(fields)).fields
    assert crypto.parse_working_keys_field(tmk, bytes.fromhex(decoded["62"]), True) == keys


def test_message_without_mac_covers_the_whole_payload() -> None:
    payload = encode_message(sign_on())
    decoded = decode_message(payload)
    assert "64" not in decoded.fields
    assert decoded.mac_data == payload


def test_largest_message_fits_in_a_frame() -> None:
    fields = {"t": "0200"}
    for key, field_spec in CUP_POS_SPEC.items():
        if not key.isdigit():
            continue
        size = field_spec["max_len"]
        if key in spec.NUMERIC_FIELD_IDS or key in spec.TRACK_FIELD_IDS:
            fields[key] = "1" * size
        elif key in spec.BINARY_FIELD_IDS:
            fields[key] = "AB" * size
        else:
            fields[key] = "x" * size
    frame = Frame(TPDU, HEADER, encode_message(fields))
    assert len(encode_frame(frame)) - 2 <= FRAME_SIZE_BYTES_MAX
    assert decode_message(decode_frame(encode_frame(frame)).payload).fields == fields


# -- exact wire bytes ----------------------------------------------------------------------
def test_wire_layout_of_bcd_fields() -> None:
    payload = encode_message(
        {"t": "0200", "2": "1234567890123", "22": "021", "23": "001", "35": "123=45", "60": "22"}
    )
    expected = [
        "0200",  # MTI, BCD
        "4000060020000010",  # bitmap: 2, 22, 23, 35, 60
        "13" + "1234567890123" + "0",  # 2: LL=13 in BCD, left-aligned, 0 pad on the right
        "0210",  # 22: n3 left-aligned (pad on the right)
        "0001",  # 23: n3 right-aligned (pad on the left)
        "06" + "123D45",  # 35: '=' is the D nibble
        "0002" + "22",  # 60: LLL prefix in two BCD bytes
    ]
    assert payload.hex().upper() == "".join(expected)


def test_frame_layout() -> None:
    wire = encode_frame(Frame(TPDU, HEADER, encode_message({"t": "0800"})))
    parts = ["0015", "6000030000", "603100311301", "0800", "0000000000000000"]
    assert wire.hex() == "".join(parts)  # length, TPDU, header, MTI, bitmap


def test_tpdu_swapped_for_answers() -> None:
    tpdu = Tpdu(0x60, destination=0x0003, source=0x1234)
    assert tpdu.swapped() == Tpdu(0x60, destination=0x1234, source=0x0003)
    assert tpdu.swapped().swapped() == tpdu
    request = Frame(tpdu, HEADER, b"")
    assert request.answer(b"x").tpdu == tpdu.swapped()


def test_header_fields() -> None:
    header = Header.from_bytes(bytes.fromhex("603100311301"))
    assert header == Header(0x60, 0x31, 0, 0, bytes.fromhex("311301"))
    status = Header(terminal_status=1, processing_request=3)
    assert status.to_bytes()[2] == 0x13
    assert Header.from_bytes(status.to_bytes()) == status


@pytest.mark.parametrize(
    "bad",
    [
        {"application_type": 256},
        {"terminal_status": 16},
        {"processing_request": -1},
        {"software_version": b"\x00"},
    ],
)
def test_header_rejects_out_of_range_parts(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Header(**bad)


# -- frame errors --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "part", "offset"),
    [
        (b"", "length", 0),
        (b"\x00", "length", 0),
        (b"\x00\x05" + bytes(5), "length", 0),  # below the minimum
        (b"\x08\x01" + bytes(2049), "length", 0),  # above the maximum
        (b"\x00\x20" + bytes(21), "length", 0),  # declared 32, 21 follow
    ],
)
def test_decode_frame_says_which_part_failed(data: bytes, part: str, offset: int) -> None:
    with pytest.raises(FrameError) as excinfo:
        decode_frame(data)
    assert (excinfo.value.part, excinfo.value.offset) == (part, offset)
    assert isinstance(excinfo.value, ValidationError)


@pytest.mark.parametrize(("size", "part"), [(3, "tpdu"), (8, "header"), (15, "payload")])
def test_short_frame_body_names_the_part(size: int, part: str) -> None:
    with pytest.raises(FrameError) as excinfo:
        decode_frame_body(bytes(size))
    assert excinfo.value.part == part
    assert excinfo.value.offset == 2 + size


def test_parse_frame_length_limits() -> None:
    assert parse_frame_length(FRAME_SIZE_BYTES_MAX.to_bytes(2, "big")) == FRAME_SIZE_BYTES_MAX
    assert parse_frame_length(FRAME_SIZE_BYTES_MIN.to_bytes(2, "big")) == FRAME_SIZE_BYTES_MIN
    for size in (0, FRAME_SIZE_BYTES_MIN - 1, FRAME_SIZE_BYTES_MAX + 1, 0xFFFF):
        with pytest.raises(FrameError):
            parse_frame_length(size.to_bytes(2, "big"))


def test_encode_frame_refuses_oversized_payload() -> None:
    with pytest.raises(FrameError) as excinfo:
        encode_frame(Frame(TPDU, HEADER, bytes(FRAME_SIZE_BYTES_MAX)))
    assert excinfo.value.part == "length"


# -- message errors ------------------------------------------------------------------------
def _payload(fields: dict[str, str]) -> bytes:
    return encode_message(fields)


def _raw(numbers: tuple[int, ...], tail_hex: str, mti_hex: str = "0200") -> bytes:
    """A payload built by hand: MTI, a bitmap naming ``numbers``, then ``tail_hex``."""
    bitmap = sum(1 << (64 - n) for n in numbers).to_bytes(8, "big")
    return bytes.fromhex(mti_hex) + bitmap + bytes.fromhex(tail_hex)


@pytest.mark.parametrize(
    ("payload", "field", "offset"),
    [
        (b"", "t", 0),
        (b"\x02", "t", 0),
        (_raw((), "", mti_hex="0A00"), "t", 0),  # MTI is not BCD
        (bytes.fromhex("0200") + bytes(3), "p", 2),  # truncated bitmap
        (_raw((1,), ""), "1", 2),  # secondary bitmap
        (_raw((56,), ""), "56", 8),  # field outside the layout
        (_raw((3,), "0A0000"), "3", 10),  # bad BCD
        (_raw((3,), "0000"), "3", 10),  # truncated
        (_raw((3,), "000000FF"), "3", 13),  # extra data after the last field
        (_raw((22,), "0211"), "22", 10),  # pad nibble is not 0
        (_raw((2,), "20" + "11" * 10), "2", 10),  # LL 20 > 19
        (_raw((2,), "1A"), "2", 10),  # LL is not BCD
        (_raw((3, 41), "00000031323334353637FF"), "41", 13),  # not ASCII
        (_raw((35,), "04123A"), "35", 10),  # not digits or '='
        (_raw((3, 60), "00000000022A"), "60", 13),  # bad BCD in a variable field
    ],
)
def test_decode_message_says_which_field_failed(payload: bytes, field: str, offset: int) -> None:
    with pytest.raises(MessageFormatError) as excinfo:
        decode_message(payload)
    assert (excinfo.value.field, excinfo.value.offset) == (field, offset)


def test_decode_error_does_not_chain_the_library_error() -> None:
    payload = _payload(sale())[:-3]
    with pytest.raises(MessageFormatError) as excinfo:
        decode_message(payload)
    assert excinfo.value.__cause__ is None
    assert excinfo.value.__context__ is None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"3": "000000"}, "t"),
        ({"t": "02000"}, "t"),
        ({"t": "02A0"}, "t"),
        ({"t": "0200", "5": "1"}, "5"),
        ({"t": "0200", "1": "00"}, "1"),
        ({"t": "0200", "x": "1"}, "x"),
        ({"t": "0200", "3": "00000"}, "3"),
        ({"t": "0200", "3": "00000A"}, "3"),
        ({"t": "0200", "2": "1" * 20}, "2"),
        ({"t": "0200", "35": "1234?5"}, "35"),
        ({"t": "0200", "41": "1234567"}, "41"),
        ({"t": "0200", "41": "1234567é"}, "41"),
        ({"t": "0200", "52": "00"}, "52"),
        ({"t": "0200", "52": "0" * 15}, "52"),
        ({"t": "0200", "55": "XYZW"}, "55"),
        ({"t": "0200", "4": 12}, "4"),
    ],
)
def test_encode_message_rejects_bad_fields(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(MessageFormatError) as excinfo:
        encode_message(fields)
    assert excinfo.value.field == field


def test_encode_message_rejects_non_string_keys() -> None:
    with pytest.raises(MessageFormatError) as excinfo:
        encode_message({"t": "0200", 3: "000000"})  # type: ignore[dict-item]
    assert excinfo.value.field == "3"


def test_encode_message_does_not_mutate_its_input() -> None:
    fields = sale()
    before = dict(fields)
    encode_message(fields, mac=_mac)
    assert fields == before


def test_encode_message_accepts_and_ignores_a_bitmap_key() -> None:
    assert encode_message({"t": "0800", "p": "FFFF"}) == encode_message({"t": "0800"})


# -- nothing sensitive in reprs and errors -------------------------------------------------
def test_reprs_hide_card_data() -> None:
    payload = encode_message(batch_upload() | {"2": PAN, "35": TRACK2}, mac=_mac)
    decoded = decode_message(payload)
    frame = Frame(TPDU, HEADER, payload)
    for text in (repr(decoded), str(decoded.fields), repr(frame), repr(UPLOAD[0])):
        assert PAN not in text
        assert UPLOAD[0].pan not in text
    assert "'41': '12345678'" in repr(decoded)  # identifiers stay readable


def test_errors_never_quote_field_values() -> None:
    with pytest.raises(MessageFormatError) as excinfo:
        encode_message({"t": "0200", "2": PAN + "9"})
    assert PAN not in str(excinfo.value)
    payload = encode_message({"t": "0200", "2": PAN})
    bad_bcd = payload[:12] + b"\xa1" + payload[13:]
    with pytest.raises(MessageFormatError) as excinfo:
        decode_message(bad_bcd)
    assert excinfo.value.field == "2"
    assert "6222" not in str(excinfo.value)
    assert "6222" not in repr(excinfo.value)


# -- field 60 / 61 -------------------------------------------------------------------------
def test_field60_shapes() -> None:
    assert parse_field60("00000001003") == Field60("00", 1, "003")
    assert parse_field60("2200000100060") == Field60("22", 1, "000", "6", "0")
    assert parse_field60("220000010006").read_capability == "6"
    assert parse_field60("2200000100060" + "000001").extension == "000001"
    sign_on_60 = Field60(TransactionType.NETWORK_MANAGEMENT, 42, "003")
    assert build_field60(sign_on_60) == "00000042003"


@pytest.mark.parametrize("value", ["", "0000000100", "0" * 20, "00000001A03"])
def test_field60_rejects_bad_values(value: str) -> None:
    with pytest.raises(MessageFormatError) as excinfo:
        parse_field60(value)
    assert excinfo.value.field == "60"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"txn_type": "2"},
        {"batch_no": 1_000_000},
        {"batch_no": -1},
        {"network_mgmt_code": "03"},
        {"ic_condition": "0"},  # 60.5 without 60.4
        {"read_capability": "6", "ic_condition": "0", "extension": "1234567"},  # > 19
        {"extension": "1"},
    ],
)
def test_field60_construction_is_validated(kwargs: dict[str, Any]) -> None:
    base: dict[str, Any] = {"txn_type": "22", "batch_no": 1, "network_mgmt_code": "000"}
    with pytest.raises(MessageFormatError):
        Field60(**(base | kwargs))


def test_field61_shapes() -> None:
    assert parse_field61("000001000123") == Field61(1, 123)
    assert parse_field61("0000010001230412") == Field61(1, 123, "0412")
    assert parse_field61("0000010001230412" + "9" * 13).extension == "9" * 13
    for bad in ("00000100012", "0000010001230", "000001000123041", "0" * 30, "00000100012A"):
        with pytest.raises(MessageFormatError):
            parse_field61(bad)
    with pytest.raises(MessageFormatError):
        Field61(1, 1, None, "12")


# -- field 48 ------------------------------------------------------------------------------
def test_settlement_totals_layout() -> None:
    text = build_settlement_totals(SETTLEMENT)
    domestic = ["000001234500", "012", "000000005000", "001", "0"]
    foreign = ["000000099900", "001", "000000000000", "000", "0"]
    assert text == "".join(domestic + foreign)
    assert parse_settlement_totals(text) == SETTLEMENT


def test_settlement_answer_codes() -> None:
    answer = SettlementTotals(
        CardTotals(code=ReconciliationCode.NOT_BALANCED),
        CardTotals(code=ReconciliationCode.BALANCED),
    )
    parsed = parse_settlement_totals(build_settlement_totals(answer))
    assert (parsed.domestic.code, parsed.foreign.code) == ("2", "1")


@pytest.mark.parametrize("value", ["0" * 61, "0" * 63, "0" * 30 + "9" + "0" * 31, "0" * 61 + "A"])
def test_settlement_totals_rejects_bad_values(value: str) -> None:
    with pytest.raises(MessageFormatError):
        parse_settlement_totals(value)


def test_batch_upload_layout() -> None:
    entry = BatchUploadEntry(CardOrganisation.FOREIGN, 7, "4111111111111111", 12345)
    text = build_batch_upload([entry])
    assert text == "01" + "01" + "000007" + "00004111111111111111" + "000000012345"
    assert parse_batch_upload(text) == (entry,)
    assert parse_batch_upload(build_batch_upload(UPLOAD)) == UPLOAD
    assert entry.masked_pan == "411111******1111"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "00",
        "09" + "0" * 360,
        "02" + "00" + "0" * 38,  # count says 2, one entry follows
        "01" + "02" + "000007" + "00004111111111111111" + "000000012345",  # unknown org
        "01" + "00" + "000007" + "00000000000000000000" + "000000012345",  # no PAN
    ],
)
def test_batch_upload_rejects_bad_values(value: str) -> None:
    with pytest.raises(MessageFormatError):
        parse_batch_upload(value)


def test_batch_upload_entry_and_count_limits() -> None:
    with pytest.raises(MessageFormatError):
        build_batch_upload(UPLOAD + UPLOAD[:1])
    with pytest.raises(MessageFormatError):
        build_batch_upload([])
    with pytest.raises(MessageFormatError):
        BatchUploadEntry(CardOrganisation.DOMESTIC, 1, "0123456789012", 1)
    with pytest.raises(MessageFormatError):
        BatchUploadEntry(CardOrganisation.DOMESTIC, 1, "4111", 1)
    assert parse_batch_upload_end(build_batch_upload_end(25)) == 25
    with pytest.raises(MessageFormatError):
        build_batch_upload_end(10_000)
    with pytest.raises(MessageFormatError):
        parse_batch_upload_end("025")


# -- property tests ------------------------------------------------------------------------
_TEXT = string.ascii_letters + string.digits + " -_/"


def _value(key: str) -> st.SearchStrategy[str]:
    field_spec = CUP_POS_SPEC[key]
    size = field_spec["max_len"]
    fixed = field_spec["len_type"] == 0
    lo = size if fixed else 0
    if key in spec.NUMERIC_FIELD_IDS:
        return st.text(string.digits, min_size=lo, max_size=size)
    if key in spec.TRACK_FIELD_IDS:
        return st.text(string.digits + "=", min_size=lo, max_size=size)
    if key in spec.BINARY_FIELD_IDS:
        return st.binary(min_size=lo, max_size=size).map(lambda b: b.hex().upper())
    return st.text(_TEXT, min_size=lo, max_size=size)


DATA_KEYS = sorted((k for k in CUP_POS_SPEC if k.isdigit()), key=int)


@st.composite
def messages(draw: st.DrawFn) -> dict[str, str]:
    keys = draw(st.sets(st.sampled_from(DATA_KEYS)))
    fields = {"t": draw(st.text(string.digits, min_size=4, max_size=4))}
    for key in sorted(keys, key=int):
        fields[key] = draw(_value(key))
    return fields


@settings(max_examples=300, deadline=None)
@given(messages(), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_any_valid_message_round_trips(fields: dict[str, str], dest: int, src: int) -> None:
    frame = Frame(Tpdu(0x60, dest, src), HEADER, encode_message(fields))
    decoded = decode_message(decode_frame(encode_frame(frame)).payload)
    assert decoded.fields == fields


@given(
    st.sampled_from(list(TransactionType)),
    st.integers(0, 999_999),
    st.text(string.digits, min_size=3, max_size=3),
    st.one_of(st.none(), st.text(string.digits, min_size=1, max_size=1)),
    st.text(string.digits, min_size=1, max_size=1),
    st.text(string.digits, max_size=6),
)
def test_field60_round_trips(
    txn: str, batch: int, nmc: str, cap: str | None, ic: str, ext: str
) -> None:
    value = Field60(txn, batch, nmc, cap, ic if cap else None, ext if cap else "")
    assert parse_field60(build_field60(value)) == value


@given(
    st.integers(0, 999_999),
    st.integers(0, 999_999),
    st.one_of(st.none(), st.text(string.digits, min_size=4, max_size=4)),
    st.text(string.digits, max_size=13),
)
def test_field61_round_trips(batch: int, trace: int, date: str | None, ext: str) -> None:
    value = Field61(batch, trace, date, ext if date else "")
    assert parse_field61(build_field61(value)) == value


_amounts = st.integers(0, 10**12 - 1)
_counts = st.integers(0, 999)
_card_totals = st.builds(
    CardTotals, _amounts, _counts, _amounts, _counts, st.sampled_from(list(ReconciliationCode))
)


@given(_card_totals, _card_totals)
def test_settlement_totals_round_trip(domestic: CardTotals, foreign: CardTotals) -> None:
    totals = SettlementTotals(domestic, foreign)
    text = build_settlement_totals(totals)
    assert len(text) == 62
    assert parse_settlement_totals(text) == totals


_entries = st.builds(
    BatchUploadEntry,
    st.sampled_from(list(CardOrganisation)),
    st.integers(0, 999_999),
    st.from_regex(r"[1-9][0-9]{11,18}", fullmatch=True),
    _amounts,
)


@given(st.lists(_entries, min_size=1, max_size=8))
def test_batch_upload_round_trips_inside_a_message(entries: list[BatchUploadEntry]) -> None:
    fields = {**batch_upload(), "48": build_batch_upload(entries)}
    decoded = decode_message(encode_message(fields)).fields
    assert parse_batch_upload(decoded["48"]) == tuple(entries)


# -- fuzz: any bytes, only typed errors ----------------------------------------------------
SAMPLES = [encode_message(build(), mac=_mac) for build in MESSAGES.values()]


@st.composite
def plausible_payloads(draw: st.DrawFn) -> bytes:
    """MTI and a bitmap naming only layout fields, then random bytes: gets past the bitmap."""
    numbers = draw(st.sets(st.sampled_from(sorted(FIELD_IDS)), min_size=1))
    bitmap = sum(1 << (64 - n) for n in numbers).to_bytes(8, "big")
    mti = bytes.fromhex(draw(st.text("0123456789", min_size=4, max_size=4)))
    return mti + bitmap + draw(st.binary(max_size=600))


@st.composite
def mutated_samples(draw: st.DrawFn) -> bytes:
    """A valid message with a few bytes changed, inserted or cut."""
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["set", "insert", "delete", "truncate"]))
        if action == "set" and position < len(data):
            data[position] = draw(st.integers(0, 255))
        elif action == "insert":
            data.insert(position, draw(st.integers(0, 255)))
        elif action == "delete" and position < len(data):
            del data[position]
        elif action == "truncate":
            del data[position:]
    return bytes(data)


payloads = st.one_of(st.binary(max_size=300), plausible_payloads(), mutated_samples())


@fuzz_settings
@given(payloads)
def test_fuzz_decode_message_raises_only_typed_errors(payload: bytes) -> None:
    try:
        decoded = decode_message(payload)
    except MessageFormatError:
        return
    # Whatever decodes is a valid message: it encodes and decodes to the same fields.
    assert decode_message(encode_message(decoded.fields)).fields == decoded.fields


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    payload = draw(payloads)
    body = draw(st.binary(min_size=11, max_size=11)) + payload
    declared = draw(st.one_of(st.just(len(body)), st.integers(0, 0xFFFF)))
    return declared.to_bytes(2, "big") + body


@fuzz_settings
@given(st.one_of(st.binary(max_size=64), frames()))
def test_fuzz_decode_frame_raises_only_typed_errors(data: bytes) -> None:
    try:
        frame = decode_frame(data)
        decode_message(frame.payload)
    except (FrameError, MessageFormatError):
        return


# -- docs ----------------------------------------------------------------------------------
@pytest.mark.parametrize("module", [spec, frame, message, fields])
def test_docstring_examples(module: Any) -> None:
    failures, _ = doctest.testmod(module)
    assert failures == 0
