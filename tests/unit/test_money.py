"""Money: parsing, rendering, arithmetic without losing a fen, one rounding rule."""

from __future__ import annotations

from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autosettle.domain.errors import ErrorCode, ValidationError
from autosettle.domain.money import (
    AMOUNT_MINOR_MAX,
    CNY,
    Money,
    allocate,
    apply_rate,
    currency,
    round_minor,
)

USD = currency("USD")
JPY = currency("JPY")
KWD = currency("KWD")

minor_units = st.integers(min_value=-(10**15), max_value=10**15)
accepted_minor = st.integers(min_value=0, max_value=AMOUNT_MINOR_MAX)


def _code(excinfo: pytest.ExceptionInfo[ValidationError]) -> ErrorCode:
    return excinfo.value.code


# -- parsing ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12.34", "12.34"),
        ("12.3", "12.30"),
        ("12", "12.00"),
        ("12.", "12.00"),
        ("0", "0.00"),
        ("0.01", "0.01"),
        ("  7.5 ", "7.50"),
        ("0012.30", "12.30"),
        ("9999999999.99", "9999999999.99"),
    ],
)
def test_parse_normalises(text: str, expected: str) -> None:
    assert Money.parse(text).format() == expected


@given(accepted_minor)
def test_format_parse_round_trip_cny(minor: int) -> None:
    money = Money(minor)
    assert Money.parse(money.format()) == money


@pytest.mark.parametrize("cur_code", ["CNY", "JPY", "KWD"])
@given(minor=accepted_minor)
def test_format_parse_round_trip_other_exponents(cur_code: str, minor: int) -> None:
    cur = currency(cur_code)
    money = Money(minor, cur)
    assert Money.parse(money.format(), cur) == money


def test_exponents_of_other_currencies() -> None:
    assert Money.parse("1.234", KWD).amount_minor == 1234
    assert Money.parse("1500", JPY).amount_minor == 1500
    assert Money.parse("1500", "jpy").currency == JPY


@pytest.mark.parametrize(("text", "cur"), [("1.234", CNY), ("0.001", CNY), ("1.5", JPY),
                                           ("1.2345", KWD)])
def test_too_many_decimals_refused(text: str, cur: object) -> None:
    with pytest.raises(ValidationError) as excinfo:
        Money.parse(text, cur)  # type: ignore[arg-type]
    assert _code(excinfo) is ErrorCode.AMOUNT_TOO_PRECISE


