"""Text fields (an/ans, GBK) carry printable text only (issue 9: found by the host fuzz).

A NUL in field 41 reached PostgreSQL (which refuses NUL in text: an internal error) and a
line feed reached the log; both are now a format error at the codec, answered 30.
"""

from __future__ import annotations

import pytest

from autosettle.domain.iso8583.message import MessageFormatError, decode_message, encode_message

SIGN_ON = {"t": "0800", "11": "000001", "41": "QQQQQQQQ", "42": "898310054110001",
           "60": "00000001003"}


@pytest.mark.parametrize("bad", ["\x00ABCDEFG", "\nERROR x", "ABCDEFG\r", "\x1b[2JERR!",
                                 "ABCDEFG\x7f"])
def test_control_characters_in_a_text_field_are_a_format_error(bad: str) -> None:
    wire = encode_message(SIGN_ON).replace(b"QQQQQQQQ", bad.encode("ascii"))
    with pytest.raises(MessageFormatError, match="printable") as caught:
        decode_message(wire)
    assert caught.value.field == "41"
    with pytest.raises(MessageFormatError, match="printable"):
        encode_message({**SIGN_ON, "41": bad})


@pytest.mark.parametrize(("field", "value"), [("41", "HL 00001"), ("41", "ERROR: x"),
                                              ("63", "001华联超市"), ("42", "898310054110001")])
def test_printable_text_of_any_script_passes(field: str, value: str) -> None:
    assert decode_message(encode_message({**SIGN_ON, field: value})).fields[field] == value


def test_gbk_field_refuses_control_characters() -> None:
    with pytest.raises(MessageFormatError, match="printable"):
        encode_message({**SIGN_ON, "63": "001\n华联"})
