"""Framing: the behaviour mutation testing found unchecked (see docs/testing.md).

An answer frame keeps the request's header unless given one; every refusal of the private
field layouts (48, 54, 60, 61) names its field and the part at fault, as the terminal host
logs it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from autosettle.domain.iso8583.framing import (
    AMOUNT_MINOR_MAX,
    SETTLEMENT_COUNT_MAX,
    BalanceAmount,
    CardTotals,
    Frame,
    Header,
    MessageFormatError,
    Tpdu,
    build_batch_upload_end,
    parse_batch_upload_end,
    parse_field60,
    parse_field61,
    parse_settlement_totals,
)


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
