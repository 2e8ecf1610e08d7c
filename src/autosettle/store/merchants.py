"""Repositories for merchants, settlement accounts and terminals."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from autosettle.domain.errors import AlreadyExists
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
from autosettle.store.tables import merchants, settlement_accounts, terminals

# Built once: building a statement costs more CPU than running it (see store/payments.py).
_MERCHANT = select(merchants).where(merchants.c.merchant_id == bindparam("m"))
_MERCHANT_FOR_UPDATE = _MERCHANT.with_for_update()
_TERMINAL = select(terminals).where(terminals.c.merchant_id == bindparam("m"),
                                    terminals.c.terminal_id == bindparam("t"))


def merchant_from_row(row: Row[Any]) -> Merchant:
    """A merchant from a row that has the ``merchants`` columns under their own names."""
    m = row._mapping
    return Merchant(
        merchant_id=m["merchant_id"], legal_name=m["legal_name"], short_name=m["short_name"],
        merchant_type=MerchantType(m["merchant_type"]), mcc=m["mcc"],
        status=MerchantStatus(m["status"]), settlement_cycle=CycleCode(m["settlement_cycle"]),
        single_limit_minor=m["single_limit_minor"], currency=m["currency"],
        created_at=m["created_at"], updated_at=m["updated_at"],
    )


def _terminal(row: Row[Any]) -> Terminal:
    m = row._mapping
    return Terminal(
        merchant_id=m["merchant_id"], terminal_id=m["terminal_id"], serial_no=m["serial_no"],
        model=m["model"], status=TerminalStatus(m["status"]), created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def _account(row: Row[Any]) -> SettlementAccount:
    m = row._mapping
    return SettlementAccount(
        merchant_id=m["merchant_id"], account_id=m["account_id"], bank_name=m["bank_name"],
        bank_code=m["bank_code"], account_number_masked=m["account_number_masked"],
        holder_name=m["holder_name"], account_type=AccountType(m["account_type"]),
        verified=m["verified"], status=m["status"], created_at=m["created_at"],
    )


class MerchantRepository:
    """Merchants by their 15-character id."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, merchant: Merchant) -> None:
        """Insert; :class:`AlreadyExists` when a concurrent create stored it first."""
        try:
            self._insert(merchant)
        except IntegrityError as exc:
            raise AlreadyExists(f"merchant {merchant.merchant_id} exists") from exc

    def _insert(self, merchant: Merchant) -> None:
        self._conn.execute(insert(merchants).values(
            merchant_id=merchant.merchant_id, legal_name=merchant.legal_name,
            short_name=merchant.short_name, merchant_type=merchant.merchant_type.value,
            mcc=merchant.mcc, status=merchant.status.value,
            settlement_cycle=merchant.settlement_cycle.value,
            single_limit_minor=merchant.single_limit_minor, currency=merchant.currency,
            created_at=merchant.created_at, updated_at=merchant.updated_at,
        ))

    def get(self, merchant_id: str, for_update: bool = False) -> Merchant | None:
        query = _MERCHANT_FOR_UPDATE if for_update else _MERCHANT
        row = self._conn.execute(query, {"m": merchant_id}).first()
        return merchant_from_row(row) if row else None

    def list(self, after: str | None, limit: int,
             only: str | None = None) -> Sequence[Merchant]:
        """Merchants ordered by id, after the cursor ``after`` (keyset paging)."""
        query = select(merchants).order_by(merchants.c.merchant_id).limit(limit)
        if after is not None:
            query = query.where(merchants.c.merchant_id > after)
        if only is not None:
            query = query.where(merchants.c.merchant_id == only)
        return [merchant_from_row(r) for r in self._conn.execute(query)]

    def set_status(self, merchant_id: str, status: MerchantStatus, at: datetime) -> None:
        self._conn.execute(update(merchants).where(merchants.c.merchant_id == merchant_id)
                           .values(status=status.value, updated_at=at))


