"""Framing: the behaviour mutation testing found unchecked (see docs/testing.md).

An answer frame keeps the request's header unless given one; every refusal of the private
field layouts (48, 54, 60, 61) names its field and the part at fault, as the terminal host
logs it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autosettle.domain.iso8583.fields import (
    AMOUNT_MINOR_MAX,
    BATCH_UPLOAD_ENTRIES_MAX,
    PAN_DIGITS_MIN,
    SETTLEMENT_COUNT_MAX,
    TRACE_MAX,
    BalanceAmount,
    BatchUploadEntry,
    CardOrganisation,
    CardTotals,
    build_balance_amount,
    build_batch_upload,
    build_batch_upload_end,
    parse_balance_amount,
    parse_batch_upload,
    parse_batch_upload_end,
    parse_field60,
    parse_field61,
    parse_settlement_totals,
)
from autosettle.domain.iso8583.frame import (
    FRAME_SIZE_BYTES_MAX,
    Frame,
    FrameError,
    Header,
    Tpdu,
    encode_frame,
)
from autosettle.domain.iso8583.message import MessageFormatError


def _refusal(action: Callable[[], object]) -> MessageFormatError:
    with pytest.raises(MessageFormatError) as excinfo:
        action()
    return excinfo.value


def test_an_answer_swaps_the_tpdu_and_keeps_the_header_unless_given_one() -> None:
    request = Frame(Tpdu(destination=0x0001, source=0x0203), Header(version=0x32), b"req")
    answer = request.answer(b"ans")
    assert (answer.tpdu, answer.header, answer.payload) \
        == (Tpdu(destination=0x0203, source=0x0001), Header(version=0x32), b"ans")
    other = Header(processing_request=3)
    assert request.answer(b"ans", other).header == other


@pytest.mark.parametrize(
    ("action", "field", "message"),
    [(lambda: CardTotals(debit_amount_minor=AMOUNT_MINOR_MAX + 1), "48",
      f"field 48: debit amount must be an integer 0..{AMOUNT_MINOR_MAX}"),
     (lambda: CardTotals(debit_count=SETTLEMENT_COUNT_MAX + 1), "48",
      f"field 48: debit count must be an integer 0..{SETTLEMENT_COUNT_MAX}"),
     (lambda: CardTotals(credit_amount_minor=-1), "48",
      f"field 48: credit amount must be an integer 0..{AMOUNT_MINOR_MAX}"),
     (lambda: CardTotals(credit_count=True), "48",
      f"field 48: credit count must be an integer 0..{SETTLEMENT_COUNT_MAX}"),
     (lambda: CardTotals(code="9"), "48",  # type: ignore[arg-type]
      "field 48: reconciliation code is not a known code"),
     (lambda: parse_settlement_totals("0" * 61), "48",
      "field 48: settlement totals must be 62 digits"),
     (lambda: parse_settlement_totals("0" * 30 + "9" + "0" * 31), "48",
      "field 48: reconciliation code is not a known code"),
     (lambda: build_batch_upload_end(10_000), "48",
      "field 48: total count must be an integer 0..9999"),
     (lambda: parse_batch_upload_end("12a4"), "48",
      "field 48: batch upload total must be 4 digits"),
     (lambda: BalanceAmount(AMOUNT_MINOR_MAX + 1), "54",
      f"field 54: balance must be an integer 0..{AMOUNT_MINOR_MAX}"),
     (lambda: BalanceAmount(1, currency_numeric="CNY"), "54",
      "field 54: currency must be 3 digits"),
     (lambda: BalanceAmount(1, account_type="1"), "54",
      "field 54: account type must be 2 digits"),
     (lambda: parse_field60("1"), "60", "field 60: must be 11 to 19 digits"),
     (lambda: parse_field61("12345"), "61",
      "field 61: must be 12 digits, or 16 to 29 with the date")],
)
def test_refusals_name_the_field_and_the_part(action: Callable[[], object], field: str,
                                              message: str) -> None:
    error = _refusal(action)
    assert error.field == field
    assert error.message == message


def test_the_largest_batch_upload_total() -> None:
    assert build_batch_upload_end(9999) == "9999"
    assert parse_batch_upload_end("9999") == 9999


# -- round trips of the private layouts ---------------------------------------------------------
@given(st.lists(st.builds(
    BatchUploadEntry,
    card_org=st.sampled_from(list(CardOrganisation)),
    trace=st.integers(0, TRACE_MAX),
    pan=st.builds(lambda first, rest: first + rest, st.sampled_from("123456789"),
                  st.text(alphabet="0123456789", min_size=PAN_DIGITS_MIN - 1, max_size=18)),
    amount_minor=st.integers(0, AMOUNT_MINOR_MAX)), min_size=1, max_size=BATCH_UPLOAD_ENTRIES_MAX))
def test_batch_upload_round_trips(entries: list[BatchUploadEntry]) -> None:
    assert parse_batch_upload(build_batch_upload(entries)) == tuple(entries)


@given(st.builds(BalanceAmount, amount_minor=st.integers(0, AMOUNT_MINOR_MAX),
                 currency_numeric=st.text(alphabet="0123456789", min_size=3, max_size=3),
                 negative=st.booleans(),
                 account_type=st.text(alphabet="0123456789", min_size=2, max_size=2),
                 amount_type=st.text(alphabet="0123456789", min_size=2, max_size=2)))
def test_balance_amount_round_trips(balance: BalanceAmount) -> None:
    assert parse_balance_amount(build_balance_amount(balance)) == balance


def test_an_overdrawn_balance_is_signed_d() -> None:
    assert build_balance_amount(BalanceAmount(100, negative=True)) == "0002156D000000000100"
    assert parse_balance_amount("1002840C000000012345") == BalanceAmount(
        12345, currency_numeric="840", account_type="10", amount_type="02")


@pytest.mark.parametrize("value", ["0002156X000000000100", "0002156C00000000010",
                                   "0A02156C000000000100", "0002156C0000000001A0"])
def test_a_malformed_balance_is_refused(value: str) -> None:
    error = _refusal(lambda: parse_balance_amount(value))
    assert error.message == "field 54: balance must be 2+2+3 digits, C or D, 12 digits"


def test_tpdu_wire_form() -> None:
    tpdu = Tpdu(0x61, destination=0x0102, source=0x0304)
    assert tpdu.to_bytes() == bytes.fromhex("6101020304")
    assert Tpdu.from_bytes(tpdu.to_bytes()) == tpdu
    assert tpdu.swapped() == Tpdu(0x61, destination=0x0304, source=0x0102)
    with pytest.raises(FrameError) as excinfo:
        Tpdu.from_bytes(bytes(4))
    assert excinfo.value.message == "frame tpdu at byte 2: TPDU is 4 bytes, expecting 5"


def test_the_largest_frame_is_encoded_with_its_length() -> None:
    payload = bytes(FRAME_SIZE_BYTES_MAX - 11)  # TPDU 5 + header 6
    encoded = encode_frame(Frame(Tpdu(), Header(), payload))
    assert encoded[:2] == FRAME_SIZE_BYTES_MAX.to_bytes(2, "big")
    assert len(encoded) == 2 + FRAME_SIZE_BYTES_MAX
    with pytest.raises(FrameError) as excinfo:
        encode_frame(Frame(Tpdu(), Header(), payload + b"x"))
    assert excinfo.value.message == (f"frame length at byte 0: frame body of "
                                     f"{FRAME_SIZE_BYTES_MAX + 1} bytes is outside "
                                     f"21..{FRAME_SIZE_BYTES_MAX}")
