"""Cash-out scoring on a generated month of traffic (fixed seed): every planted cash-out
merchant lands in the top decile, with its reasons; no planted honest merchant (one unusual
trait each) reaches the review threshold on any day."""

from __future__ import annotations

import random
from datetime import time

from hypothesis import given
from hypothesis import strategies as st

from autosettle.domain import risk_scoring as sc

SEED = 20261204
DAYS = 30
THRESHOLD = 60
LIMIT = 2_000_000  # a micro merchant's default single maximum
NORMAL, CASH_OUT, JEWELLER, ALL_NIGHT, HOLIDAY, LUXURY = (
    "normal", "cash_out", "jeweller", "all_night", "holiday", "luxury")
PLAN = [CASH_OUT] * 5 + [JEWELLER] * 2 + [ALL_NIGHT] * 2 + [HOLIDAY, LUXURY] + [NORMAL] * 49


def _token(rng: random.Random) -> str:
    return f"tok{rng.randrange(10**9):09d}"


def _at(rng: random.Random, first: int, last: int) -> time:
    return time(rng.randint(first, last), rng.randint(0, 59))


def _day(rng: random.Random, kind: str, day: int) -> list[sc.DayTxn]:
    txns: list[sc.DayTxn] = []
    for _ in range(rng.randint(10, 40)):  # everyone has ordinary customers
        credit = rng.random() < (0.8 if kind == LUXURY else 0.3)
        hours = (0, 23) if kind == ALL_NIGHT else (8, 21)
        txns.append(sc.DayTxn(rng.randint(500, 50_000), rng.random() > 0.04, _token(rng),
                              "credit" if credit else "debit", _at(rng, *hours)))
    if kind == ALL_NIGHT:
        txns += [sc.DayTxn(rng.randint(500, 8_000), True, _token(rng), "debit",
                           _at(rng, 0, 4)) for _ in range(rng.randint(8, 15))]
    if kind == JEWELLER:
        txns += [sc.DayTxn(rng.randint(10, 200) * 10_000, True, _token(rng), "credit",
                           _at(rng, 10, 20)) for _ in range(rng.randint(20, 30))]
    if kind == HOLIDAY and day == 25:
        txns += [sc.DayTxn(rng.randint(500, 50_000), True, _token(rng), "debit",
                           _at(rng, 8, 21)) for _ in range(400)]
    if kind == CASH_OUT and rng.random() < 0.7:
        cards = [_token(rng) for _ in range(2)]
        for _ in range(rng.randint(5, 9)):
            card = rng.choice(cards)
            night = rng.random() < 0.5
            if rng.random() < 0.3:
                txns += [sc.DayTxn(LIMIT, False, card, "credit", _at(rng, 1, 3))] * 2
            amount = LIMIT - rng.randint(0, 10) * 10_000
            txns.append(sc.DayTxn(amount, True, card, "credit",
                                  _at(rng, 1, 4) if night else _at(rng, 10, 20)))
    return sorted(txns, key=lambda t: t.local_time)


def _month() -> dict[str, tuple[str, list[int], list[sc.DayScore]]]:
    rng = random.Random(SEED)
    out: dict[str, tuple[str, list[int], list[sc.DayScore]]] = {}
    for index, kind in enumerate(PLAN):
        history: list[int] = []
        credit = total = 0
        scores: list[sc.DayScore] = []
        for day in range(DAYS):
            txns = _day(rng, kind, day)
            result = sc.score_day(txns, LIMIT, sc.History(
                history[-sc.HISTORY_DAYS:], credit / total if total else None))
            scores.append(result)
            history.append(result.approved_minor)
            total += result.approved_minor
            credit += sum(t.amount_minor for t in txns if t.approved and t.card_kind == "credit")
        out[f"M{index:03d}"] = (kind, [s.score for s in scores], scores)
    return out


def test_planted_cash_out_merchants_are_in_the_top_decile_and_honest_ones_not_on_review(
        ) -> None:
    month = _month()
    ranked = sorted(month, key=lambda m: -max(month[m][1]))  # the month's worst day
    top = set(ranked[:len(ranked) // 10])
    planted = {m for m, (kind, _, _) in month.items() if kind == CASH_OUT}
    assert planted <= top, [(m, month[m][0], max(month[m][1])) for m in ranked[:8]]
    honest = {m for m, (kind, _, _) in month.items() if kind != CASH_OUT}
    worst_honest = max(max(month[m][1]) for m in honest)
    assert worst_honest < THRESHOLD, [(month[m][0], max(month[m][1])) for m in honest
                                      if max(month[m][1]) >= THRESHOLD]
    for merchant in planted:  # explained: the worst day names its signals and numbers
        worst = max(month[merchant][2], key=lambda s: s.score)
        assert worst.score >= THRESHOLD
        signals = {r.signal for r in worst.reasons}
        assert {"just_under_limit", "repeat_card"} <= signals
        assert all(r.numbers and r.english and r.chinese for r in worst.reasons)
    planted_honest = {kind for m, (kind, scores, _) in month.items()
                      if kind not in (CASH_OUT, NORMAL) and max(scores) > 0}
    assert planted_honest == {JEWELLER, ALL_NIGHT, HOLIDAY}  # scored, explained, not held


def test_each_signal_alone_stays_below_the_review_threshold() -> None:
    assert max(r for r in (20, 20, 20, 15, 15, 20, 15)) < THRESHOLD


def test_signals_with_their_numbers() -> None:
    night = time(2, 0)
    card = "tok"
    txns = [sc.DayTxn(LIMIT, False, card, "credit", night)] * 2 + [
        sc.DayTxn(LIMIT - 10_000, True, card, "credit", night) for _ in range(4)]
    result = sc.score_day(txns, LIMIT, sc.History([1_000] * 6, 0.1))
    by_signal = {r.signal: r for r in result.reasons}
    assert set(by_signal) == {"round_amounts", "just_under_limit", "repeat_card",
                              "night_burst", "credit_share", "volume_jump",
                              "declines_then_approval"}
    assert by_signal["repeat_card"].numbers["card_sales"] == 4
    assert by_signal["volume_jump"].numbers["ratio"] == 7960.0
    assert result.score == 125


@given(st.lists(st.tuples(st.integers(1, 10**9), st.booleans(), st.sampled_from(
    ["a", "b", None]), st.sampled_from(["credit", "debit", None]), st.times()),
    max_size=30), st.one_of(st.none(), st.integers(1, 10**9)))
def test_score_is_the_sum_of_its_reasons(rows: list[tuple[int, bool, str | None, str | None,
                                                          time]],
                                         limit: int | None) -> None:
    result = sc.score_day([sc.DayTxn(*r) for r in rows], limit, sc.History())
    assert result.score == sum(r.points for r in result.reasons)
    assert result.approved_minor == sum(r[0] for r in rows if r[1])
