"""Request and response shapes (``XCreate`` in, ``XPublic`` out)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from autosettle.domain.merchants import (
    AccountType,
    CycleCode,
    Merchant,
    MerchantStatus,
    MerchantType,
    SettlementAccount,
    Terminal,
    TerminalStatus,
)
from autosettle.domain.money import AMOUNT_MINOR_MAX
from autosettle.services.context import Role

MERCHANT_ID_PATTERN = r"^[A-Za-z0-9]{15}$"
TERMINAL_ID_PATTERN = r"^[A-Za-z0-9]{8}$"
# Keyset cursors: the last merchant id, or "<merchant id>:<terminal id>" for terminals.
MERCHANT_CURSOR_PATTERN = r"^[A-Za-z0-9]{1,15}$"
TERMINAL_CURSOR_PATTERN = r"^[A-Za-z0-9]{0,15}:[A-Za-z0-9]{0,8}$"
MerchantId = Annotated[str, StringConstraints(pattern=MERCHANT_ID_PATTERN)]
TerminalId = Annotated[str, StringConstraints(pattern=TERMINAL_ID_PATTERN)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ShortName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                             max_length=60)]
# [0-9], not \d: \d would take full-width and other Unicode digits ("５４１１").
Mcc = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
LimitMinor = Annotated[int, Field(gt=0, le=AMOUNT_MINOR_MAX, strict=True)]
# One line of text: no control character (PostgreSQL cannot even store NUL).
SINGLE_LINE_PATTERN = r"^[^\x00-\x1f\x7f]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MerchantCreate(Strict):
    merchant_id: MerchantId
    legal_name: Name
    short_name: ShortName | None = None
    merchant_type: MerchantType
    mcc: Mcc
    settlement_cycle: CycleCode = CycleCode.T1
    # strict: "100", 100.0 and true are not amounts
    single_limit_minor: LimitMinor | None = None
    currency: CurrencyCode = "CNY"


class MerchantPublic(BaseModel):
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

    @classmethod
    def of(cls, m: Merchant) -> MerchantPublic:
        return cls(merchant_id=m.merchant_id, legal_name=m.legal_name, short_name=m.short_name,
                   merchant_type=m.merchant_type, mcc=m.mcc, status=m.status,
                   settlement_cycle=m.settlement_cycle, single_limit_minor=m.single_limit_minor,
                   currency=m.currency, created_at=m.created_at, updated_at=m.updated_at)


class MerchantStatusUpdate(Strict):
    status: MerchantStatus


class SettlementAccountCreate(Strict):
    bank_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                max_length=100)]
    bank_code: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z]{1,20}$")] | None = None
    account_number: Annotated[str, StringConstraints(pattern=r"^[0-9 ]{8,40}$")]
    holder_name: Name
    account_type: AccountType


class SettlementAccountPublic(BaseModel):
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

    @classmethod
    def of(cls, a: SettlementAccount) -> SettlementAccountPublic:
        return cls(merchant_id=a.merchant_id, account_id=a.account_id, bank_name=a.bank_name,
                   bank_code=a.bank_code, account_number_masked=a.account_number_masked,
                   holder_name=a.holder_name, account_type=a.account_type,
                   verified=a.verified, status=a.status, created_at=a.created_at)


class TerminalCreate(Strict):
    terminal_id: TerminalId
    serial_no: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                max_length=40)] | None = None
    model: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                            max_length=40)] = "generic"


class TerminalPublic(BaseModel):
    merchant_id: str
    terminal_id: str
    serial_no: str
    model: str
    status: TerminalStatus
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, t: Terminal) -> TerminalPublic:
        return cls(merchant_id=t.merchant_id, terminal_id=t.terminal_id, serial_no=t.serial_no,
                   model=t.model, status=t.status, created_at=t.created_at,
                   updated_at=t.updated_at)


class TerminalStatusUpdate(Strict):
    status: TerminalStatus


class MerchantPage(BaseModel):
    items: list[MerchantPublic]
    next_cursor: str | None


class TerminalPage(BaseModel):
    items: list[TerminalPublic]
    next_cursor: str | None


class BalancePublic(BaseModel):
    account: str
    account_type: str
    kind: str
    currency: str
    balance_minor: int
    balance: str


class BalancesPublic(BaseModel):
    merchant_id: str
    balances: list[BalancePublic]


class ApiKeyCreate(Strict):
    role: Role
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                           max_length=100, pattern=SINGLE_LINE_PATTERN)]
    merchant_id: MerchantId | None = None
    terminal_id: TerminalId | None = None


class ApiKeyIssued(BaseModel):
    key_id: str
    key: str = Field(description="Shown once; store it now.")
    role: Role
    merchant_id: str | None
    terminal_id: str | None


class Health(BaseModel):
    status: str
    database: str
    version: str
