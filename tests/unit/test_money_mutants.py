"""Money: the behaviour mutation testing found unchecked (see docs/testing.md).

Each test states a rule a caller relies on: which currency a result is in, where a limit
lies, which code and which words an error carries, how a split distributes the odd fen.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autosettle.domain.errors import ErrorCode, ValidationError
from autosettle.domain.money import (
    AMOUNT_MINOR_MAX,
    CNY,
    Currency,
    Money,
    allocate,
    apply_rate,
    currency,
    known_currencies,
    round_minor,
)

USD = currency("USD")
JPY = currency("JPY")


def _refusal(action: Callable[[], object]) -> ValidationError:
    with pytest.raises(ValidationError) as excinfo:
        action()
    return excinfo.value


# -- currencies ---------------------------------------------------------------------------
@pytest.mark.parametrize("code", [156, None, b"CNY"])
def test_currency_refuses_a_non_string_with_a_typed_error(code: object) -> None:
    error = _refusal(lambda: currency(code))  # type: ignore[arg-type]
    assert error.code is ErrorCode.UNKNOWN_CURRENCY
    assert error.message == f"unknown currency {code!r}"


def test_currency_accepts_alphabetic_and_numeric_codes_loosely_written() -> None:
    assert currency(" usd ") is USD
    assert currency("392") is JPY
    error = _refusal(lambda: currency("XXX"))
    assert error.code is ErrorCode.UNKNOWN_CURRENCY
    assert "'XXX'" in error.message


def test_known_currencies_lists_every_currency_once_ordered_by_code() -> None:
    listed = known_currencies()
    codes = [c.code for c in listed]
    assert codes == sorted(codes)
    assert len(set(codes)) == len(codes)
    assert {"CNY", "USD", "JPY", "KWD"} <= set(codes)
    assert all(isinstance(c, Currency) and currency(c.numeric) is c for c in listed)
    assert codes[0] == "AUD"


# -- construction and parsing -------------------------------------------------------------
def test_money_refuses_a_non_integer_amount_and_says_what_it_got() -> None:
    error = _refusal(lambda: Money(1.5))  # type: ignore[arg-type]
    assert error.code is ErrorCode.INVALID_AMOUNT
    assert error.message == "amount must be an integer number of minor units, got 1.5"


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        ("  ", ErrorCode.INVALID_AMOUNT, "amount is blank"),
        ("-1.00", ErrorCode.AMOUNT_NEGATIVE, "amount '-1.00' is negative"),
        ("1e3", ErrorCode.INVALID_AMOUNT, "amount '1e3' is not a decimal number"),
        ("1.234", ErrorCode.AMOUNT_TOO_PRECISE, "amount '1.234' has more than 2 decimals for CNY"),
        ("1" * 13, ErrorCode.AMOUNT_TOO_LARGE, f"amount {'1' * 13!r} is too large"),
        ("10000000000.00", ErrorCode.AMOUNT_TOO_LARGE,
         f"amount 1000000000000 exceeds {AMOUNT_MINOR_MAX} minor units"),
    ],
)
def test_parse_refusals_carry_a_code_and_name_the_input(
        text: str, code: ErrorCode, message: str) -> None:
    error = _refusal(lambda: Money.parse(text))
    assert error.code is code
    assert error.message == message


def test_parse_takes_twelve_integer_digits_for_a_currency_without_decimals() -> None:
    assert Money.parse("999999999999", "JPY") == Money(AMOUNT_MINOR_MAX, JPY)
    assert Money.parse("000000000000000999999999999", "JPY") == Money(AMOUNT_MINOR_MAX, JPY)
    assert Money.parse("7", "JPY") == Money(7, JPY)
    assert _refusal(lambda: Money.parse("1000000000000", "JPY")).code \
        is ErrorCode.AMOUNT_TOO_LARGE


def test_parse_refuses_a_huge_amount_with_a_typed_error() -> None:
    # Thousands of digits: int() of such a string would raise a bare ValueError.
    assert _refusal(lambda: Money.parse("9" * 5000)).code is ErrorCode.AMOUNT_TOO_LARGE


def test_checked_refusals_name_the_amount() -> None:
    assert _refusal(lambda: Money.checked(-5)).message == "amount -5 is negative"
    error = _refusal(lambda: Money.checked(AMOUNT_MINOR_MAX + 1))
    assert error.code is ErrorCode.AMOUNT_TOO_LARGE
    assert error.message == f"amount {AMOUNT_MINOR_MAX + 1} exceeds {AMOUNT_MINOR_MAX} minor units"


def test_field4_refusals_name_the_field() -> None:
    assert _refusal(lambda: Money.from_field4("12")).message \
        == "field 4 must be 12 digits, got '12'"
    error = _refusal(lambda: Money(10**12).to_field4())
    assert error.code is ErrorCode.AMOUNT_TOO_LARGE
    assert error.message == "1000000000000 does not fit field 4"
    assert Money(AMOUNT_MINOR_MAX).to_field4() == "999999999999"


# -- arithmetic ---------------------------------------------------------------------------
def test_arithmetic_keeps_the_currency() -> None:
    assert Money(150, USD) + Money(50, USD) == Money(200, USD)
    assert Money(150, USD) - Money(50, USD) == Money(100, USD)
    assert -Money(150, USD) == Money(-150, USD)
    assert Money(150, USD).times(3) == Money(450, USD)
    assert Money(7, JPY).times(-2) == Money(-14, JPY)


@given(st.integers(min_value=-(10**6), max_value=10**6),
       st.integers(min_value=-(10**6), max_value=10**6))
def test_comparisons_follow_the_amounts(a: int, b: int) -> None:
    ma, mb = Money(a, USD), Money(b, USD)
    assert (ma < mb, ma <= mb, ma > mb, ma >= mb) == (a < b, a <= b, a > b, a >= b)


def test_misuse_errors_name_what_was_wrong() -> None:
    with pytest.raises(TypeError, match=r"^cannot combine Money with int$"):
        Money(1) + 1  # type: ignore[operator]
    with pytest.raises(TypeError, match=r"^Money can only be multiplied by an int$"):
        Money(1).times(True)
    error = _refusal(lambda: Money(1) + Money(1, USD))
    assert error.message == "cannot combine CNY with USD"


# -- rounding -----------------------------------------------------------------------------
def test_round_minor_rounds_large_values_and_names_what_it_refuses() -> None:
    assert round_minor(Decimal("1E+30")) == 10**30
    assert round_minor(Decimal("-123456789012345678901234567890.5")) \
        == -123456789012345678901234567891
    error = _refusal(lambda: round_minor(0.5))  # type: ignore[arg-type]
    assert error.code is ErrorCode.INVALID_AMOUNT
    assert error.message == "cannot round 0.5"


@pytest.mark.parametrize(("rate", "expected"),
                         [(Decimal("1E+2"), 12300), (Decimal("1.5E+1"), 1845),
                          (Decimal("0.1E+1"), 123)])
def test_apply_rate_with_a_positive_exponent_is_exact(rate: Decimal, expected: int) -> None:
    # Decimal("100").normalize() is 1E+2: the product needs digits the rate does not show.
    assert apply_rate(Money(123, USD), rate) == Money(expected, USD)
    assert apply_rate(Money(AMOUNT_MINOR_MAX), rate).amount_minor \
        == int(Fraction(AMOUNT_MINOR_MAX) * Fraction(rate))


def test_apply_rate_refusal_names_the_rate() -> None:
    error = _refusal(lambda: apply_rate(Money(1), Decimal("NaN")))
    assert error.code is ErrorCode.VALIDATION_FAILED
    assert error.message == "rate must be a finite Decimal, got Decimal('NaN')"


# -- allocation ---------------------------------------------------------------------------
@pytest.mark.parametrize("weights", [[], [0, 0], [1, -1]])
def test_allocate_refuses_bad_weights(weights: list[int]) -> None:
    error = _refusal(lambda: allocate(Money(10), weights))
    assert error.code is ErrorCode.VALIDATION_FAILED
    assert error.message == "weights must be non-negative with a positive sum"


def test_allocate_gives_the_odd_fen_to_the_largest_remainder() -> None:
    # 5 in 1:2 is 1.67 : 3.33, so 2 : 3 (not 1 : 4, which follows the larger quotient).
    assert allocate(Money(5, USD), [1, 2]) == [Money(2, USD), Money(3, USD)]
    assert allocate(Money(-5, USD), [1, 2]) == [Money(-2, USD), Money(-3, USD)]
    assert allocate(Money(0), [1, 2]) == [Money(0), Money(0)]
    # Equal remainders: the earlier part first.
    assert allocate(Money(1), [1, 1]) == [Money(1), Money(0)]


@given(st.integers(min_value=-(10**9), max_value=10**9),
       st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=8)
       .filter(lambda ws: sum(ws) > 0))
def test_allocate_is_the_largest_remainder_method(total: int, weights: list[int]) -> None:
    parts = [m.amount_minor for m in allocate(Money(total, JPY), weights)]
    assert sum(parts) == total
    exact = [Fraction(abs(total) * w, sum(weights)) for w in weights]
    magnitudes = [abs(p) for p in parts]
    assert all(p == 0 or (p > 0) == (total > 0) for p in parts)
    rounded_up = [m > q for m, q in zip(magnitudes, exact, strict=True)]
    # Every part is its exact share rounded down or up, and no part rounded down had a
    # larger remainder than a part rounded up.
    assert all(int(q) <= m <= int(q) + 1 for m, q in zip(magnitudes, exact, strict=True))
    up = [q - int(q) for q, r in zip(exact, rounded_up, strict=True) if r]
    down = [q - int(q) for q, r in zip(exact, rounded_up, strict=True) if not r]
    assert not up or not down or min(up) >= max(down)


def test_cny_is_the_default_currency() -> None:
    assert Money(1).currency is CNY
    assert Money.parse("1").currency is CNY
