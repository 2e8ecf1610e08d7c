"""Money: an integer number of minor units with an ISO 4217 currency.

Never a float. Arithmetic refuses to mix currencies. Percentages become money through one
function, :func:`apply_rate`, which rounds once, ROUND_HALF_UP, to the minor unit.

>>> Money.parse("12.34")
Money(amount_minor=1234, currency=Currency(code='CNY', numeric='156', exponent=2))
>>> apply_rate(Money(10001), Decimal("0.005")).amount_minor
50
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext

from autosettle.domain.errors import ErrorCode, ValidationError

AMOUNT_MINOR_MAX = 10**12 - 1
"""The largest amount in minor units we accept from outside (ISO 8583 field 4 is n12)."""

FIELD4_DIGITS = 12


@dataclass(frozen=True, slots=True)
class Currency:
    """An ISO 4217 currency: alphabetic code, numeric code, minor-unit exponent."""

    code: str
    numeric: str
    exponent: int


_CURRENCIES: dict[str, Currency] = {
    c.code: c
    for c in (
        Currency("CNY", "156", 2),
        Currency("HKD", "344", 2),
        Currency("MOP", "446", 2),
        Currency("TWD", "901", 2),
        Currency("USD", "840", 2),
        Currency("EUR", "978", 2),
        Currency("GBP", "826", 2),
        Currency("JPY", "392", 0),
        Currency("KRW", "410", 0),
        Currency("SGD", "702", 2),
        Currency("AUD", "036", 2),
        Currency("CAD", "124", 2),
        Currency("CHF", "756", 2),
        Currency("THB", "764", 2),
        Currency("RUB", "643", 2),
        Currency("KWD", "414", 3),
        Currency("BHD", "048", 3),
    )
}
_BY_NUMERIC = {c.numeric: c for c in _CURRENCIES.values()}

CNY = _CURRENCIES["CNY"]


def currency(code: str) -> Currency:
    """Look up a currency by alphabetic ("CNY") or numeric ("156") ISO 4217 code."""
    key = code.strip().upper() if isinstance(code, str) else ""
    found = _CURRENCIES.get(key) or _BY_NUMERIC.get(key)
    if found is None:
        raise ValidationError(f"unknown currency {code!r}", ErrorCode.UNKNOWN_CURRENCY)
    return found


def known_currencies() -> list[Currency]:
    """All currencies in the table, ordered by code."""
    return sorted(_CURRENCIES.values(), key=lambda c: c.code)


# re.ASCII: \d would otherwise accept any Unicode digit ("١٢"), which int() then reads.
_DECIMAL_TEXT = re.compile(r"^(?P<int>\d+)(?:\.(?P<frac>\d*))?$", re.ASCII)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in integer minor units (fen for CNY) of one currency."""

    amount_minor: int
    currency: Currency = CNY

    def __post_init__(self) -> None:
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int):
            raise ValidationError(
                f"amount must be an integer number of minor units, got {self.amount_minor!r}",
                ErrorCode.INVALID_AMOUNT,
            )

    # -- construction -------------------------------------------------------------------
    @classmethod
    def zero(cls, cur: Currency = CNY) -> Money:
        return cls(0, cur)

    @classmethod
    def parse(cls, text: str, cur: Currency | str = CNY) -> Money:
        """Parse a non-negative decimal string such as ``"12.34"`` into money.

        Refuses blanks, signs, exponents, NaN/infinity, more decimals than the currency has,
        and amounts above :data:`AMOUNT_MINOR_MAX` minor units.
        """
        cur = currency(cur) if isinstance(cur, str) else cur
        if not isinstance(text, str) or not text.strip():
            raise ValidationError("amount is blank", ErrorCode.INVALID_AMOUNT)
        stripped = text.strip()
        if stripped.startswith("-"):
            raise ValidationError(f"amount {text!r} is negative", ErrorCode.AMOUNT_NEGATIVE)
        match = _DECIMAL_TEXT.match(stripped)
        if match is None:
            raise ValidationError(f"amount {text!r} is not a decimal number",
                                  ErrorCode.INVALID_AMOUNT)
        frac = match.group("frac") or ""
        if len(frac) > cur.exponent:
            raise ValidationError(
                f"amount {text!r} has more than {cur.exponent} decimals for {cur.code}",
                ErrorCode.AMOUNT_TOO_PRECISE,
            )
        integer = match.group("int")
        # Leading zeros do not make an amount large ("0001.00" is 1.00).
        if len(integer.lstrip("0")) > FIELD4_DIGITS + 1:
            raise ValidationError(f"amount {text!r} is too large", ErrorCode.AMOUNT_TOO_LARGE)
        minor = int(integer) * 10**cur.exponent + int((frac or "0").ljust(cur.exponent, "0")
                                                       or "0")
        return cls.checked(minor, cur)

    @classmethod
    def checked(cls, amount_minor: int, cur: Currency = CNY) -> Money:
        """Money from outside: non-negative and at most :data:`AMOUNT_MINOR_MAX`."""
        money = cls(amount_minor, cur)
        if amount_minor < 0:
            raise ValidationError(f"amount {amount_minor} is negative",
                                  ErrorCode.AMOUNT_NEGATIVE)
        if amount_minor > AMOUNT_MINOR_MAX:
            raise ValidationError(f"amount {amount_minor} exceeds {AMOUNT_MINOR_MAX} minor units",
                                  ErrorCode.AMOUNT_TOO_LARGE)
        return money

    @classmethod
    def from_field4(cls, field: str, cur: Currency = CNY) -> Money:
        """Parse ISO 8583 field 4: exactly 12 digits of minor units."""
        if not isinstance(field, str) or len(field) != FIELD4_DIGITS or not field.isdigit() \
                or not field.isascii():
            raise ValidationError(f"field 4 must be {FIELD4_DIGITS} digits, got {field!r}",
                                  ErrorCode.INVALID_AMOUNT)
        return cls.checked(int(field), cur)

    # -- rendering ----------------------------------------------------------------------
    def to_field4(self) -> str:
        """Render as ISO 8583 field 4 (12 digits, minor units)."""
        if not 0 <= self.amount_minor < 10**FIELD4_DIGITS:
            raise ValidationError(f"{self.amount_minor} does not fit field 4",
                                  ErrorCode.AMOUNT_TOO_LARGE)
        return str(self.amount_minor).zfill(FIELD4_DIGITS)

    def format(self) -> str:
        """``"12.34"``: major units with exactly the currency's decimals."""
        sign = "-" if self.amount_minor < 0 else ""
        digits = str(abs(self.amount_minor)).rjust(self.currency.exponent + 1, "0")
        if self.currency.exponent == 0:
            return sign + digits
        return f"{sign}{digits[:-self.currency.exponent]}.{digits[-self.currency.exponent:]}"

    def __str__(self) -> str:
        return f"{self.format()} {self.currency.code}"

    # -- arithmetic ---------------------------------------------------------------------
    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise ValidationError(
                f"cannot combine {self.currency.code} with {other.currency.code}",
                ErrorCode.CURRENCY_MISMATCH,
            )

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount_minor, self.currency)

    def __abs__(self) -> Money:
        return Money(abs(self.amount_minor), self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount_minor < other.amount_minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount_minor <= other.amount_minor

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount_minor > other.amount_minor

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount_minor >= other.amount_minor

    def times(self, count: int) -> Money:
        """Multiply by a whole number (never by a fraction: use :func:`apply_rate`)."""
        if isinstance(count, bool) or not isinstance(count, int):
            raise TypeError("Money can only be multiplied by an int")
        return Money(self.amount_minor * count, self.currency)

    @property
    def is_zero(self) -> bool:
        return self.amount_minor == 0


def round_minor(value: Decimal) -> int:
    """Round a Decimal number of minor units to an int, ROUND_HALF_UP (away from zero on .5).

    This is the only place in autosettle where an amount is rounded.
    """
    # A quiet NaN passes quantize unchanged and int() would then raise a bare ValueError.
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValidationError(f"cannot round {value!r}", ErrorCode.INVALID_AMOUNT)
    try:
        return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except InvalidOperation as exc:
        raise ValidationError(f"cannot round {value!r}", ErrorCode.INVALID_AMOUNT) from exc


def apply_rate(base: Money, rate: Decimal) -> Money:
    """``base × rate`` rounded once, ROUND_HALF_UP, to the minor unit.

    ``rate`` is a fraction (``Decimal("0.0060")`` for 0.60%) and must be finite.
    """
    if not isinstance(rate, Decimal) or not rate.is_finite():
        raise ValidationError(f"rate must be a finite Decimal, got {rate!r}",
                              ErrorCode.VALIDATION_FAILED)
    amount = Decimal(base.amount_minor)
    # The product must be exact so that round_minor is the only rounding: under the default
    # 28-digit context a long rate would be rounded (half-even) first, e.g. 3 × 0.1666…6
    # (31 digits) became 0.5000… and then 1 instead of 0.
    digits = len(amount.as_tuple().digits) + len(rate.as_tuple().digits)
    exponent = rate.as_tuple().exponent
    with localcontext() as ctx:
        ctx.prec = digits + max(0, exponent if isinstance(exponent, int) else 0) + 1
        return Money(round_minor(amount * rate), base.currency)


def allocate(total: Money, weights: list[int]) -> list[Money]:
    """Split ``total`` in proportion to integer ``weights`` without losing a minor unit.

    Largest-remainder method: the parts always sum to ``total`` exactly.
    """
    if not weights or any(w < 0 for w in weights) or sum(weights) == 0:
        raise ValidationError("weights must be non-negative with a positive sum",
                              ErrorCode.VALIDATION_FAILED)
    weight_sum = sum(weights)
    sign = -1 if total.amount_minor < 0 else 1
    amount = abs(total.amount_minor)
    shares = [amount * w // weight_sum for w in weights]
    remainders = [(amount * w % weight_sum, -i) for i, w in enumerate(weights)]
    for _, neg_index in sorted(remainders, reverse=True)[: amount - sum(shares)]:
        shares[-neg_index] += 1
    return [Money(sign * s, total.currency) for s in shares]