@pytest.mark.parametrize("text", ["-1", "-0.01", " -5.00", "-inf"])
def test_negative_refused(text: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        Money.parse(text)
    assert _code(excinfo) is ErrorCode.AMOUNT_NEGATIVE


@pytest.mark.parametrize(
    "text",
    [
        "", "  ", "\t\n", "+1", "NaN", "nan", "inf", "Infinity", "1e5", "1E5", ".5",
        "1,000.00", "1 000", "1.2.3", "12.34 CNY", "¥12", "0x10", "1_000",
        "１２.３４",  # full-width digits
        "١٢.٣٤",  # Arabic-Indic digits
    ],
)
def test_not_a_decimal_refused(text: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        Money.parse(text)
    assert _code(excinfo) is ErrorCode.INVALID_AMOUNT


def test_non_string_refused() -> None:
    with pytest.raises(ValidationError) as excinfo:
        Money.parse(12.34)  # type: ignore[arg-type]
    assert _code(excinfo) is ErrorCode.INVALID_AMOUNT


def test_limit_is_inclusive() -> None:
    assert Money.parse("9999999999.99").amount_minor == AMOUNT_MINOR_MAX
    assert Money.from_field4("999999999999").amount_minor == AMOUNT_MINOR_MAX
    assert Money.checked(AMOUNT_MINOR_MAX).amount_minor == AMOUNT_MINOR_MAX


@pytest.mark.parametrize("text", ["10000000000.00", "10000000000.01", "99999999999999", "9" * 5000,
                                  "1" + "0" * 40 + ".00"])
def test_too_large_refused(text: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        Money.parse(text)
    assert _code(excinfo) is ErrorCode.AMOUNT_TOO_LARGE


def test_checked_refuses_out_of_range() -> None:
    with pytest.raises(ValidationError) as too_large:
        Money.checked(AMOUNT_MINOR_MAX + 1)
    assert too_large.value.code is ErrorCode.AMOUNT_TOO_LARGE
    with pytest.raises(ValidationError) as negative:
        Money.checked(-1)
    assert negative.value.code is ErrorCode.AMOUNT_NEGATIVE


@pytest.mark.parametrize("bad", [1.5, Decimal("1"), True, "100", None])
def test_amount_must_be_int(bad: object) -> None:
    with pytest.raises(ValidationError) as excinfo:
        Money(bad)  # type: ignore[arg-type]
    assert _code(excinfo) is ErrorCode.INVALID_AMOUNT


# -- currencies ---------------------------------------------------------------------------
def test_currency_lookup() -> None:
    assert currency("CNY") is CNY
    assert currency("156") is CNY
    assert currency(" cny ") is CNY
    assert JPY.exponent == 0


@pytest.mark.parametrize("code", ["XXX", "", "RMB", "999", "CN"])
def test_unknown_currency(code: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        currency(code)
    assert _code(excinfo) is ErrorCode.UNKNOWN_CURRENCY
    with pytest.raises(ValidationError) as via_parse:
        Money.parse("1.00", code)
    assert via_parse.value.code is ErrorCode.UNKNOWN_CURRENCY


# -- ISO 8583 field 4 ---------------------------------------------------------------------
@given(st.integers(min_value=0, max_value=10**12 - 1))
def test_field4_round_trip(minor: int) -> None:
    field = Money(minor).to_field4()
    assert len(field) == 12
    assert field.isdigit()
    assert Money.from_field4(field) == Money(minor)


def test_field4_examples() -> None:
    assert Money(1234).to_field4() == "000000001234"
    assert Money.from_field4("000000001234", USD) == Money(1234, USD)


@pytest.mark.parametrize("field", ["", "1234", "0000000012345", "00000000123a", "-00000001234",
                                   " 00000001234", "００００００００１２３４"])
def test_field4_refuses_malformed(field: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        Money.from_field4(field)
    assert _code(excinfo) is ErrorCode.INVALID_AMOUNT


def test_field4_refuses_negative() -> None:
    with pytest.raises(ValidationError) as excinfo:
        Money(-1).to_field4()
    assert _code(excinfo) is ErrorCode.AMOUNT_TOO_LARGE


# -- arithmetic ---------------------------------------------------------------------------
def test_currency_mixing_raises() -> None:
    cny, usd = Money(100), Money(100, USD)
    for operation in (lambda: cny + usd, lambda: cny - usd, lambda: cny < usd,
                      lambda: cny <= usd, lambda: cny > usd, lambda: cny >= usd):
        with pytest.raises(ValidationError) as excinfo:
            operation()
        assert _code(excinfo) is ErrorCode.CURRENCY_MISMATCH


def test_combining_with_non_money_raises_type_error() -> None:
    with pytest.raises(TypeError):
        Money(1) + 1  # type: ignore[operator]
    with pytest.raises(TypeError):
        Money(1).times(1.5)  # type: ignore[arg-type]


@given(minor_units, minor_units)
def test_add_then_subtract_is_identity(a: int, b: int) -> None:
    ma, mb = Money(a), Money(b)
    assert ma + mb - mb == ma
    assert (ma + mb).amount_minor == a + b
    assert ma - ma == Money.zero()
    negated = -ma
    assert -negated == ma


@given(minor_units, minor_units, minor_units)
def test_addition_is_associative_and_commutative(a: int, b: int, c: int) -> None:
    ma, mb, mc = Money(a), Money(b), Money(c)
    assert (ma + mb) + mc == ma + (mb + mc)
    assert ma + mb == mb + ma


@given(st.lists(minor_units, min_size=1, max_size=30))
def test_sum_of_parts_equals_whole(parts: list[int]) -> None:
    total = Money.zero()
    for part in parts:
        total = total + Money(part)
    assert total == Money(sum(parts))
    remaining = total
    for part in parts:
        remaining = remaining - Money(part)
    assert remaining.is_zero


def test_format_negative_and_zero_exponent() -> None:
    assert Money(-5).format() == "-0.05"
    assert Money(-1234, JPY).format() == "-1234"
    assert str(Money(1234)) == "12.34 CNY"


# -- rounding -----------------------------------------------------------------------------
def _half_up_exact(value: Fraction) -> int:
    """Round to the nearest integer, halves away from zero: an independent oracle."""
    sign = -1 if value < 0 else 1
    magnitude = abs(value)
    floor = magnitude.numerator // magnitude.denominator
    if magnitude - floor >= Fraction(1, 2):
        floor += 1
    return sign * floor


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0.5", 1), ("-0.5", -1), ("1.5", 2), ("2.5", 3), ("-2.5", -3), ("0.4999999", 0),
     ("-0.4999999", 0), ("0.5000001", 1), ("0", 0), ("7", 7), ("-7.49", -7)],
)
def test_round_minor_halves_away_from_zero(value: str, expected: int) -> None:
    assert round_minor(Decimal(value)) == expected


def test_round_minor_refuses_non_finite() -> None:
    with pytest.raises(ValidationError) as excinfo:
        round_minor(Decimal("NaN"))
    assert _code(excinfo) is ErrorCode.INVALID_AMOUNT


def test_apply_rate_examples() -> None:
    assert apply_rate(Money(10001), Decimal("0.005")).amount_minor == 50
    assert apply_rate(Money(100), Decimal("0.005")).amount_minor == 1  # 0.5 fen -> 1
    assert apply_rate(Money(-100), Decimal("0.005")).amount_minor == -1  # -0.5 fen -> -1
    assert apply_rate(Money(10000, USD), Decimal("0.0060")) == Money(60, USD)


def test_apply_rate_rounds_once_even_for_long_rates() -> None:
    # 3 × 0.1666…6 (31 digits) is 0.4999…98: exactly below a half, so 0, not 1.
    rate = Decimal("0." + "1" + "6" * 30)
    assert apply_rate(Money(3), rate).amount_minor == 0
    assert apply_rate(Money(AMOUNT_MINOR_MAX), Decimal("1E-30")).amount_minor == 0


@pytest.mark.parametrize("rate", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"),
                                  0.006, "0.006", 1])
def test_apply_rate_refuses_non_finite_or_non_decimal(rate: object) -> None:
    with pytest.raises(ValidationError) as excinfo:
        apply_rate(Money(100), rate)  # type: ignore[arg-type]
    assert _code(excinfo) is ErrorCode.VALIDATION_FAILED


def _rates() -> st.SearchStrategy[Decimal]:
    plain = st.decimals(min_value=-2, max_value=2, allow_nan=False, allow_infinity=False,
                        places=6)
    long = st.builds(lambda digits, exponent: Decimal(digits).scaleb(-exponent),
                     st.integers(min_value=-(10**40), max_value=10**40),
                     st.integers(min_value=0, max_value=60))
    return plain | long


@given(st.integers(min_value=-AMOUNT_MINOR_MAX, max_value=AMOUNT_MINOR_MAX), _rates())
def test_apply_rate_matches_exact_fraction(minor: int, rate: Decimal) -> None:
    expected = _half_up_exact(Fraction(minor) * Fraction(rate))
    result = apply_rate(Money(minor), rate)
    assert result.amount_minor == expected
    assert result.currency is CNY


@st.composite
def _amount_and_rate_near_half_fen(draw: st.DrawFn) -> tuple[int, Decimal]:
    """An amount and a long rate whose exact product lies a hair from ``k + 0.5`` fen."""
    minor = draw(st.integers(min_value=1, max_value=AMOUNT_MINOR_MAX))
    half_fen = draw(st.integers(min_value=0, max_value=minor))
    digits = draw(st.integers(min_value=29, max_value=60))
    with localcontext() as ctx:
        ctx.prec = digits
        rate = Decimal(2 * half_fen + 1) / Decimal(2 * minor)
    sign = draw(st.sampled_from([1, -1]))
    return sign * minor, rate


@given(_amount_and_rate_near_half_fen())
def test_apply_rate_near_half_fen_matches_exact(case: tuple[int, Decimal]) -> None:
    minor, rate = case
    expected = _half_up_exact(Fraction(minor) * Fraction(rate))
    assert apply_rate(Money(minor), rate).amount_minor == expected


@given(st.integers(min_value=-(10**9), max_value=10**9))
def test_apply_rate_exact_halves(half_units: int) -> None:
    # minor × 0.5 for odd minor is exactly x.5 fen: always away from zero.
    minor = 2 * half_units + 1
    sign = 1 if minor > 0 else -1
    assert apply_rate(Money(minor), Decimal("0.5")).amount_minor == sign * (abs(minor) + 1) // 2


# -- allocation ---------------------------------------------------------------------------
@given(
    st.integers(min_value=-AMOUNT_MINOR_MAX, max_value=AMOUNT_MINOR_MAX),
    st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=20).filter(
        lambda ws: sum(ws) > 0),
)
def test_allocate_sums_to_total_and_stays_close(total_minor: int, weights: list[int]) -> None:
    total = Money(total_minor, USD)
    parts = allocate(total, weights)
    assert len(parts) == len(weights)
    assert all(part.currency is USD for part in parts)
    assert sum(part.amount_minor for part in parts) == total_minor
    weight_sum = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        exact = Fraction(total_minor * weight, weight_sum)
        assert abs(part.amount_minor - exact) < 1
        if weight == 0:
            assert part.is_zero


def test_allocate_example() -> None:
    assert [p.amount_minor for p in allocate(Money(100), [1, 1, 1])] == [34, 33, 33]
    assert [p.amount_minor for p in allocate(Money(-100), [1, 1, 1])] == [-34, -33, -33]


@pytest.mark.parametrize("weights", [[], [0, 0], [1, -1], [-1]])
def test_allocate_refuses_bad_weights(weights: list[int]) -> None:
    with pytest.raises(ValidationError) as excinfo:
        allocate(Money(100), weights)
    assert _code(excinfo) is ErrorCode.VALIDATION_FAILED
