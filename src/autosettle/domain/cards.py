"""Cards: PAN validation, masking, brand and BIN classification, tokenization.

PCI DSS rules this module exists to make easy to follow:

* **3.3** full track data, CVV and PIN blocks are never kept; nothing here accepts them.
* **3.4.1** a PAN is displayed at most as BIN (first 6) + last 4: :func:`mask_pan`.
* **3.5.1** a PAN is unreadable wherever it is stored: :class:`PanTokenizer` turns it into a
  keyed hash (HMAC-SHA256, key from configuration) and :meth:`PanTokenizer.describe` returns
  a :class:`CardRef`, which is the only card record autosettle ever stores.

No full PAN is ever stored or logged: error messages raised here never contain the PAN (not
even masked), and no object in this module keeps one in an attribute.

>>> validate_pan("4111 1111 1111 1111")
'4111111111111111'
>>> mask_pan("6222020200000000008")
'622202*********0008'
>>> brand_of("4111111111111111")
<CardBrand.VISA: 'visa'>
>>> Expiry.parse("2902")
Expiry(year=2029, month=2)
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple

from autosettle.domain.errors import ErrorCode, ValidationError

PAN_DIGITS_MIN = 13
PAN_DIGITS_MAX = 19
MASK_SHOW_FIRST_DIGITS = 6
MASK_SHOW_LAST_DIGITS = 4
BIN_PREFIX_DIGITS_MIN = 6
BIN_PREFIX_DIGITS_MAX = 8
TOKEN_KEY_BYTES_MIN = 16


def _is_digits(text: str) -> bool:
    return bool(text) and text.isascii() and text.isdigit()


def _normalise(pan: object) -> str:
    """The PAN without spaces; raises INVALID_PAN (without echoing it) unless all digits."""
    if not isinstance(pan, str):
        raise ValidationError("PAN must be a string", ErrorCode.INVALID_PAN)
    digits = pan.replace(" ", "")
    if not _is_digits(digits):
        raise ValidationError("PAN must contain only ASCII digits", ErrorCode.INVALID_PAN)
    return digits


# -- Luhn ---------------------------------------------------------------------------------
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
"""A digit doubled, minus 9 when that is above 9 (the Luhn step)."""


def _luhn_sum(digits: str, *, double_last: bool) -> int:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - ord("0")
        total += _DOUBLED[value] if (position % 2 == 0) == double_last else value
    return total


def luhn_ok(digits: str) -> bool:
    """True if ``digits`` (ASCII digits, check digit last) passes the Luhn check."""
    if not isinstance(digits, str) or not _is_digits(digits):
        return False
    return _luhn_sum(digits, double_last=False) % 10 == 0


def luhn_check_digit(partial: str) -> str:
    """The Luhn check digit to append to ``partial`` (ASCII digits) to make it valid.

    >>> luhn_check_digit("411111111111111")
    '1'
    """
    if not isinstance(partial, str) or not _is_digits(partial):
        raise ValidationError("Luhn input must be ASCII digits", ErrorCode.INVALID_PAN)
    return str(-_luhn_sum(partial, double_last=True) % 10)


def validate_pan(pan: str) -> str:
    """Return the PAN without spaces if it is 13–19 ASCII digits passing the Luhn check.

    Raises :class:`ValidationError` ``INVALID_PAN``; the message never contains the PAN.
    """
    digits = _normalise(pan)
    if not PAN_DIGITS_MIN <= len(digits) <= PAN_DIGITS_MAX:
        raise ValidationError(
            f"PAN must be {PAN_DIGITS_MIN}–{PAN_DIGITS_MAX} digits, got {len(digits)}",
            ErrorCode.INVALID_PAN,
        )
    if not luhn_ok(digits):
        raise ValidationError("PAN fails the Luhn check", ErrorCode.INVALID_PAN)
    return digits


# -- masking --------------------------------------------------------------------------------
def mask_pan(pan: str) -> str:
    """Mask a PAN for display: first 6 and last 4 digits at most, every other digit ``*``.

    Never raises, so it is safe on rejected input too. Spaces are removed and the result
    has the length of what remains. Only a string of 13 or more ASCII digits shows its first
    6 and last 4; anything else (too short, or not all digits) is masked entirely.

    >>> mask_pan("4111 1111 1111 1111")
    '411111******1111'
    """
    text = pan.replace(" ", "") if isinstance(pan, str) else ""
    if len(text) < PAN_DIGITS_MIN or not _is_digits(text):
        return "*" * len(text)
    hidden = len(text) - MASK_SHOW_FIRST_DIGITS - MASK_SHOW_LAST_DIGITS
    return text[:MASK_SHOW_FIRST_DIGITS] + "*" * hidden + text[-MASK_SHOW_LAST_DIGITS:]


# -- brands ---------------------------------------------------------------------------------
class CardBrand(StrEnum):
    """Card scheme, from the leading digits (IIN ranges)."""

    UNIONPAY = "unionpay"
    VISA = "visa"
    MASTERCARD = "mastercard"
    AMEX = "amex"
    JCB = "jcb"
    UNKNOWN = "unknown"


def _prefix_in(digits: str, length: int, low: int, high: int) -> bool:
    return len(digits) >= length and low <= int(digits[:length]) <= high


def brand_of(pan: str) -> CardBrand:
    """The card brand from the leading digits of ``pan`` (a PAN or just its prefix).

    JCB (3528–3589) is checked first, before anything else starting with 3; then Amex
    (34, 37), UnionPay (62, 81), Visa (4), Mastercard (51–55, 2221–2720).
    Raises ``INVALID_PAN`` if ``pan`` is not ASCII digits (spaces allowed).
    """
    digits = _normalise(pan)
    if _prefix_in(digits, 4, 3528, 3589):
        return CardBrand.JCB
    if digits.startswith(("34", "37")):
        return CardBrand.AMEX
    if digits.startswith(("62", "81")):
        return CardBrand.UNIONPAY
    if digits.startswith("4"):
        return CardBrand.VISA
    if _prefix_in(digits, 2, 51, 55) or _prefix_in(digits, 4, 2221, 2720):
        return CardBrand.MASTERCARD
    return CardBrand.UNKNOWN


# -- BIN table ------------------------------------------------------------------------------
class CardKind(StrEnum):
    """What a fee schedule needs to know about a card."""

    DEBIT = "debit"
    CREDIT = "credit"
    FOREIGN = "foreign"
    """Issued outside the domestic (UnionPay) network."""
    OTHER = "other"
    """Domestic, but its BIN is not in the table: prepaid, unknown issuer, new range."""


class BinEntry(NamedTuple):
    """What one BIN prefix tells us: the kind of card and the issuer's name."""

    kind: CardKind
    issuer: str


