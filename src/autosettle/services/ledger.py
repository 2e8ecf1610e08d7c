"""Posting journal entries and reading derived balances."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from autosettle.domain.ledger import Account, JournalEntry
from autosettle.domain.ledger_records import BalanceRow, PostedEntry
from autosettle.services.access import Area, require_read
from autosettle.services.context import Principal, ServiceContext
from autosettle.services.merchants import get_merchant
from autosettle.store.uow import UnitOfWork


def post(ctx: ServiceContext, entry: JournalEntry) -> PostedEntry:
    """Post one balanced entry in its own unit of work; a retry returns the first entry."""
    with ctx.db.unit_of_work() as uow:
        return post_in(uow, ctx, entry)


def post_in(uow: UnitOfWork, ctx: ServiceContext, entry: JournalEntry) -> PostedEntry:
    """Post inside the caller's unit of work, so the entry commits with the business change."""
    return uow.ledger.post(entry, ctx.now())


def post_many(ctx: ServiceContext, entries: Sequence[JournalEntry]) -> list[PostedEntry]:
    """Post several entries in one unit of work (all or nothing)."""
    with ctx.db.unit_of_work() as uow:
        return uow.ledger.post_batch(list(entries), ctx.now())


@dataclass(frozen=True, slots=True)
class AccountBalance:
    account: str
    account_type: str
    kind: str
    currency: str
    balance_minor: int


def merchant_balances(ctx: ServiceContext, who: Principal,
                      merchant_id: str) -> list[AccountBalance]:
    """Balances of a merchant's accounts, derived from the journal lines."""
    require_read(who, Area.BALANCES, merchant_id)
    get_merchant(ctx, who, merchant_id)
    with ctx.db.unit_of_work() as uow:
        rows: list[BalanceRow] = uow.ledger.balances_for_merchant(merchant_id)
    result = []
    for row in rows:
        account = Account.parse(row.account_code)
        result.append(AccountBalance(row.account_code, account.type.value, account.kind.value,
                                     row.currency, row.balance_minor))
    return result


def ledger_imbalance(ctx: ServiceContext) -> dict[str, int]:
    """Sum of every line per currency; all zero when the ledger is balanced."""
    with ctx.db.unit_of_work() as uow:
        return uow.ledger.imbalance_by_currency()
