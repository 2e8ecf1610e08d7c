"""The layouts of the private and composite fields: 60 (transaction type, batch, network
management code), 61 (original transaction), 48 of a batch close (settlement totals) and of a
batch upload (0320), and 54 (balance amount).

Each layout is a frozen value with ``build_*`` (value to field text) and ``parse_*`` (field
text to value); a malformed field is a
:class:`~autosettle.domain.iso8583.message.MessageFormatError` naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from autosettle.domain.iso8583.message import (
    MessageFormatError,
    check_digits,
    check_range,
    is_digits,
)

# --------------------------------------------------------------------------- field 60


class TransactionType(StrEnum):
    """Field 60.1: the transaction type code."""

    NETWORK_MANAGEMENT = "00"
    BALANCE_INQUIRY = "01"
    PRE_AUTH = "10"
    PRE_AUTH_VOID = "11"
    COMPLETION = "20"
    COMPLETION_VOID = "21"
    SALE = "22"
    VOID = "23"
    REFUND = "25"


class NetworkManagementCode(StrEnum):
    """Field 60.3 codes every source agrees on (end of batch upload is 202 or 207)."""

    FINANCIAL = "000"
    SIGN_ON_SINGLE_LENGTH = "001"
    SIGN_OFF = "002"
    SIGN_ON_DOUBLE_LENGTH = "003"
    SIGN_ON_DOUBLE_LENGTH_WITH_TDK = "004"
    SETTLEMENT = "201"
    IC_ADVICE_UPLOAD = "203"
    ECHO = "301"


FIELD60_DIGITS_MIN: Final = 11
FIELD60_DIGITS_MAX: Final = 19
BATCH_NO_MAX: Final = 999_999
TRACE_MAX: Final = 999_999


@dataclass(frozen=True, slots=True)
class Field60:
    """Field 60: 60.1 type (2), 60.2 batch (6), 60.3 network management code (3), then
    optionally 60.4 (1, terminal read capability) and 60.5 (1, IC condition code), then
    any further sub-fields kept verbatim in ``extension``."""

    txn_type: str
    batch_no: int
    network_mgmt_code: str
    read_capability: str | None = None
    ic_condition: str | None = None
    extension: str = ""

    def __post_init__(self) -> None:
        check_digits("60", "60.1", self.txn_type, 2)
        check_range("60", "60.2 batch number", self.batch_no, BATCH_NO_MAX)
        check_digits("60", "60.3", self.network_mgmt_code, 3)
        if self.read_capability is not None:
            check_digits("60", "60.4", self.read_capability, 1)
        if self.ic_condition is not None:
            check_digits("60", "60.5", self.ic_condition, 1)
            if self.read_capability is None:
                raise MessageFormatError("60.5 needs 60.4", field="60")
        if self.extension:
            if self.ic_condition is None:
                raise MessageFormatError("sub-fields after 60.5 need 60.4 and 60.5", field="60")
            if not is_digits(self.extension) or len(build_field60(self)) > FIELD60_DIGITS_MAX:
                raise MessageFormatError("extension must be digits within n..19", field="60")


def build_field60(value: Field60) -> str:
    """Field 60 as its digit string.

    >>> build_field60(Field60(TransactionType.SALE, 1, "000", "6", "0"))
    '2200000100060'
    """
    return (
        f"{value.txn_type}{value.batch_no:06d}{value.network_mgmt_code}"
        f"{value.read_capability or ''}{value.ic_condition or ''}{value.extension}"
    )


def parse_field60(value: str) -> Field60:
    """Parse field 60 (11 to 19 digits)."""
    if not (FIELD60_DIGITS_MIN <= len(value) <= FIELD60_DIGITS_MAX and is_digits(value)):
        raise MessageFormatError(
            f"must be {FIELD60_DIGITS_MIN} to {FIELD60_DIGITS_MAX} digits", field="60"
        )
    return Field60(
        txn_type=value[0:2],
        batch_no=int(value[2:8]),
        network_mgmt_code=value[8:11],
        read_capability=value[11:12] or None,
        ic_condition=value[12:13] or None,
        extension=value[13:],
    )


# --------------------------------------------------------------------------- field 61

FIELD61_DIGITS_SHORT: Final = 12
FIELD61_DIGITS_WITH_DATE: Final = 16
FIELD61_DIGITS_MAX: Final = 29


@dataclass(frozen=True, slots=True)
class Field61:
    """Field 61, original message: batch (6), trace (6), optional date MMDD (4), rest."""

    batch_no: int
    trace: int
    date_mmdd: str | None = None
    extension: str = ""

    def __post_init__(self) -> None:
        check_range("61", "61.1 original batch", self.batch_no, BATCH_NO_MAX)
        check_range("61", "61.2 original trace", self.trace, TRACE_MAX)
        if self.date_mmdd is not None:
            check_digits("61", "61.3 original date", self.date_mmdd, 4)
        if self.extension:
            if self.date_mmdd is None:
                raise MessageFormatError("sub-fields after 61.3 need 61.3", field="61")
            too_long = FIELD61_DIGITS_WITH_DATE + len(self.extension) > FIELD61_DIGITS_MAX
            if not is_digits(self.extension) or too_long:
                raise MessageFormatError("extension must be digits within n...29", field="61")


def build_field61(value: Field61) -> str:
    """Field 61 as its digit string.

    >>> build_field61(Field61(batch_no=1, trace=123, date_mmdd="0412"))
    '0000010001230412'
    """
    return f"{value.batch_no:06d}{value.trace:06d}{value.date_mmdd or ''}{value.extension}"


def parse_field61(value: str) -> Field61:
    """Parse field 61 (12 digits, or 16 to 29 digits with the original date)."""
    fits = len(value) == FIELD61_DIGITS_SHORT or (
        FIELD61_DIGITS_WITH_DATE <= len(value) <= FIELD61_DIGITS_MAX
    )
    if not (fits and is_digits(value)):
        raise MessageFormatError("must be 12 digits, or 16 to 29 with the date", field="61")
    return Field61(
        batch_no=int(value[0:6]),
        trace=int(value[6:12]),
        date_mmdd=value[12:16] or None,
        extension=value[16:],
    )


# --------------------------------------------------------------------------- field 48

AMOUNT_MINOR_MAX: Final = 10**12 - 1
"""n12 amounts in fen."""
SETTLEMENT_COUNT_MAX: Final = 999
SETTLEMENT_BLOCK_DIGITS: Final = 12 + 3 + 12 + 3 + 1
SETTLEMENT_FIELD_DIGITS: Final = 2 * SETTLEMENT_BLOCK_DIGITS


class ReconciliationCode(StrEnum):
    """The last digit of each settlement block: ``0`` in requests, the verdict in answers."""

    REQUEST = "0"
    BALANCED = "1"
    NOT_BALANCED = "2"
    ERROR = "3"


_RECONCILIATION_CODES: Final = frozenset(code.value for code in ReconciliationCode)


@dataclass(frozen=True, slots=True)
class CardTotals:
    """One settlement block (domestic or foreign cards) of field 48."""

    debit_amount_minor: int = 0
    debit_count: int = 0
    credit_amount_minor: int = 0
    credit_count: int = 0
    code: ReconciliationCode = ReconciliationCode.REQUEST

    def __post_init__(self) -> None:
        check_range("48", "debit amount", self.debit_amount_minor, AMOUNT_MINOR_MAX)
        check_range("48", "debit count", self.debit_count, SETTLEMENT_COUNT_MAX)
        check_range("48", "credit amount", self.credit_amount_minor, AMOUNT_MINOR_MAX)
        check_range("48", "credit count", self.credit_count, SETTLEMENT_COUNT_MAX)
        if not isinstance(self.code, ReconciliationCode):
            raise MessageFormatError("reconciliation code is not a known code", field="48")


@dataclass(frozen=True, slots=True)
class SettlementTotals:
    """Field 48 of 0500/0510: the domestic block, then the foreign block (62 digits)."""

    domestic: CardTotals
    foreign: CardTotals = CardTotals()


def build_settlement_totals(totals: SettlementTotals) -> str:
    """Field 48 of a settlement message as its digit string."""
    return "".join(
        f"{block.debit_amount_minor:012d}{block.debit_count:03d}"
        f"{block.credit_amount_minor:012d}{block.credit_count:03d}{block.code.value}"
        for block in (totals.domestic, totals.foreign)
    )


def parse_settlement_totals(value: str) -> SettlementTotals:
    """Parse field 48 of a settlement message (exactly 62 digits)."""
    if len(value) != SETTLEMENT_FIELD_DIGITS or not is_digits(value):
        raise MessageFormatError(
            f"settlement totals must be {SETTLEMENT_FIELD_DIGITS} digits", field="48"
        )
    blocks = [
        value[start : start + SETTLEMENT_BLOCK_DIGITS] for start in (0, SETTLEMENT_BLOCK_DIGITS)
    ]
    return SettlementTotals(*(_parse_card_totals(block) for block in blocks))


def _parse_card_totals(block: str) -> CardTotals:
    if block[30] not in _RECONCILIATION_CODES:
        raise MessageFormatError("reconciliation code is not a known code", field="48")
    return CardTotals(
        debit_amount_minor=int(block[0:12]),
        debit_count=int(block[12:15]),
        credit_amount_minor=int(block[15:27]),
        credit_count=int(block[27:30]),
        code=ReconciliationCode(block[30]),
    )


# --------------------------------------------------------------------------- 0320 field 48

BATCH_UPLOAD_ENTRIES_MAX: Final = 8
BATCH_UPLOAD_ENTRY_DIGITS: Final = 40
BATCH_UPLOAD_PAN_DIGITS: Final = 20
BATCH_UPLOAD_TOTAL_DIGITS: Final = 4
PAN_DIGITS_MIN: Final = 12
PAN_DIGITS_MAX: Final = 19


class CardOrganisation(StrEnum):
    """First two digits of a batch upload entry."""

    DOMESTIC = "00"
    FOREIGN = "01"


_CARD_ORGANISATIONS: Final = frozenset(org.value for org in CardOrganisation)


@dataclass(frozen=True, slots=True)
class BatchUploadEntry:
    """One 40-digit entry of a 0320 batch upload: org, trace, PAN (zero-padded), amount."""

    card_org: CardOrganisation
    trace: int
    pan: str = field(repr=False)
    amount_minor: int

    def __post_init__(self) -> None:
        if not isinstance(self.card_org, CardOrganisation):
            raise MessageFormatError("card organisation is not a known code", field="48")
        check_range("48", "trace", self.trace, TRACE_MAX)
        check_range("48", "amount", self.amount_minor, AMOUNT_MINOR_MAX)
        pan_ok = PAN_DIGITS_MIN <= len(self.pan) <= PAN_DIGITS_MAX and is_digits(self.pan)
        if not pan_ok or self.pan.startswith("0"):
            raise MessageFormatError("PAN must be 12 to 19 digits, not starting 0", field="48")

    @property
    def masked_pan(self) -> str:
        """BIN and last four digits only (PCI DSS 3.4.1)."""
        return self.pan[:6] + "*" * (len(self.pan) - 10) + self.pan[-4:]


def build_batch_upload(entries: Sequence[BatchUploadEntry]) -> str:
    """Field 48 of a 0320 batch upload: 2-digit count, then up to 8 entries of 40 digits."""
    if not 1 <= len(entries) <= BATCH_UPLOAD_ENTRIES_MAX:
        raise MessageFormatError(
            f"a batch upload carries 1 to {BATCH_UPLOAD_ENTRIES_MAX} entries", field="48"
        )
    return f"{len(entries):02d}" + "".join(
        f"{e.card_org.value}{e.trace:06d}{e.pan.zfill(BATCH_UPLOAD_PAN_DIGITS)}"
        f"{e.amount_minor:012d}"
        for e in entries
    )


def parse_batch_upload(value: str) -> tuple[BatchUploadEntry, ...]:
    """Parse field 48 of a 0320 batch upload into its entries."""
    if len(value) < 2 or not is_digits(value):
        raise MessageFormatError("batch upload must be digits with a 2-digit count", field="48")
    count = int(value[:2])
    if not 1 <= count <= BATCH_UPLOAD_ENTRIES_MAX:
        raise MessageFormatError(
            f"batch upload count must be 1 to {BATCH_UPLOAD_ENTRIES_MAX}", field="48"
        )
    if len(value) != 2 + count * BATCH_UPLOAD_ENTRY_DIGITS:
        raise MessageFormatError("batch upload length does not match its count", field="48")
    return tuple(_parse_entry(value, 2 + i * BATCH_UPLOAD_ENTRY_DIGITS) for i in range(count))


def _parse_entry(value: str, start: int) -> BatchUploadEntry:
    entry = value[start : start + BATCH_UPLOAD_ENTRY_DIGITS]
    if entry[0:2] not in _CARD_ORGANISATIONS:
        raise MessageFormatError("card organisation is not a known code", field="48")
    return BatchUploadEntry(
        card_org=CardOrganisation(entry[0:2]),
        trace=int(entry[2:8]),
        pan=entry[8:28].lstrip("0"),
        amount_minor=int(entry[28:40]),
    )


def build_batch_upload_end(total_count: int) -> str:
    """Field 48 of the last 0320: the total number of uploaded transactions (4 digits)."""
    check_range("48", "total count", total_count, 10**BATCH_UPLOAD_TOTAL_DIGITS - 1)
    return f"{total_count:0{BATCH_UPLOAD_TOTAL_DIGITS}d}"


def parse_batch_upload_end(value: str) -> int:
    """Parse field 48 of the last 0320 (4 digits)."""
    if len(value) != BATCH_UPLOAD_TOTAL_DIGITS or not is_digits(value):
        raise MessageFormatError("batch upload total must be 4 digits", field="48")
    return int(value)


# --------------------------------------------------------------------------- field 54

BALANCE_FIELD_SIZE: Final = 20
BALANCE_ACCOUNT_TYPE_DEFAULT: Final = "00"
BALANCE_AMOUNT_TYPE_AVAILABLE: Final = "02"
_BALANCE_SIGNS: Final = frozenset("CD")


@dataclass(frozen=True, slots=True)
class BalanceAmount:
    """Field 54 of a balance inquiry answer (an...020).

    Account type (2), amount type (2, ``02`` available balance), currency (3, numeric ISO
    4217), sign (``C`` credit balance, ``D`` debit/overdrawn) and the amount (12, minor
    units).

    >>> build_balance_amount(BalanceAmount(amount_minor=12345))
    '0002156C000000012345'
    >>> parse_balance_amount('0002156D000000000100').signed_minor
    -100
    """

    amount_minor: int
    currency_numeric: str = "156"
    negative: bool = False
    account_type: str = BALANCE_ACCOUNT_TYPE_DEFAULT
    amount_type: str = BALANCE_AMOUNT_TYPE_AVAILABLE

    def __post_init__(self) -> None:
        check_range("54", "balance", self.amount_minor, AMOUNT_MINOR_MAX)
        check_digits("54", "currency", self.currency_numeric, 3)
        check_digits("54", "account type", self.account_type, 2)
        check_digits("54", "amount type", self.amount_type, 2)

    @property
    def signed_minor(self) -> int:
        """The balance with its sign (negative when overdrawn)."""
        return -self.amount_minor if self.negative else self.amount_minor


def build_balance_amount(value: BalanceAmount) -> str:
    """Field 54 as its 20 characters."""
    sign = "D" if value.negative else "C"
    return (f"{value.account_type}{value.amount_type}{value.currency_numeric}{sign}"
            f"{value.amount_minor:012d}")


def parse_balance_amount(value: str) -> BalanceAmount:
    """Parse field 54 (exactly 20 characters)."""
    ok = (len(value) == BALANCE_FIELD_SIZE and value[7] in _BALANCE_SIGNS
          and is_digits(value[:7]) and is_digits(value[8:]))
    if not ok:
        raise MessageFormatError("balance must be 2+2+3 digits, C or D, 12 digits", field="54")
    return BalanceAmount(
        amount_minor=int(value[8:]),
        currency_numeric=value[4:7],
        negative=value[7] == "D",
        account_type=value[0:2],
        amount_type=value[2:4],
    )
