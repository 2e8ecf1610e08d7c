"""Explainable cash-out (套现) scoring of a merchant's business day (pure; docs/risk.md).

A transparent, rules-based score: each *signal* below adds fixed points when its condition
holds, and says why with the numbers behind it. No learned model, no weights from outside.

========================  ======  ==========================================================
signal                    points  condition (approved sales and pre-authorizations)
========================  ======  ==========================================================
round_amounts             20      >= 3 sales of whole hundreds of yuan (>= 1,000 CNY), >= 40%
                                  of the day's sales
just_under_limit          20      >= 2 sales within 10% under the single-transaction limit
repeat_card               20      one card >= 4 sales at the merchant, or >= 60% of the
                                  day's amount over >= 3 sales
night_burst               15      >= 3 sales 00:00-05:00 Shanghai, >= 30% of the day's sales
credit_share              15      credit cards >= 70% of the amount, 40 points above the
                                  merchant's own share of the previous 30 days (30% without
                                  history), >= 3 credit sales
volume_jump               20      the day's amount >= 5x the median of the merchant's
                                  previous days with sales (>= 5 such days)
declines_then_approval    15      a card approved after >= 2 declines the same day
========================  ======  ==========================================================

Every signal alone stays below the default review threshold (60): an honest merchant with
one unusual trait (a jeweller's round amounts, a 24-hour shop's night sales, a holiday rush)
is scored, explained, and not put on review.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import time
from statistics import median

ROUND_UNIT_MINOR = 10_000  # 100.00 CNY
ROUND_FLOOR_MINOR = 100_000  # 1,000.00 CNY
NIGHT_END = time(5, 0)
HISTORY_DAYS = 30
POPULATION_CREDIT_SHARE = 0.3


@dataclass(frozen=True, slots=True)
class DayTxn:
    """One transaction of the day, as the scoring sees it (time order matters)."""

    amount_minor: int
    approved: bool
    card_token: str | None
    card_kind: str | None
    local_time: time


@dataclass(frozen=True, slots=True)
class History:
    """The merchant's previous days: approved amount per day with sales, credit share."""

    daily_amounts: Sequence[int] = ()
    credit_share: float | None = None


@dataclass(frozen=True, slots=True)
class Reason:
    signal: str
    points: int
    english: str
    chinese: str
    numbers: dict[str, float | int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"signal": self.signal, "points": self.points, "english": self.english,
                "chinese": self.chinese, "numbers": dict(self.numbers)}


@dataclass(frozen=True, slots=True)
class DayScore:
    score: int
    reasons: tuple[Reason, ...]
    approved_count: int
    approved_minor: int


def score_day(txns: Sequence[DayTxn], single_limit_minor: int | None,
              history: History) -> DayScore:
    approved = [t for t in txns if t.approved]
    total = sum(t.amount_minor for t in approved)
    reasons = [r for r in (
        _round_amounts(approved), _just_under(approved, single_limit_minor),
        _repeat_card(approved, total), _night(approved), _credit(approved, total, history),
        _jump(total, history), _declines_then_approval(txns)) if r is not None]
    return DayScore(sum(r.points for r in reasons), tuple(reasons), len(approved), total)


def _yuan(minor: float) -> str:
    return f"{minor / 100:,.2f}"


def _round_amounts(approved: Sequence[DayTxn]) -> Reason | None:
    rounds = [t for t in approved if t.amount_minor >= ROUND_FLOOR_MINOR
              and t.amount_minor % ROUND_UNIT_MINOR == 0]
    if len(rounds) < 3 or len(rounds) < 0.4 * len(approved):
        return None
    share = len(rounds) / len(approved)
    return Reason("round_amounts", 20,
                  f"{len(rounds)} of {len(approved)} sales are round amounts of at least "
                  "1,000 CNY", f"{len(rounds)}/{len(approved)} 笔为整百大额交易",
                  {"round_sales": len(rounds), "sales": len(approved),
                   "share": round(share, 3)})


