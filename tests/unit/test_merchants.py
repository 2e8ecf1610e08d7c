"""Merchant values: ids, names, MCCs, bank account numbers, the 一清 holder-name rule.

Found with mutation testing (docs/testing.md): the module was only exercised through the
services, which check that something is refused but not which rule refused it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autosettle.domain.errors import ErrorCode, InvariantViolation, ValidationError, require
from autosettle.domain.merchants import (
    ACCOUNT_NUMBER_DIGITS_MAX,
    ACCOUNT_NUMBER_DIGITS_MIN,
    MERCHANT_ID_LENGTH,
    TERMINAL_ID_LENGTH,
    check_account_number,
    check_mcc,
    check_merchant_id,
    check_name,
    check_terminal_id,
    holder_name_matches,
    mask_account_number,
)


def _refusal(action: Callable[[], object]) -> ValidationError:
    with pytest.raises(ValidationError) as excinfo:
        action()
    return excinfo.value


# -- ids --------------------------------------------------------------------------------------
def test_ids_of_the_right_length_are_accepted_as_given() -> None:
    assert check_merchant_id("898310048160001") == "898310048160001"
    assert check_merchant_id("M" * MERCHANT_ID_LENGTH) == "M" * MERCHANT_ID_LENGTH
    assert check_terminal_id("T0000001") == "T0000001"
    assert check_terminal_id("abcd1234") == "abcd1234"


@pytest.mark.parametrize(
    ("action", "message"),
    [(lambda: check_merchant_id("89831004816000"),
      "merchant id must be 15 ASCII letters or digits"),
     (lambda: check_merchant_id("8983100481600012"),
      "merchant id must be 15 ASCII letters or digits"),
     (lambda: check_merchant_id("89831004816000-"),
      "merchant id must be 15 ASCII letters or digits"),
     (lambda: check_merchant_id(898310048160001),  # type: ignore[arg-type]
      "merchant id must be 15 ASCII letters or digits"),
     (lambda: check_terminal_id("T000001"), "terminal id must be 8 ASCII letters or digits"),
     (lambda: check_terminal_id("T000 001"), "terminal id must be 8 ASCII letters or digits"),
     (lambda: check_terminal_id("T00000１"), "terminal id must be 8 ASCII letters or digits"),
     (lambda: check_terminal_id(None),  # type: ignore[arg-type]
      "terminal id must be 8 ASCII letters or digits")],
)
def test_bad_ids_are_refused_and_named(action: Callable[[], object], message: str) -> None:
    error = _refusal(action)
    assert error.code is ErrorCode.VALIDATION_FAILED
    assert error.message == message


@given(st.text(alphabet="0123456789ABCDEFabcdef", min_size=TERMINAL_ID_LENGTH,
               max_size=TERMINAL_ID_LENGTH))
def test_any_ascii_alphanumeric_terminal_id_is_accepted(terminal_id: str) -> None:
    assert check_terminal_id(terminal_id) == terminal_id


# -- names ------------------------------------------------------------------------------------
def test_names_are_trimmed_and_may_be_exactly_the_longest() -> None:
    assert check_name("  上海某某餐饮有限公司 ", "legal name", 200) == "上海某某餐饮有限公司"
    assert check_name(" " + "a" * 10 + " ", "short name", 10) == "a" * 10


@pytest.mark.parametrize(
    ("value", "message"),
    [("   ", "short name must not be blank"),
     (None, "short name must not be blank"),
     ("a" * 11, "short name is longer than 10 characters"),
     ("a\tb", "short name contains control characters"),
     ("a\u0000b", "short name contains control characters")],
)
def test_bad_names_are_refused_and_named(value: object, message: str) -> None:
    assert _refusal(lambda: check_name(value, "short name", 10)  # type: ignore[arg-type]
                    ).message == message


# -- MCC and bank accounts ----------------------------------------------------------------------
def test_mcc() -> None:
    assert check_mcc("5812") == "5812"
    bad_mccs: tuple[object, ...] = ("581", "58121", "58a2", 5812, "５８１２")
    for bad in bad_mccs:
        with pytest.raises(ValidationError, match=r"^mcc must be 4 digits$"):
            check_mcc(bad)  # type: ignore[arg-type]


def test_account_numbers_lose_their_spaces_and_have_8_to_32_digits() -> None:
    assert check_account_number("6222 0212 3456 7890") == "6222021234567890"
    assert check_account_number("1" * ACCOUNT_NUMBER_DIGITS_MIN) == "1" * 8
    assert check_account_number("9" * ACCOUNT_NUMBER_DIGITS_MAX) == "9" * 32
    message = (f"account number must be {ACCOUNT_NUMBER_DIGITS_MIN}-"
               f"{ACCOUNT_NUMBER_DIGITS_MAX} digits")
    bad_numbers: tuple[object, ...] = ("1" * 7, "1" * 33, "1234-5678", "１２３４５６７８", "",
                                       "        ", 12345678)
    for bad in bad_numbers:
        with pytest.raises(ValidationError) as excinfo:
            check_account_number(bad)  # type: ignore[arg-type]
        assert excinfo.value.code is ErrorCode.VALIDATION_FAILED
        assert excinfo.value.message == message


def test_mask_account_number_shows_the_last_four() -> None:
    assert mask_account_number("6222021234567890") == "************7890"
    assert mask_account_number("12345678") == "****5678"


# -- 一清: the account holder is the merchant ---------------------------------------------------
@pytest.mark.parametrize(
    ("holder", "legal", "matches"),
    [("上海某某餐饮有限公司", "上海某某餐饮有限公司", True),
     ("上海某某（餐饮）有限公司", "上海某某(餐饮)有限公司", True),
     ("Acme Trading  Co", "acme trading co", True),
     ("上海 某某餐饮 有限公司", "上海某某餐饮有限公司", True),
     ("上海某某餐饮有限公司", "上海某某科技有限公司", False),
     ("Acme (HK)", "Acme HK", False)],
)
def test_holder_name_matches(holder: str, legal: str, matches: bool) -> None:
    assert holder_name_matches(holder, legal) is matches
    assert holder_name_matches(legal, holder) is matches


# -- errors -----------------------------------------------------------------------------------
def test_errors_show_their_class_code_and_message() -> None:
    assert repr(ValidationError("amount is blank", ErrorCode.INVALID_AMOUNT)) \
        == "ValidationError('invalid_amount', 'amount is blank')"
    with pytest.raises(InvariantViolation) as excinfo:
        require(False, "ledger out of balance")
    assert excinfo.value.message == "ledger out of balance"
    assert excinfo.value.code is ErrorCode.INTERNAL
    require(True, "never raised")
