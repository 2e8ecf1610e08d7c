"""Merchants, their settlement accounts and their terminals, as validated values.

Identifiers follow China UnionPay terminals: a merchant id is 15 characters (field 42), a
terminal id 8 (field 41). Only ASCII letters and digits are accepted so that ids travel
unchanged through ISO 8583, files and URLs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from autosettle.domain.errors import ValidationError

MERCHANT_ID_LENGTH = 15
TERMINAL_ID_LENGTH = 8
LEGAL_NAME_LENGTH_MAX = 200
SHORT_NAME_LENGTH_MAX = 60
HOLDER_NAME_LENGTH_MAX = 200
BANK_NAME_LENGTH_MAX = 100
SERIAL_LENGTH_MAX = 40
ACCOUNT_NUMBER_DIGITS_MIN = 8
ACCOUNT_NUMBER_DIGITS_MAX = 32

_ID = re.compile(r"^[A-Za-z0-9]+$")
_MCC = re.compile(r"^[0-9]{4}$")
_ACCOUNT_NUMBER = re.compile(r"^\d+$")


class MerchantType(StrEnum):
    """Acquirer classification (企业 / 个体户 / 小微)."""

    ENTERPRISE = "enterprise"
    INDIVIDUAL = "individual"
    MICRO = "micro"


class MerchantStatus(StrEnum):
    ACTIVE = "active"
    UNDER_REVIEW = "under_review"
    SUSPENDED = "suspended"
    CLOSED = "closed"


class TerminalStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    RETIRED = "retired"


class AccountType(StrEnum):
    """Settlement account kind: corporate (对公) or personal (对私)."""

    CORPORATE = "corporate"
    PERSONAL = "personal"


class CycleCode(StrEnum):
    """The settlement cycles a merchant can choose."""

    T0 = "T0"
    T1 = "T1"
    D0 = "D0"
    D1 = "D1"


@dataclass(frozen=True, slots=True)
class Merchant:
    merchant_id: str
    legal_name: str
    short_name: str
    merchant_type: MerchantType
    mcc: str
    status: MerchantStatus
    settlement_cycle: CycleCode
    single_limit_minor: int | None
    currency: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SettlementAccount:
    merchant_id: str
    account_id: str
    bank_name: str
    bank_code: str | None
    account_number_masked: str
    holder_name: str
    account_type: AccountType
    verified: bool
    status: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Terminal:
    merchant_id: str
    terminal_id: str
    serial_no: str
    model: str
    status: TerminalStatus
    created_at: datetime
    updated_at: datetime


def check_merchant_id(value: str) -> str:
    """A 15-character alphanumeric merchant id (CUP field 42)."""
    return _check_id(value, MERCHANT_ID_LENGTH, "merchant id")


def check_terminal_id(value: str) -> str:
    """An 8-character alphanumeric terminal id (CUP field 41)."""
    return _check_id(value, TERMINAL_ID_LENGTH, "terminal id")


def _check_id(value: str, length: int, what: str) -> str:
    if not isinstance(value, str) or len(value) != length or not _ID.match(value) \
            or not value.isascii():
        raise ValidationError(f"{what} must be {length} ASCII letters or digits")
    return value


def check_name(value: str, what: str, length_max: int) -> str:
    """A non-blank printable name of at most ``length_max`` characters, trimmed."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{what} must not be blank")
    value = value.strip()
    if len(value) > length_max:
        raise ValidationError(f"{what} is longer than {length_max} characters")
    if not value.isprintable():
        raise ValidationError(f"{what} contains control characters")
    return value


def check_mcc(value: str) -> str:
    """A 4-digit ISO 18245 merchant category code."""
    if not isinstance(value, str) or not _MCC.match(value):
        raise ValidationError("mcc must be 4 digits")
    return value


def check_account_number(value: str) -> str:
    """A bank account number: 8-32 digits, spaces ignored."""
    digits = value.replace(" ", "") if isinstance(value, str) else None
    if digits is None or not _ACCOUNT_NUMBER.match(digits) or not digits.isascii() or not (
        ACCOUNT_NUMBER_DIGITS_MIN <= len(digits) <= ACCOUNT_NUMBER_DIGITS_MAX
    ):
        raise ValidationError(
            f"account number must be {ACCOUNT_NUMBER_DIGITS_MIN}-{ACCOUNT_NUMBER_DIGITS_MAX} "
            "digits")
    return digits


def mask_account_number(digits: str) -> str:
    """Show the last 4 digits only: ``************1234``."""
    return "*" * (len(digits) - 4) + digits[-4:]


def holder_name_matches(holder_name: str, legal_name: str) -> bool:
    """一清: the settlement account must be in the merchant's own name.

    Names are compared after removing white space and full-width/half-width parentheses,
    which bank records write either way.
    """
    return _name_key(holder_name) == _name_key(legal_name)


def _name_key(name: str) -> str:
    table = str.maketrans({"（": "(", "）": ")"})
    return "".join(name.translate(table).split()).casefold()
