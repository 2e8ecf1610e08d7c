"""Cards: PAN validation, expiry, masking, brands, BIN table, tokenization (PCI DSS 3.3–3.5).

Every PAN here is a published scheme test number or a synthetic one (zeros plus a Luhn
check digit), never a real card.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autosettle.domain.cards import (
    DEFAULT_BIN_TABLE,
    BinEntry,
    BinTable,
    CardBrand,
    CardKind,
    CardRef,
    Expiry,
    PanTokenizer,
    brand_of,
    check_expiry,
    kind_of,
    luhn_check_digit,
    luhn_ok,
    mask_pan,
    validate_pan,
)
from autosettle.domain.errors import ErrorCode, ValidationError

VISA_TEST = "4111111111111111"
MASTERCARD_TEST = "5555555555554444"
AMEX_TEST = "378282246310005"
JCB_TEST = "3530111333300000"
UNIONPAY_TEST = "6200000000000005"
KEY = b"test-key-0123456789abcdef"


def make_pan(prefix: str, length: int = 16) -> str:
    """A synthetic, Luhn-valid PAN: prefix, zeros, check digit."""
    body = prefix.ljust(length - 1, "0")
    return body + luhn_check_digit(body)


digit_strings = st.text(alphabet="0123456789", min_size=1, max_size=30)
valid_pans = st.builds(
    lambda body: body + luhn_check_digit(body),
    st.text(alphabet="0123456789", min_size=12, max_size=18),
)


# -- Luhn and validation ------------------------------------------------------------------
@pytest.mark.parametrize(
    "pan",
    [VISA_TEST, MASTERCARD_TEST, AMEX_TEST, JCB_TEST, UNIONPAY_TEST, "4222222222222",
     make_pan("622202", 19), make_pan("81", 16)],
)
def test_known_test_pans_are_valid(pan: str) -> None:
    assert luhn_ok(pan)
    assert validate_pan(pan) == pan


def test_luhn_check_digit_matches_published_test_numbers() -> None:
    assert luhn_check_digit(VISA_TEST[:-1]) == VISA_TEST[-1]
    assert luhn_check_digit(AMEX_TEST[:-1]) == AMEX_TEST[-1]
    assert luhn_check_digit("7992739871") == "3"


def test_spaces_are_stripped() -> None:
    assert validate_pan("4111 1111 1111 1111") == VISA_TEST
    assert validate_pan(" 3782 822463 10005 ") == AMEX_TEST


@given(digit_strings)
def test_check_digit_makes_valid_and_any_other_digit_invalid(partial: str) -> None:
    check = luhn_check_digit(partial)
    assert luhn_ok(partial + check)
    for other in "0123456789":
        if other != check:
            assert not luhn_ok(partial + other)


@pytest.mark.parametrize("bad", ["", "abc", "4111-1111", "１２３", "١٢٣", " 42"])
def test_luhn_ok_false_for_non_digits(bad: str) -> None:
    assert not luhn_ok(bad)


def test_luhn_check_digit_refuses_non_digits() -> None:
    with pytest.raises(ValidationError) as excinfo:
        luhn_check_digit("41x1")
    assert excinfo.value.code is ErrorCode.INVALID_PAN


INVALID_PANS = [
    "4111111111111112",  # Luhn fails
    make_pan("4", 12),  # Luhn-valid but 12 digits
    make_pan("4", 20),  # Luhn-valid but 20 digits
    "4111-1111-1111-1111",
    "4111x11111111111",
    "４１１１１１１１１１１１１１１１",  # full-width digits
    "٤١١١١١١١١١١١١١١١",  # Arabic-Indic digits
    "411111111111111\n",
    "",
    "   ",
]


@pytest.mark.parametrize("pan", INVALID_PANS)
def test_invalid_pans_refused_without_echoing_them(pan: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_pan(pan)
    error = excinfo.value
    assert error.code is ErrorCode.INVALID_PAN
    stripped = pan.replace(" ", "")
    for text in (str(error), repr(error), error.message):
        if stripped:
            assert stripped not in text
            assert stripped[-8:] not in text
    assert error.__cause__ is None


def test_non_string_pan_refused() -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_pan(4111111111111111)  # type: ignore[arg-type]
    assert excinfo.value.code is ErrorCode.INVALID_PAN
    assert "4111111111111111" not in str(excinfo.value)


@given(st.text(alphabet="0123456789 x-", min_size=6, max_size=25))
def test_validate_pan_never_echoes_input(pan: str) -> None:
    digits = pan.replace(" ", "")
    if 13 <= len(digits) <= 19 and digits.isdigit() and luhn_ok(digits):
        assert validate_pan(pan) == digits
        return
    with pytest.raises(ValidationError) as excinfo:
        validate_pan(pan)
    assert excinfo.value.code is ErrorCode.INVALID_PAN
    if len(digits) >= 6:
        assert digits not in excinfo.value.message


# -- expiry -------------------------------------------------------------------------------
def test_parse_expiry() -> None:
    assert Expiry.parse("2902") == Expiry(2029, 2)
    assert Expiry.parse("0001") == Expiry(2000, 1)
    assert Expiry.parse("9912") == Expiry(2099, 12)


@pytest.mark.parametrize("bad", ["2913", "2900", "291", "29021", "", "ab12", "29 2", "２９０２",
                                 "-102", "+102"])
def test_parse_expiry_refuses(bad: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        Expiry.parse(bad)
    assert excinfo.value.code is ErrorCode.INVALID_EXPIRY


@pytest.mark.parametrize(("year", "month"), [(2029, 0), (2029, 13), (1999, 12), (2100, 1)])
def test_expiry_constructor_validates(year: int, month: int) -> None:
    with pytest.raises(ValidationError) as excinfo:
        Expiry(year, month)
    assert excinfo.value.code is ErrorCode.INVALID_EXPIRY


@pytest.mark.parametrize(
    ("yymm", "on", "expired"),
    [
        ("2402", date(2024, 2, 29), False),  # leap day: last day of the month
        ("2402", date(2024, 3, 1), True),
        ("2302", date(2023, 2, 28), False),
        ("2302", date(2023, 3, 1), True),
        ("2512", date(2025, 12, 31), False),  # year boundary
        ("2512", date(2026, 1, 1), True),
        ("2601", date(2025, 12, 31), False),
        ("2604", date(2026, 4, 1), False),
        ("2604", date(2026, 4, 30), False),
        ("2604", date(2026, 5, 1), True),
        ("2604", date(2031, 1, 1), True),
    ],
)
def test_expired_relative_to_given_date(yymm: str, on: date, expired: bool) -> None:
    assert Expiry.parse(yymm).is_expired_on(on) is expired
    if expired:
        with pytest.raises(ValidationError) as excinfo:
            check_expiry(yymm, on)
        assert excinfo.value.code is ErrorCode.CARD_EXPIRED
    else:
        assert check_expiry(yymm, on) == Expiry.parse(yymm)


def test_last_valid_day() -> None:
    assert Expiry(2024, 2).last_valid_day == date(2024, 2, 29)
    assert Expiry(2099, 12).last_valid_day == date(2099, 12, 31)


@given(
    st.builds(Expiry, st.integers(min_value=2000, max_value=2099),
              st.integers(min_value=1, max_value=12)),
    st.dates(min_value=date(1999, 1, 1), max_value=date(2100, 12, 31)),
)
def test_expired_exactly_after_last_valid_day(expiry: Expiry, on: date) -> None:
    assert expiry.is_expired_on(on) is (on > expiry.last_valid_day)
    assert expiry.is_expired_on(expiry.last_valid_day + timedelta(days=1))
    assert not expiry.is_expired_on(expiry.last_valid_day)


def test_check_expiry_invalid_format_is_not_card_expired() -> None:
    with pytest.raises(ValidationError) as excinfo:
        check_expiry("2613", date(2026, 1, 1))
    assert excinfo.value.code is ErrorCode.INVALID_EXPIRY


# -- masking ------------------------------------------------------------------------------
def test_mask_examples() -> None:
    assert mask_pan(make_pan("622202", 19)).startswith("622202*********")
    assert mask_pan(VISA_TEST) == "411111******1111"
    assert mask_pan(AMEX_TEST) == "378282*****0005"
    assert mask_pan("4222222222222") == "422222***2222"
    assert mask_pan("4111 1111 1111 1111") == "411111******1111"


@given(valid_pans)
def test_mask_reveals_at_most_bin_and_last4(pan: str) -> None:
    masked = mask_pan(pan)
    assert len(masked) == len(pan)
    assert masked[:6] == pan[:6]
    assert masked[-4:] == pan[-4:]
    assert set(masked[6:-4]) == {"*"}
    assert sum(ch.isdigit() for ch in masked) == 10
    assert masked != pan


@given(st.text(max_size=30))
def test_mask_never_raises_and_never_reveals_more(text: str) -> None:
    masked = mask_pan(text)
    assert len(masked) == len(text.replace(" ", ""))
    assert sum(ch != "*" for ch in masked) <= 10
    if len(masked) < 13:
        assert set(masked) <= {"*"}


@pytest.mark.parametrize("text", ["411111111111", "4111-1111-1111-1111", "4111x11111111111"])
def test_mask_hides_everything_that_is_not_a_long_digit_string(text: str) -> None:
    assert mask_pan(text) == "*" * len(text)


# -- brands -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("prefix", "brand"),
    [
        ("2220", CardBrand.UNKNOWN),
        ("2221", CardBrand.MASTERCARD),
        ("2720", CardBrand.MASTERCARD),
        ("2721", CardBrand.UNKNOWN),
        ("3527", CardBrand.UNKNOWN),
        ("3528", CardBrand.JCB),
        ("3589", CardBrand.JCB),
        ("3590", CardBrand.UNKNOWN),
        ("34", CardBrand.AMEX),
        ("37", CardBrand.AMEX),
        ("36", CardBrand.UNKNOWN),
        ("50", CardBrand.UNKNOWN),
        ("51", CardBrand.MASTERCARD),
        ("55", CardBrand.MASTERCARD),
        ("56", CardBrand.UNKNOWN),
        ("4", CardBrand.VISA),
        ("62", CardBrand.UNIONPAY),
        ("81", CardBrand.UNIONPAY),
        ("80", CardBrand.UNKNOWN),
        ("6011", CardBrand.UNKNOWN),
        ("9", CardBrand.UNKNOWN),
    ],
)
def test_brand_of_full_pans(prefix: str, brand: CardBrand) -> None:
    assert brand_of(make_pan(prefix)) is brand


@pytest.mark.parametrize(
    ("pan", "brand"),
    [(VISA_TEST, CardBrand.VISA), (MASTERCARD_TEST, CardBrand.MASTERCARD),
     (AMEX_TEST, CardBrand.AMEX), (JCB_TEST, CardBrand.JCB),
     (UNIONPAY_TEST, CardBrand.UNIONPAY), ("2223003122003222", CardBrand.MASTERCARD)],
)
def test_brand_of_scheme_test_cards(pan: str, brand: CardBrand) -> None:
    assert brand_of(pan) is brand


def test_brand_of_short_prefix_does_not_guess_ranges() -> None:
    assert brand_of("35") is CardBrand.UNKNOWN
    assert brand_of("22") is CardBrand.UNKNOWN
    assert brand_of("5") is CardBrand.UNKNOWN


def test_brand_of_refuses_non_digits() -> None:
    with pytest.raises(ValidationError) as excinfo:
        brand_of("41x1")
    assert excinfo.value.code is ErrorCode.INVALID_PAN


# -- BIN table ----------------------------------------------------------------------------
def test_default_table_classifies_known_bins() -> None:
    assert kind_of(make_pan("622202", 19)) is CardKind.DEBIT
    assert kind_of(make_pan("622848", 19)) is CardKind.DEBIT
    assert kind_of(make_pan("621700", 19)) is CardKind.DEBIT
    assert kind_of(make_pan("622588")) is CardKind.DEBIT
    assert kind_of(make_pan("625802")) is CardKind.CREDIT
    assert kind_of(make_pan("628262")) is CardKind.CREDIT
    entry = DEFAULT_BIN_TABLE.lookup(make_pan("622202", 19))
    assert entry == BinEntry(CardKind.DEBIT, "Industrial and Commercial Bank of China")


def test_kind_of_without_entry() -> None:
    assert kind_of(UNIONPAY_TEST) is CardKind.OTHER
    assert kind_of(make_pan("81")) is CardKind.OTHER
    for foreign in (VISA_TEST, MASTERCARD_TEST, AMEX_TEST, JCB_TEST, make_pan("9")):
        assert kind_of(foreign) is CardKind.FOREIGN


def test_longest_prefix_wins() -> None:
    table = DEFAULT_BIN_TABLE.extended({
        "6222029": (CardKind.CREDIT, "Test Issuer Seven"),
        "62220299": (CardKind.OTHER, "Test Issuer Eight"),
    })
    assert table.lookup(make_pan("62220200")) == BinEntry(
        CardKind.DEBIT, "Industrial and Commercial Bank of China")
    assert table.lookup(make_pan("62220290")) == BinEntry(CardKind.CREDIT, "Test Issuer Seven")
    assert table.lookup(make_pan("62220299")) == BinEntry(CardKind.OTHER, "Test Issuer Eight")
    assert kind_of(make_pan("62220290"), table) is CardKind.CREDIT


def test_extension_does_not_mutate_default() -> None:
    before = dict(DEFAULT_BIN_TABLE)
    table = DEFAULT_BIN_TABLE.extended({"411111": ("credit", "Test Visa Domestic"),
                                        "622202": (CardKind.CREDIT, "Replaced")})
    assert dict(DEFAULT_BIN_TABLE) == before
    assert "411111" not in DEFAULT_BIN_TABLE
    assert table["411111"] == BinEntry(CardKind.CREDIT, "Test Visa Domestic")
    assert table["622202"].kind is CardKind.CREDIT  # a later entry replaces an earlier one
    assert DEFAULT_BIN_TABLE["622202"].kind is CardKind.DEBIT
    assert kind_of(VISA_TEST, table) is CardKind.CREDIT
    assert kind_of(VISA_TEST) is CardKind.FOREIGN
    assert len(table) == len(DEFAULT_BIN_TABLE) + 1


def test_table_is_immutable() -> None:
    with pytest.raises(TypeError):
        DEFAULT_BIN_TABLE["999999"] = BinEntry(CardKind.DEBIT, "x")  # type: ignore[index]
    with pytest.raises(AttributeError):
        DEFAULT_BIN_TABLE.extra = 1  # type: ignore[attr-defined]


def test_table_copies_its_input() -> None:
    source: dict[str, tuple[CardKind | str, str]] = {"123456": (CardKind.DEBIT, "Test Bank")}
    table = BinTable(source)
    source["654321"] = (CardKind.DEBIT, "Late Bank")
    assert "654321" not in table
    assert len(BinTable()) == 0


@pytest.mark.parametrize(
    ("prefix", "entry"),
    [("62220", (CardKind.DEBIT, "x")), ("622020001", (CardKind.DEBIT, "x")),
     ("62a202", (CardKind.DEBIT, "x")), ("６２２２０２", (CardKind.DEBIT, "x")),
     ("622202", ("gold", "x")), ("622202", (CardKind.DEBIT, "  "))],
)
def test_bad_entries_refused(prefix: str, entry: tuple[CardKind | str, str]) -> None:
    with pytest.raises(ValidationError) as excinfo:
        DEFAULT_BIN_TABLE.extended({prefix: entry})
    assert excinfo.value.code is ErrorCode.VALIDATION_FAILED


# -- tokenization -------------------------------------------------------------------------
def test_token_is_hmac_sha256_of_the_pan() -> None:
    expected = hmac.new(KEY, VISA_TEST.encode(), hashlib.sha256).hexdigest()
    assert PanTokenizer(KEY).token(VISA_TEST) == expected
    assert PanTokenizer(KEY).token("4111 1111 1111 1111") == expected


@given(valid_pans)
def test_token_deterministic_per_key_and_hides_pan(pan: str) -> None:
    first, second = PanTokenizer(KEY), PanTokenizer(bytes(KEY))
    other = PanTokenizer(b"another-test-key-0123456789")
    token = first.token(pan)
    assert token == second.token(pan)
    assert token != other.token(pan)
    assert len(token) == 64
    assert all(ch in "0123456789abcdef" for ch in token)
    assert pan not in token


def test_different_pans_get_different_tokens() -> None:
    tokenizer = PanTokenizer(KEY)
    assert tokenizer.token(VISA_TEST) != tokenizer.token(MASTERCARD_TEST)


def test_repr_hides_key() -> None:
    tokenizer = PanTokenizer(KEY)
    for text in (repr(tokenizer), str(tokenizer)):
        assert KEY.decode() not in text
        assert KEY.hex() not in text
        assert "redacted" in text
    assert not hasattr(tokenizer, "__dict__")


@pytest.mark.parametrize("key", [b"", b"short", b"x" * 15, "a-str-key-not-bytes!"])
def test_weak_or_wrong_keys_refused(key: object) -> None:
    with pytest.raises(ValidationError) as excinfo:
        PanTokenizer(key)  # type: ignore[arg-type]
    assert excinfo.value.code is ErrorCode.VALIDATION_FAILED


def test_token_refuses_invalid_pan() -> None:
    with pytest.raises(ValidationError) as excinfo:
        PanTokenizer(KEY).token("4111111111111112")
    assert excinfo.value.code is ErrorCode.INVALID_PAN


def test_describe_returns_only_safe_parts() -> None:
    pan = make_pan("62220212345678", 19)
    ref = PanTokenizer(KEY).describe(pan)
    assert ref == CardRef(
        token=PanTokenizer(KEY).token(pan),
        masked=mask_pan(pan),
        brand=CardBrand.UNIONPAY,
        kind=CardKind.DEBIT,
        last4=pan[-4:],
        bin6="622202",
    )
    assert pan not in repr(ref)
    assert pan[6:-4] not in repr(ref).replace(ref.token, "")


def test_describe_uses_the_given_table() -> None:
    table = DEFAULT_BIN_TABLE.extended({"41111111": (CardKind.DEBIT, "Test Issuer")})
    ref = PanTokenizer(KEY).describe("4111 1111 1111 1111", table)
    assert (ref.brand, ref.kind, ref.masked) == (CardBrand.VISA, CardKind.DEBIT,
                                                 "411111******1111")
    assert PanTokenizer(KEY).describe(VISA_TEST).kind is CardKind.FOREIGN
