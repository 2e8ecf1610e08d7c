"""Demo traffic: the simulated issuer's demo cards and a cashier's day of payments.

``make run`` seeds these cards at the built-in issuer simulator (to try the REST API
with, and for the lost and expired cards the terminal simulator shows). The demo traffic
itself is played by the terminal simulator's demo fleet over ISO 8583 and TCP
(``autosettle.simulators.terminal.DemoFleet``, started by ``serve``);
:class:`DemoCashier` calls the payment service directly, without terminals, for scripts
that want payments without a terminal host (its transactions land in the terminals'
open batches, which the terminals then do not know about).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from autosettle.domain.money import Money
from autosettle.domain.transactions import TxnType
from autosettle.services import payments
from autosettle.services.context import ServiceContext
from autosettle.services.payments import CardInput, OriginalRef, PaymentRequest, PaymentResult
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


@dataclass(frozen=True, slots=True)
class Till:
    merchant_id: str
    terminal_id: str
    amounts_minor: tuple[int, ...]


TILLS = (
    Till("898310054110001", "HL000001", (1_280, 4_590, 12_800, 36_650, 8_800)),
    Till("898310054110001", "HL000002", (990, 2_350, 15_900)),
    Till("898310058120001", "LW000001", (1_800, 2_500, 3_200, 600_000)),
    Till("898310059120001", "KJ000001", (3_450, 12_000, 56_800)),
)


class DemoCashier:
    """Plays a realistic mix of operations, one per call."""

    def __init__(self, ctx: ServiceContext, seed: int | None = None) -> None:
        self._ctx = ctx
        self._random = random.Random(seed)
        self._recent: list[PaymentResult] = []

    def step(self) -> PaymentResult:
        till = self._random.choice(TILLS)
        roll = self._random.random()
        approved = [r for r in self._recent if r.approved and r.record is not None
                    and r.record.txn_type == "sale" and r.record.merchant_id == till.merchant_id
                    and r.record.terminal_id == till.terminal_id]
        if roll < 0.08 and approved:
            original = approved[-1].record
            assert original is not None
            result = payments.authorize(self._ctx, PaymentRequest(
                TxnType.VOID, till.merchant_id, till.terminal_id, None, None,
                OriginalRef(txn_id=original.txn_id)))
        elif roll < 0.14 and approved:
            original = approved[0].record
            assert original is not None
            result = payments.authorize(self._ctx, PaymentRequest(
                TxnType.REFUND, till.merchant_id, till.terminal_id,
                Money(max(1, original.amount_minor // 2)), None,
                OriginalRef(txn_id=original.txn_id)))
        else:
            card = self._pick_card(roll)
            result = payments.authorize(self._ctx, PaymentRequest(
                TxnType.SALE, till.merchant_id, till.terminal_id,
                Money(self._random.choice(till.amounts_minor)),
                CardInput(card.pan, card.expiry, card.pin_typed or card.pin)))
        self._recent = [*self._recent[-30:], result]
        return result

    def _pick_card(self, roll: float) -> DemoCard:
        if roll < 0.80:
            return self._random.choice((DEMO_CARDS[0], DEMO_CARDS[2]))
        return self._random.choice(DEMO_CARDS[1:])
