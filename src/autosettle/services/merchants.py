"""Onboarding: merchants, their settlement accounts and terminals, and their balances."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from autosettle.domain.errors import (
    AlreadyExists,
    ConflictError,
    ErrorCode,
    NotFoundError,
    ValidationError,
)
from autosettle.domain.merchants import (
    BANK_NAME_LENGTH_MAX,
    HOLDER_NAME_LENGTH_MAX,
    LEGAL_NAME_LENGTH_MAX,
    SERIAL_LENGTH_MAX,
    SHORT_NAME_LENGTH_MAX,
    AccountType,
    CycleCode,
    Merchant,
    MerchantStatus,
    MerchantType,
    SettlementAccount,
    Terminal,
    TerminalStatus,
    check_account_number,
    check_mcc,
    check_merchant_id,
    check_name,
    check_terminal_id,
    holder_name_matches,
    mask_account_number,
)
from autosettle.domain.money import AMOUNT_MINOR_MAX, currency
from autosettle.services.access import Area, require_read
from autosettle.services.audit import record
from autosettle.services.context import Principal, ServiceContext
from autosettle.store.uow import UnitOfWork

PAGE_SIZE_MAX = 200
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class NewMerchant:
    merchant_id: str
    legal_name: str
    merchant_type: MerchantType
    mcc: str
    short_name: str | None = None
    settlement_cycle: CycleCode = CycleCode.T1
    single_limit_minor: int | None = None
    currency: str = "CNY"


@dataclass(frozen=True, slots=True)
class NewSettlementAccount:
    bank_name: str
    account_number: str
    holder_name: str
    account_type: AccountType
    bank_code: str | None = None


@dataclass(frozen=True, slots=True)
class NewTerminal:
    terminal_id: str
    serial_no: str = ""
    model: str = "generic"


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None


def _limit(limit: int) -> int:
    if not 1 <= limit <= PAGE_SIZE_MAX:
        raise ValidationError(f"limit must be 1..{PAGE_SIZE_MAX}")
    return limit


def _check_mcc(value: str) -> str:
    """:func:`check_mcc`, held to ASCII digits (a Unicode ``\\d`` also takes "５４１１")."""
    mcc = check_mcc(value)
    if not mcc.isascii():
        raise ValidationError("mcc must be 4 ASCII digits")
    return mcc


def create_merchant(ctx: ServiceContext, who: Principal, new: NewMerchant) -> Merchant:
    """Onboard a merchant (operators only). Its id must be new."""
    who.require_operator()
    if new.single_limit_minor is not None and not 0 < new.single_limit_minor <= AMOUNT_MINOR_MAX:
        raise ValidationError("single_limit_minor must be positive and at most 10^12",
                              ErrorCode.INVALID_AMOUNT)
    legal_name = check_name(new.legal_name, "legal name", LEGAL_NAME_LENGTH_MAX)
    now = ctx.now()
    merchant = Merchant(
        merchant_id=check_merchant_id(new.merchant_id),
        legal_name=legal_name,
        short_name=check_name(new.short_name or legal_name[:SHORT_NAME_LENGTH_MAX],
                              "short name", SHORT_NAME_LENGTH_MAX),
        merchant_type=MerchantType(new.merchant_type),
        mcc=_check_mcc(new.mcc),
        status=MerchantStatus.ACTIVE,
        settlement_cycle=CycleCode(new.settlement_cycle),
        single_limit_minor=new.single_limit_minor,
        currency=currency(new.currency).code,
        created_at=now, updated_at=now,
    )
    exists = ConflictError(f"merchant {merchant.merchant_id} exists", ErrorCode.ALREADY_EXISTS)
    try:
        with ctx.db.unit_of_work() as uow:
            if uow.merchants.get(merchant.merchant_id) is not None:
                raise exists
            uow.merchants.add(merchant)
            record(uow, who, "merchant.create", f"merchant/{merchant.merchant_id}", now)
    except AlreadyExists:
        # A concurrent create won the race between our read and our insert (PostgreSQL).
        with ctx.db.unit_of_work() as uow:
            if uow.merchants.get(merchant.merchant_id) is not None:
                raise exists from None
        raise
    return merchant


def get_merchant(ctx: ServiceContext, who: Principal, merchant_id: str) -> Merchant:
    require_read(who, Area.MERCHANT, merchant_id)
    with ctx.db.unit_of_work() as uow:
        return _merchant_or_404(uow, merchant_id)


def _merchant_or_404(uow: UnitOfWork, merchant_id: str) -> Merchant:
    merchant = uow.merchants.get(merchant_id)
    if merchant is None:
        raise NotFoundError(f"merchant {merchant_id} not found")
    return merchant


def list_merchants(ctx: ServiceContext, who: Principal, cursor: str | None,
                   limit: int) -> Page[Merchant]:
    """Operators see every merchant; a merchant (or terminal) key its own only."""
    require_read(who, Area.MERCHANT)
    limit = _limit(limit)
    with ctx.db.unit_of_work() as uow:
        items = uow.merchants.list(cursor, limit + 1,
                                   only=None if who.is_operator else who.merchant_id or "")
    more = len(items) > limit
    items = items[:limit]
    return Page(items, items[-1].merchant_id if more else None)


def set_merchant_status(ctx: ServiceContext, who: Principal, merchant_id: str,
                        status: MerchantStatus) -> Merchant:
    who.require_merchant(merchant_id)
    who.require_operator()
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        merchant = _merchant_or_404(uow, merchant_id)
        if merchant.status is MerchantStatus.CLOSED and status is not MerchantStatus.CLOSED:
            raise ConflictError("a closed merchant cannot be reopened")
        uow.merchants.set_status(merchant_id, status, now)
        record(uow, who, "merchant.status", f"merchant/{merchant_id}", now,
               detail={"from": merchant.status.value, "to": status.value})
        return _merchant_or_404(uow, merchant_id)


def add_settlement_account(ctx: ServiceContext, who: Principal, merchant_id: str,
                           new: NewSettlementAccount) -> SettlementAccount:
    """Register the merchant's own bank account. 一清: the holder must be the merchant.

    An account whose holder name matches the merchant's legal name is marked verified;
    any other is kept unverified and can never receive a payout.
    """
    who.require_merchant(merchant_id)
    who.require_operator()
    number = check_account_number(new.account_number)
    holder = check_name(new.holder_name, "holder name", HOLDER_NAME_LENGTH_MAX)
    bank_name = check_name(new.bank_name, "bank name", BANK_NAME_LENGTH_MAX)
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        merchant = _merchant_or_404(uow, merchant_id)
        account_type = AccountType(new.account_type)
        if merchant.merchant_type is MerchantType.ENTERPRISE and \
                account_type is not AccountType.CORPORATE:
            raise ValidationError("an enterprise settles to a corporate account only")
        account = SettlementAccount(
            merchant_id=merchant_id, account_id=uuid.uuid4().hex, bank_name=bank_name,
            bank_code=new.bank_code, account_number_masked=mask_account_number(number),
            holder_name=holder, account_type=account_type,
            verified=holder_name_matches(holder, merchant.legal_name), status="active",
            created_at=now,
        )
        sealed = ctx.sealer.seal(number.encode(), context=merchant_id.encode())
        uow.settlement_accounts.add(account, sealed, ctx.sealer.digest(number))
        record(uow, who, "settlement_account.create",
               f"merchant/{merchant_id}/settlement-accounts/{account.account_id}", now,
               detail={"verified": account.verified})
    return account


def list_settlement_accounts(ctx: ServiceContext, who: Principal,
                             merchant_id: str) -> Sequence[SettlementAccount]:
    require_read(who, Area.SETTLEMENT_ACCOUNTS, merchant_id)
    with ctx.db.unit_of_work() as uow:
        _merchant_or_404(uow, merchant_id)
        return uow.settlement_accounts.list_for(merchant_id)


def add_terminal(ctx: ServiceContext, who: Principal, merchant_id: str,
                 new: NewTerminal) -> Terminal:
    who.require_merchant(merchant_id)
    who.require_operator()
    now = ctx.now()
    terminal = Terminal(
        merchant_id=merchant_id, terminal_id=check_terminal_id(new.terminal_id),
        serial_no=check_name(new.serial_no or new.terminal_id, "serial number",
                             SERIAL_LENGTH_MAX),
        model=check_name(new.model, "model", SERIAL_LENGTH_MAX),
        status=TerminalStatus.ACTIVE, created_at=now, updated_at=now,
    )
    try:
        with ctx.db.unit_of_work() as uow:
            _merchant_or_404(uow, merchant_id)
            if uow.terminals.get(merchant_id, terminal.terminal_id) is not None:
                raise ConflictError(f"terminal {terminal.terminal_id} exists",
                                    ErrorCode.ALREADY_EXISTS)
            uow.terminals.add(terminal)
            record(uow, who, "terminal.create",
                   f"merchant/{merchant_id}/terminals/{terminal.terminal_id}", now)
    except AlreadyExists as exc:  # a concurrent create stored it first
        raise ConflictError(f"terminal {terminal.terminal_id} exists",
                            ErrorCode.ALREADY_EXISTS) from exc
    return terminal


def get_terminal(ctx: ServiceContext, who: Principal, merchant_id: str,
                 terminal_id: str) -> Terminal:
    require_read(who, Area.TERMINALS, merchant_id)
    if who.terminal_id is not None and who.terminal_id != terminal_id:
        raise NotFoundError(f"terminal {terminal_id} not found")
    with ctx.db.unit_of_work() as uow:
        terminal = uow.terminals.get(merchant_id, terminal_id)
    if terminal is None:
        raise NotFoundError(f"terminal {terminal_id} not found")
    return terminal


def list_terminals(ctx: ServiceContext, who: Principal, merchant_id: str | None,
                   cursor: str | None, limit: int) -> Page[Terminal]:
    """Keyset-paged terminals; the cursor is ``<merchant id>:<terminal id>``."""
    require_read(who, Area.TERMINALS, merchant_id)
    limit = _limit(limit)
    if not who.is_operator:
        if merchant_id is not None and merchant_id != who.merchant_id:
            raise NotFoundError(f"merchant {merchant_id} not found")
        merchant_id = who.merchant_id
    after: tuple[str, str] | None = None
    if cursor:
        m, sep, t = cursor.partition(":")
        if not sep:
            raise ValidationError("bad cursor")
        after = (m, t)
    with ctx.db.unit_of_work() as uow:
        if merchant_id is not None:
            _merchant_or_404(uow, merchant_id)
        # A terminal key sees its own terminal only: filter in the query, not after the
        # page was cut, or the terminal could fall off a small page.
        items = uow.terminals.list(merchant_id, after, limit + 1, only=who.terminal_id)
    more = len(items) > limit
    items = items[:limit]
    last = items[-1] if items else None
    return Page(items, f"{last.merchant_id}:{last.terminal_id}" if more and last else None)


def set_terminal_status(ctx: ServiceContext, who: Principal, merchant_id: str,
                        terminal_id: str, status: TerminalStatus) -> Terminal:
    who.require_merchant(merchant_id)
    who.require_operator()
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        terminal = uow.terminals.get(merchant_id, terminal_id)
        if terminal is None:
            raise NotFoundError(f"terminal {terminal_id} not found")
        if terminal.status is TerminalStatus.RETIRED and status is not TerminalStatus.RETIRED:
            raise ConflictError("a retired terminal cannot be reactivated")
        uow.terminals.set_status(merchant_id, terminal_id, status, now)
        record(uow, who, "terminal.status",
               f"merchant/{merchant_id}/terminals/{terminal_id}", now,
               detail={"from": terminal.status.value, "to": status.value})
        updated = uow.terminals.get(merchant_id, terminal_id)
    if updated is None:
        raise NotFoundError(f"terminal {terminal_id} not found")
    return updated
