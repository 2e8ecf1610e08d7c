"""The merchant-day scoring job: a cash-out pattern puts the merchant's day on review (its
settlement items held, so settlement leaves them out), an operator releases it."""

from __future__ import annotations

from typing import Any

from paytools import DEBIT, MID, PIN, make_pan, sale, seed_shop, unsettled

from autosettle.domain.response_codes import ResponseCode as RC
from autosettle.services import risk_scoring
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.store.tables import settlement_items

CREDIT = make_pan(9, "625802")


def held(ctx: ServiceContext) -> list[bool]:
    with ctx.db.unit_of_work() as uow:
        return [bool(r.held) for r in uow.connection.execute(settlement_items.select())]


def test_a_cash_out_day_goes_on_review_and_is_released(
        ctx: ServiceContext, sim: IssuerSimulator, clock: Any) -> None:
    seed_shop(ctx, sim, balance_minor=10**10)  # single limit 50,000.00 CNY
    sim.add_card(CREDIT, kind="credit", credit_limit_minor=10**10, pin=PIN)
    for amount in (4_990_000, 4_950_000, 5_000_000, 4_800_000):
        assert sale(ctx, amount, pan=CREDIT).response_code is RC.APPROVED
    day = clock.now.date()  # 10:00 Shanghai: the business date is the calendar date
    [score] = risk_scoring.score_day(ctx, SYSTEM, day)
    assert score.on_review and score.score >= ctx.settings.risk_review_score
    assert {r["signal"] for r in score.reasons} >= {"round_amounts", "just_under_limit",
                                                   "repeat_card", "credit_share"}
    assert held(ctx) == [True] * 4
    assert [s.merchant_id for s in risk_scoring.flagged(ctx, SYSTEM)] == [MID]
    assert risk_scoring.release_merchant_day(ctx, SYSTEM, MID, day) == 4
    assert held(ctx) == [False] * 4
    assert risk_scoring.flagged(ctx, SYSTEM) == []
    assert unsettled(ctx) == 19_740_000


def test_an_ordinary_day_is_scored_and_not_held(ctx: ServiceContext, sim: IssuerSimulator,
                                                clock: Any) -> None:
    seed_shop(ctx, sim, balance_minor=10**10)
    for amount in (1_234, 5_678, 910):
        assert sale(ctx, amount, pan=DEBIT).response_code is RC.APPROVED
    [score] = risk_scoring.score_day(ctx, SYSTEM, clock.now.date())
    assert (score.score, score.on_review) == (20, False)  # one card thrice: noted, not held
    assert [r["signal"] for r in score.reasons] == ["repeat_card"]
    assert held(ctx) == [False] * 3
