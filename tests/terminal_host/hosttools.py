"""Helpers of the terminal host tests: a shop, a provisioned terminal, and both ledgers.

"Both ledgers" are our records and journal on one side and the issuer simulator's card
accounts on the other; the tests check that a terminal conversation leaves them agreeing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from autosettle.domain.cards import luhn_check_digit
from autosettle.domain.merchants import AccountType, CycleCode, MerchantType
from autosettle.services import merchants, terminal_keys
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.services.key_module import MacAlgorithm
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.simulators.terminal_client import TerminalClient, TerminalProfile
from autosettle.store.tables import transactions
from autosettle.terminal_host.server import HostLimits

MID = "898310054110001"
TID = "HL000001"
OTHER_MID = "898310054110002"
OTHER_TID = "HL000002"
PIN = "123456"
TEST_LIMITS = HostLimits(connections_max=16, idle_timeout_s=5.0, read_timeout_s=1.0,
                         write_timeout_s=2.0, workers_max=8, stop_timeout_s=10.0)
OPENING_MINOR = 100_000


def make_pan(serial: int, bin6: str = "622202") -> str:
    """A Luhn-valid 19-digit PAN (622202: a UnionPay debit BIN in the built-in table)."""
    body = f"{bin6}{serial:012d}"
    return body + luhn_check_digit(body)


DEBIT = make_pan(1)
SECOND = make_pan(2)


def seed_shop(ctx: ServiceContext, sim: IssuerSimulator) -> None:
    """Two merchants, one terminal each; two cards at the issuer simulator."""
    for mid, tid in ((MID, TID), (OTHER_MID, OTHER_TID)):
        merchants.create_merchant(ctx, SYSTEM, merchants.NewMerchant(
            mid, "Hualian Supermarket Co., Ltd.", MerchantType.ENTERPRISE, "5411",
            settlement_cycle=CycleCode.T1, single_limit_minor=5_000_000))
        merchants.add_settlement_account(ctx, SYSTEM, mid, merchants.NewSettlementAccount(
            "ICBC", "6212260200001234567", "Hualian Supermarket Co., Ltd.",
            AccountType.CORPORATE))
        merchants.add_terminal(ctx, SYSTEM, mid, merchants.NewTerminal(tid))
    sim.add_card(DEBIT, balance_minor=OPENING_MINOR, pin=PIN)
    sim.add_card(SECOND, balance_minor=OPENING_MINOR, pin=PIN)


def provision(ctx: ServiceContext, merchant_id: str = MID, terminal_id: str = TID,
              mac: MacAlgorithm = MacAlgorithm.CUP_ECB, mode: str = "003") -> TerminalProfile:
    """Provision a TMK and load it into a terminal profile, as a key loading device does."""
    made = terminal_keys.provision_terminal(ctx, SYSTEM, merchant_id, terminal_id,
                                            mac_algorithm=mac)
    return TerminalProfile(merchant_id, terminal_id, made.tmk(), mac, mode)


@dataclass(frozen=True)
class Money:
    """Where the money is: at the issuer (card balance, holds) and in our ledger."""

    card_balance: int
    card_held: int
    unsettled: int
    holds: int


def money(ctx: ServiceContext, sim: IssuerSimulator, pan: str = DEBIT) -> Money:
    card = sim.card(pan)
    with ctx.db.unit_of_work() as uow:
        assert all(v == 0 for v in uow.ledger.imbalance_by_currency().values())
        unsettled = -uow.ledger.balance(f"merchant_unsettled:{MID}", "CNY")
        holds = uow.ledger.balance("card_holds", "CNY")
    return Money(card.balance_minor, card.held_minor, unsettled, holds)


UNTOUCHED = Money(OPENING_MINOR, 0, 0, 0)


def record_count(ctx: ServiceContext) -> int:
    with ctx.db.unit_of_work() as uow:
        return int(uow.connection.execute(
            select(func.count()).select_from(transactions)).scalar() or 0)


def client(profile: TerminalProfile, port: int, timeout_s: float = 20.0) -> TerminalClient:
    return TerminalClient(profile, "127.0.0.1", port, timeout_s)
