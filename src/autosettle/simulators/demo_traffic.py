"""Demo traffic: the simulated issuer's demo cards.

``make run`` seeds these cards at the built-in issuer simulator (to try the REST API
with, and for the lost and expired cards the terminal simulator shows). The demo traffic
itself is played by the terminal simulator's demo fleet over ISO 8583 and TCP
(``autosettle.simulators.terminal.DemoFleet``, started by ``serve``).
"""

from __future__ import annotations

from dataclasses import dataclass

from autosettle.simulators.issuer import CardStatus, IssuerSimulator


@dataclass(frozen=True, slots=True)
class DemoCard:
    pan: str
    kind: str
    pin: str | None
    expiry: str
    status: CardStatus
    balance_minor: int
    credit_limit_minor: int
    label: str
    pin_typed: str | None = None
    """What the cashier's customer types (None: the right PIN)."""


DEMO_CARDS: tuple[DemoCard, ...] = (
    DemoCard("6222020200112345679", "debit", "123456", "3012", CardStatus.ACTIVE,
             5_000_000, 0, "ICBC debit, plenty of funds"),
    DemoCard("6228480000000000018", "debit", "123456", "3012", CardStatus.ACTIVE,
             3_000, 0, "ABC debit, 30.00 left (insufficient funds: 51)"),
    DemoCard("6258020000000000004", "credit", "123456", "3012", CardStatus.ACTIVE,
             0, 20_000_000, "CMB credit, 200,000.00 limit"),
    DemoCard("6217000010000000003", "debit", "888888", "3012", CardStatus.ACTIVE,
             1_000_000, 0, "CCB debit whose cardholder forgets the PIN (55, 55, 75)",
             pin_typed="000000"),
    DemoCard("6222020200112345687", "debit", "123456", "3012", CardStatus.LOST,
             1_000_000, 0, "lost card (41)"),
    DemoCard("6222020200112345604", "debit", "123456", "2001", CardStatus.ACTIVE,
             1_000_000, 0, "expired card (54)"),
)


def seed_cards(sim: IssuerSimulator) -> None:
    """Create the demo cards at the simulator unless they exist."""
    for card in DEMO_CARDS:
        if not sim.has_card(card.pan):
            sim.add_card(card.pan, kind=card.kind, balance_minor=card.balance_minor,
                         credit_limit_minor=card.credit_limit_minor, pin=card.pin,
                         expiry=card.expiry, status=card.status)