class SettlementAccountRepository:
    """Settlement bank accounts of a merchant; the number is stored sealed and masked."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, account: SettlementAccount, sealed_number: bytes, digest: str) -> None:
        self._conn.execute(insert(settlement_accounts).values(
            merchant_id=account.merchant_id, account_id=account.account_id,
            bank_name=account.bank_name, bank_code=account.bank_code,
            account_number_sealed=sealed_number,
            account_number_masked=account.account_number_masked,
            account_number_digest=digest, holder_name=account.holder_name,
            account_type=account.account_type.value, verified=account.verified,
            status=account.status, created_at=account.created_at,
        ))

    def list_for(self, merchant_id: str) -> Sequence[SettlementAccount]:
        query = (select(settlement_accounts)
                 .where(settlement_accounts.c.merchant_id == merchant_id)
                 .order_by(settlement_accounts.c.created_at, settlement_accounts.c.account_id))
        return [_account(r) for r in self._conn.execute(query)]

    def get(self, merchant_id: str, account_id: str) -> SettlementAccount | None:
        row = self._conn.execute(select(settlement_accounts).where(
            settlement_accounts.c.merchant_id == merchant_id,
            settlement_accounts.c.account_id == account_id)).first()
        return _account(row) if row else None

    def sealed_number(self, merchant_id: str, account_id: str) -> bytes | None:
        value: bytes | None = self._conn.execute(
            select(settlement_accounts.c.account_number_sealed).where(
                settlement_accounts.c.merchant_id == merchant_id,
                settlement_accounts.c.account_id == account_id)).scalar()
        return value


class TerminalRepository:
    """Terminals, keyed by (merchant id, terminal id) as on the wire (fields 42 and 41)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, terminal: Terminal) -> None:
        """Insert; :class:`AlreadyExists` when the terminal id is taken."""
        try:
            self._insert(terminal)
        except IntegrityError as exc:
            raise AlreadyExists(f"terminal {terminal.terminal_id} exists") from exc

    def _insert(self, terminal: Terminal) -> None:
        self._conn.execute(insert(terminals).values(
            merchant_id=terminal.merchant_id, terminal_id=terminal.terminal_id,
            serial_no=terminal.serial_no, model=terminal.model, status=terminal.status.value,
            created_at=terminal.created_at, updated_at=terminal.updated_at,
        ))

    def get(self, merchant_id: str, terminal_id: str) -> Terminal | None:
        row = self._conn.execute(_TERMINAL, {"m": merchant_id, "t": terminal_id}).first()
        return _terminal(row) if row else None

    def list(self, merchant_id: str | None, after: tuple[str, str] | None,
             limit: int, only: str | None = None) -> Sequence[Terminal]:
        """Terminals ordered by (merchant id, terminal id), keyset-paged; ``only`` restricts
        the list to one terminal id."""
        query = (select(terminals).order_by(terminals.c.merchant_id, terminals.c.terminal_id)
                 .limit(limit))
        if merchant_id is not None:
            query = query.where(terminals.c.merchant_id == merchant_id)
        if only is not None:
            query = query.where(terminals.c.terminal_id == only)
        if after is not None:
            m, t = after
            query = query.where((terminals.c.merchant_id > m) | (
                (terminals.c.merchant_id == m) & (terminals.c.terminal_id > t)))
        return [_terminal(r) for r in self._conn.execute(query)]

    def terminal_id_exists(self, terminal_id: str) -> bool:
        """Whether any merchant has a terminal with this id (97 vs 03 on the wire)."""
        return self._conn.execute(select(terminals.c.terminal_id).where(
            terminals.c.terminal_id == terminal_id).limit(1)).first() is not None

    def set_status(self, merchant_id: str, terminal_id: str, status: TerminalStatus,
                   at: datetime) -> None:
        self._conn.execute(update(terminals).where(
            terminals.c.merchant_id == merchant_id, terminals.c.terminal_id == terminal_id,
        ).values(status=status.value, updated_at=at))