def _just_under(approved: Sequence[DayTxn], limit: int | None) -> Reason | None:
    if limit is None:
        return None
    near = [t for t in approved if 0.9 * limit <= t.amount_minor <= limit]
    if len(near) < 2:
        return None
    return Reason("just_under_limit", 20,
                  f"{len(near)} sales just under the single limit of {_yuan(limit)} CNY",
                  f"{len(near)} 笔交易金额接近单笔限额 {_yuan(limit)} 元",
                  {"near_limit_sales": len(near), "limit_minor": limit})


def _repeat_card(approved: Sequence[DayTxn], total: int) -> Reason | None:
    by_card: dict[str, list[int]] = defaultdict(list)
    for t in approved:
        if t.card_token:
            by_card[t.card_token].append(t.amount_minor)
    if not by_card:
        return None
    amounts = max(by_card.values(), key=lambda v: (len(v), sum(v)))
    share = sum(amounts) / total if total else 0.0
    if len(amounts) >= 4 or (len(amounts) >= 3 and share >= 0.6):
        return Reason("repeat_card", 20,
                      f"one card paid {len(amounts)} times ({share:.0%} of the day's amount)",
                      f"同一张卡当日交易 {len(amounts)} 笔，占当日金额 {share:.0%}",
                      {"card_sales": len(amounts), "card_amount_minor": sum(amounts),
                       "share": round(share, 3)})
    return None


def _night(approved: Sequence[DayTxn]) -> Reason | None:
    night = [t for t in approved if t.local_time < NIGHT_END]
    if len(night) < 3 or len(night) < 0.3 * len(approved):
        return None
    return Reason("night_burst", 15,
                  f"{len(night)} of {len(approved)} sales between 00:00 and 05:00",
                  f"凌晨 00:00-05:00 交易 {len(night)}/{len(approved)} 笔",
                  {"night_sales": len(night), "sales": len(approved)})


def _credit(approved: Sequence[DayTxn], total: int, history: History) -> Reason | None:
    credit = [t for t in approved if t.card_kind == "credit"]
    if len(credit) < 3 or not total:
        return None
    share = sum(t.amount_minor for t in credit) / total
    norm = history.credit_share if history.credit_share is not None \
        else POPULATION_CREDIT_SHARE
    if share < 0.7 or share - norm < 0.4:
        return None
    return Reason("credit_share", 15,
                  f"credit cards paid {share:.0%} of the amount; the merchant's norm is "
                  f"{norm:.0%}", f"信用卡交易占比 {share:.0%}，远高于该商户常态 {norm:.0%}",
                  {"credit_share": round(share, 3), "norm": round(norm, 3),
                   "credit_sales": len(credit)})


def _jump(total: int, history: History) -> Reason | None:
    days = [a for a in history.daily_amounts if a > 0]
    if len(days) < 5 or not total:
        return None
    typical = median(days)
    if total < 5 * typical:
        return None
    return Reason("volume_jump", 20,
                  f"the day's amount {_yuan(total)} CNY is {total / typical:.1f}x the "
                  f"merchant's median day ({_yuan(typical)} CNY)",
                  f"当日金额 {_yuan(total)} 元，为该商户日中位数的 {total / typical:.1f} 倍",
                  {"amount_minor": total, "median_minor": int(typical),
                   "ratio": round(total / typical, 2)})


def _declines_then_approval(txns: Sequence[DayTxn]) -> Reason | None:
    declines: Counter[str] = Counter()
    cards: set[str] = set()
    for t in txns:
        if not t.card_token:
            continue
        if not t.approved:
            declines[t.card_token] += 1
        elif declines[t.card_token] >= 2:
            cards.add(t.card_token)
    if not cards:
        return None
    return Reason("declines_then_approval", 15,
                  f"{len(cards)} card(s) approved after two or more declines",
                  f"{len(cards)} 张卡多次被拒后交易成功", {"cards": len(cards)})
