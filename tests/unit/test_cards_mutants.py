"""Cards: the behaviour mutation testing found unchecked (see docs/testing.md).

Brands from a bare prefix, the longest BIN prefix winning, the shortest accepted key, masking
that never raises, and the code and words of every refusal (none of which echo a PAN).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autosettle.domain.cards import (
    TOKEN_KEY_BYTES_MIN,
    BinEntry,
    BinTable,
    CardBrand,
    CardKind,
    Expiry,
    PanTokenizer,
    brand_of,
    check_expiry,
    luhn_check_digit,
    luhn_ok,
    mask_pan,
    validate_pan,
)
from autosettle.domain.errors import ErrorCode, ValidationError

KEY = b"k" * TOKEN_KEY_BYTES_MIN


def _refusal(action: Callable[[], object]) -> ValidationError:
    with pytest.raises(ValidationError) as excinfo:
        action()
    return excinfo.value


@pytest.mark.parametrize(
    ("action", "code", "message"),
    [(lambda: validate_pan(4111111111111111),  # type: ignore[arg-type]
      ErrorCode.INVALID_PAN, "PAN must be a string"),
     (lambda: validate_pan("4111-1111-1111-1111"), ErrorCode.INVALID_PAN,
      "PAN must contain only ASCII digits"),
     (lambda: validate_pan("4111111111111112"), ErrorCode.INVALID_PAN,
      "PAN fails the Luhn check"),
     (lambda: luhn_check_digit("41x"), ErrorCode.INVALID_PAN, "Luhn input must be ASCII digits"),
     (lambda: Expiry(2026, "12"), ErrorCode.INVALID_EXPIRY,  # type: ignore[arg-type]
      "expiry year and month must be integers"),
     (lambda: Expiry(2026, 13), ErrorCode.INVALID_EXPIRY,
      "expiry month must be 01–12 and year 2000–2099"),
     (lambda: Expiry.parse("26-1"), ErrorCode.INVALID_EXPIRY, "expiry must be 4 digits YYMM"),
     (lambda: check_expiry("2001", date(2020, 2, 1)),
      ErrorCode.CARD_EXPIRED, "card has expired"),
     (lambda: BinTable({"62220": (CardKind.DEBIT, "Bank")}), ErrorCode.VALIDATION_FAILED,
      "BIN prefix '62220' must be 6–8 ASCII digits"),
     (lambda: BinTable({"622202": ("gold", "Bank")}), ErrorCode.VALIDATION_FAILED,
      "BIN 622202: unknown card kind 'gold'"),
     (lambda: BinTable({"622202": (CardKind.DEBIT, " ")}), ErrorCode.VALIDATION_FAILED,
      "BIN 622202: issuer name is blank"),
     (lambda: PanTokenizer("k" * 32), ErrorCode.VALIDATION_FAILED,  # type: ignore[arg-type]
      "tokenizer key must be bytes"),
     (lambda: PanTokenizer(KEY[:-1]), ErrorCode.VALIDATION_FAILED,
      f"tokenizer key must be at least {TOKEN_KEY_BYTES_MIN} bytes")],
)
def test_refusals_carry_a_code_and_say_why(
        action: Callable[[], object], code: ErrorCode, message: str) -> None:
    error = _refusal(action)
    assert error.code is code
    assert error.message == message


@pytest.mark.parametrize(("prefix", "brand"),
                         [("3528", CardBrand.JCB), ("3589", CardBrand.JCB),
                          ("51", CardBrand.MASTERCARD), ("55", CardBrand.MASTERCARD),
                          ("2221", CardBrand.MASTERCARD), ("2720", CardBrand.MASTERCARD),
                          ("35", CardBrand.UNKNOWN), ("5", CardBrand.UNKNOWN),
                          ("222", CardBrand.UNKNOWN)])
def test_brand_of_a_bare_prefix(prefix: str, brand: CardBrand) -> None:
    assert brand_of(prefix) is brand


def test_the_longest_bin_prefix_wins_whatever_the_input_length() -> None:
    table = BinTable({"622202": (CardKind.DEBIT, "Six"),
                      "62220212": (CardKind.CREDIT, "Eight")})
    assert table.lookup("6222021234567890") == BinEntry(CardKind.CREDIT, "Eight")
    assert table.lookup("62220212") == BinEntry(CardKind.CREDIT, "Eight")
    assert table.lookup("6222029934567890") == BinEntry(CardKind.DEBIT, "Six")
    assert table.lookup("622202") == BinEntry(CardKind.DEBIT, "Six")
    assert table.lookup("62220") is None
    assert BinTable().lookup("6222021234567890") is None


@given(st.text(alphabet="0123456789", min_size=1, max_size=19))
def test_luhn_check_digit_makes_any_digits_valid(partial: str) -> None:
    completed = partial + luhn_check_digit(partial)
    assert luhn_ok(completed)
    wrong = str((int(completed[-1]) + 1) % 10)
    assert not luhn_ok(completed[:-1] + wrong)


@pytest.mark.parametrize("pan", [None, 4111111111111111, b"4111111111111111"])
def test_mask_pan_of_a_non_string_is_empty(pan: object) -> None:
    assert mask_pan(pan) == ""  # type: ignore[arg-type]


def test_tokenizer_takes_the_shortest_key_and_hides_it() -> None:
    tokenizer = PanTokenizer(KEY)
    assert repr(tokenizer) == "PanTokenizer(key=<redacted>)"
    token = tokenizer.token("4111 1111 1111 1111")
    assert token == PanTokenizer(bytearray(KEY)).token("4111111111111111")  # type: ignore[arg-type]
    assert len(token) == 64