def _checked_entry(prefix: str, entry: tuple[CardKind | str, str]) -> tuple[str, BinEntry]:
    if not isinstance(prefix, str) or not _is_digits(prefix) \
            or not BIN_PREFIX_DIGITS_MIN <= len(prefix) <= BIN_PREFIX_DIGITS_MAX:
        raise ValidationError(
            f"BIN prefix {prefix!r} must be {BIN_PREFIX_DIGITS_MIN}–{BIN_PREFIX_DIGITS_MAX} "
            "ASCII digits")
    kind, issuer = entry
    try:
        card_kind = CardKind(kind)
    except ValueError:
        raise ValidationError(f"BIN {prefix}: unknown card kind {kind!r}") from None
    if not isinstance(issuer, str) or not issuer.strip():
        raise ValidationError(f"BIN {prefix}: issuer name is blank")
    return prefix, BinEntry(card_kind, issuer.strip())


class BinTable(Mapping[str, BinEntry]):
    """An immutable map from BIN prefix (6–8 digits) to :class:`BinEntry`.

    :meth:`lookup` picks the longest matching prefix. :meth:`extended` returns a new table;
    no table is ever changed in place, so :data:`DEFAULT_BIN_TABLE` stays as shipped.
    """

    __slots__ = ("_entries", "_lengths")

    def __init__(self, entries: Mapping[str, tuple[CardKind | str, str]] | None = None) -> None:
        checked = dict(_checked_entry(p, e) for p, e in (entries or {}).items())
        self._entries: Mapping[str, BinEntry] = MappingProxyType(checked)
        self._lengths = sorted({len(prefix) for prefix in checked}, reverse=True)

    def __getitem__(self, prefix: str) -> BinEntry:
        return self._entries[prefix]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"BinTable({len(self)} entries)"

    def lookup(self, pan: str) -> BinEntry | None:
        """The entry for the longest prefix of ``pan`` in the table, or None."""
        digits = _normalise(pan)
        for length in self._lengths:  # the prefix lengths in the table, longest first
            if entry := self._entries.get(digits[:length]):
                return entry
        return None

    def extended(self, entries: Mapping[str, tuple[CardKind | str, str]]) -> BinTable:
        """A new table with ``entries`` added; an entry for an existing prefix replaces it."""
        return BinTable({**self._entries, **entries})


