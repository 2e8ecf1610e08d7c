"""Who may read what: one table per role, consulted by every service that shows data
(merchants, terminals, transactions, balances, accounts, settlements, fees, alerts, notices,
the calendar, terminal status).

A key reaches a kind of data (an :class:`Area`) only if its role's row lists it, and only
for its own merchant (operators: any merchant). Anything outside that reach is answered
exactly as a resource that does not exist, ``404 not_found``, so a key never learns that
another merchant (or a kind of data it may not read) exists.

Inside the areas it may read, a terminal key is narrowed further by the services, to its
own terminal: the terminals it lists and the transactions it finds are its own.

Changes are not in this table: they belong to operators (``Principal.require_operator``,
``403 forbidden`` for anyone else) except card payments, which only a terminal key makes.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from autosettle.domain.errors import NotFoundError
from autosettle.services.context import Principal, Role


class Area(StrEnum):
    """A kind of data the API shows."""

    MERCHANT = "merchant"  # the merchant's own record
    TERMINALS = "terminals"  # terminal records (a terminal key: its own)
    TRANSACTIONS = "transactions"  # card transactions (a terminal key: its own terminal's)
    SETTLEMENT_ACCOUNTS = "settlement_accounts"  # bank accounts, masked
    BALANCES = "balances"  # ledger balances
    TERMINAL_STATUS = "terminal_status"  # heartbeat, keys, open batches of every terminal
    SETTLEMENTS = "settlements"  # settlement batches, their items and payouts
    FEES = "fees"  # fee schedules and cycle costs
    ALERTS = "alerts"  # operator alerts about the merchant
    NOTICES = "notices"  # maintenance notices with the merchant's expected arrivals
    CALENDAR = "calendar"  # settlement dates from the business calendar


READABLE: Mapping[Role, frozenset[Area]] = {
    Role.OPERATOR: frozenset(Area),
    Role.MERCHANT: frozenset(Area),
    # A till takes payments and prints receipts: it needs its merchant, its own terminal
    # and that terminal's transactions, and nothing about money owed or paid out.
    Role.TERMINAL: frozenset({Area.MERCHANT, Area.TERMINALS, Area.TRANSACTIONS}),
}


def may_read(who: Principal, area: Area, merchant_id: str | None = None) -> bool:
    """Whether ``who`` may read ``area`` (of ``merchant_id``, when one is named)."""
    if area not in READABLE[who.role]:
        return False
    return merchant_id is None or who.can_see_merchant(merchant_id)


def require_read(who: Principal, area: Area, merchant_id: str | None = None) -> None:
    """Raise ``not_found`` unless ``who`` may read ``area`` (of ``merchant_id``)."""
    if not may_read(who, area, merchant_id):
        raise NotFoundError(f"merchant {merchant_id} not found" if merchant_id is not None
                            else "not found")
