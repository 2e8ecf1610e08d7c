"""Risk control on the ISO 8583 path: the same check as the REST API, over TCP; the answer
carries the decline code, and a review's settlement item is held."""

from __future__ import annotations

from hosttools import DEBIT, MID, OPENING_MINOR, PIN, Money, money

from autosettle.services import risk
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.simulators.terminal_client import TerminalClient


def put(ctx: ServiceContext, rule_id: str, kind: str, params: dict[str, object],
        action: str = "decline") -> None:
    risk.put_rule(ctx, SYSTEM, rule_id, risk.RuleInput(kind, "merchant", action, params, MID))


def test_limits_decline_61_and_65_over_iso8583(shop: ServiceContext, sim: IssuerSimulator,
                                               terminal: TerminalClient) -> None:
    put(shop, "day", "cumulative", {"subject": "merchant", "period": "day",
                                    "amount_minor": 10_000, "count": 2})
    assert terminal.sale(DEBIT, 6_000, PIN).code == "00"
    assert terminal.sale(DEBIT, 5_000, PIN).code == "61"
    assert terminal.sale(DEBIT, 4_000, PIN).code == "00"
    assert terminal.sale(DEBIT, 1, PIN).code in ("61", "65")
    assert money(shop, sim) == Money(OPENING_MINOR - 10_000, 0, 10_000, 0)


def test_block_list_declines_05_and_review_holds_over_iso8583(
        shop: ServiceContext, sim: IssuerSimulator, terminal: TerminalClient) -> None:
    put(shop, "watch", "single_max", {"amount_minor": 1_000}, action="review")
    held = terminal.sale(DEBIT, 2_000, PIN)
    assert held.code == "00"
    [queued] = risk.review_queue(shop, SYSTEM)
    assert queued.held and queued.decision.amount_minor == 2_000
    put(shop, "blocked", "block", {"card_tokens": [shop.tokenizer.describe(DEBIT).token]})
    assert terminal.sale(DEBIT, 500, PIN).code == "05"
    assert money(shop, sim) == Money(OPENING_MINOR - 2_000, 0, 2_000, 0)