DEFAULT_BIN_TABLE = BinTable({
    # A few well-known domestic BINs so that a fresh install classifies common cards. The
    # operator extends this with the scheme's BIN file; it is not meant to be complete.
    "622202": (CardKind.DEBIT, "Industrial and Commercial Bank of China"),
    "622848": (CardKind.DEBIT, "Agricultural Bank of China"),
    "621700": (CardKind.DEBIT, "China Construction Bank"),
    "622588": (CardKind.DEBIT, "China Merchants Bank"),
    "625802": (CardKind.CREDIT, "China Merchants Bank"),
    "628262": (CardKind.CREDIT, "China Merchants Bank"),
    "628258": (CardKind.CREDIT, "China Minsheng Bank"),
})
"""The built-in BIN table; see :meth:`BinTable.extended`."""


def kind_of(pan: str, table: BinTable = DEFAULT_BIN_TABLE) -> CardKind:
    """The kind of card, for fee schedules.

    A BIN entry wins (longest prefix). Without one, a card that is not UnionPay is
    ``FOREIGN``, and a UnionPay card is ``OTHER`` — deliberately not ``DEBIT``, so that an
    unknown domestic card never silently gets the (usually lower, capped) debit rate; the
    operator adds the BIN to the table instead.
    """
    entry = table.lookup(pan)
    if entry is not None:
        return entry.kind
    if brand_of(pan) is not CardBrand.UNIONPAY:
        return CardKind.FOREIGN
    return CardKind.OTHER


# -- expiry ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Expiry:
    """A card's expiry month; the card is valid through the last day of that month."""

    year: int
    month: int

    def __post_init__(self) -> None:
        for value in (self.year, self.month):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValidationError("expiry year and month must be integers",
                                      ErrorCode.INVALID_EXPIRY)
        if not 1 <= self.month <= 12 or not 2000 <= self.year <= 2099:
            raise ValidationError("expiry month must be 01–12 and year 2000–2099",
                                  ErrorCode.INVALID_EXPIRY)

    @classmethod
    def parse(cls, yymm: str) -> Expiry:
        """Parse ``YYMM`` (ISO 8583 field 14): year ``20YY``, month 01–12.

        >>> Expiry.parse("2612")
        Expiry(year=2026, month=12)
        """
        if not isinstance(yymm, str) or len(yymm) != 4 or not _is_digits(yymm):
            raise ValidationError("expiry must be 4 digits YYMM", ErrorCode.INVALID_EXPIRY)
        return cls(2000 + int(yymm[:2]), int(yymm[2:]))

    @property
    def last_valid_day(self) -> date:
        """The last day on which the card may be used."""
        return date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    def is_expired_on(self, d: date) -> bool:
        """True if the card has expired on ``d`` (the transaction date, never the clock)."""
        return (d.year, d.month) > (self.year, self.month)


def check_expiry(yymm: str, on: date) -> Expiry:
    """Parse ``yymm`` and raise ``CARD_EXPIRED`` if the card has expired on ``on``."""
    expiry = Expiry.parse(yymm)
    if expiry.is_expired_on(on):
        raise ValidationError("card has expired", ErrorCode.CARD_EXPIRED)
    return expiry


# -- tokenization ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CardRef:
    """Everything autosettle stores about a card: a keyed token and display-safe parts."""

    token: str
    masked: str
    brand: CardBrand
    kind: CardKind
    last4: str
    bin6: str


class PanTokenizer:
    """Turns a PAN into a stable, unreadable token: hex HMAC-SHA256 under a secret key.

    The same PAN under the same key always gives the same token, so tokens can be joined
    and de-duplicated; without the key a token cannot be linked back to a PAN. The key
    comes from configuration, is at least 16 bytes, and never appears in ``repr``.
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes | bytearray):
            raise ValidationError("tokenizer key must be bytes")
        if len(key) < TOKEN_KEY_BYTES_MIN:
            raise ValidationError(f"tokenizer key must be at least {TOKEN_KEY_BYTES_MIN} bytes")
        self._key = bytes(key)

    def __repr__(self) -> str:
        return "PanTokenizer(key=<redacted>)"

    def token(self, pan: str) -> str:
        """The token of a valid PAN (64 lowercase hex characters)."""
        digits = validate_pan(pan)
        return hmac.new(self._key, digits.encode(), hashlib.sha256).hexdigest()

    def describe(self, pan: str, bin_table: BinTable = DEFAULT_BIN_TABLE) -> CardRef:
        """The :class:`CardRef` of a valid PAN: the only form in which a card is stored."""
        digits = validate_pan(pan)
        return CardRef(
            token=self.token(digits),
            masked=mask_pan(digits),
            brand=brand_of(digits),
            kind=kind_of(digits, bin_table),
            last4=digits[-MASK_SHOW_LAST_DIGITS:],
            bin6=digits[:MASK_SHOW_FIRST_DIGITS],
        )
