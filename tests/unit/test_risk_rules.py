"""The pure rule evaluation (domain/risk.py): checks of definitions, scopes and their
precedence, window edges, block lists, counter keys and limits."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from autosettle.domain import risk as rk
from autosettle.domain.calendar import SHANGHAI
from autosettle.domain.errors import ValidationError

MID, TID = "898310054110001", "HL000001"


def rule(rule_id: str, kind: str, params: dict[str, Any], scope: str = "merchant",
         value: str | None = MID, action: str = "decline", card_kind: str | None = None
         ) -> rk.Rule:
    return rk.check_rule(rk.Rule(rule_id, 1, rk.RuleKind(kind), rk.Scope(scope), value,
                                 rk.Action(action), params, card_kind))


def attempt(**over: Any) -> rk.Attempt:
    base: dict[str, Any] = dict(merchant_id=MID, terminal_id=TID, merchant_type="individual",
                                mcc="5812", txn_type="sale", amount_minor=1_000,
                                card_token="tok", card_kind="debit", card_brand="unionpay",
                                bin6="622202", entry_mode="051", local_time=time(12, 0))
    return rk.Attempt(**{**base, **over})


def codes(rules: list[rk.Rule], a: rk.Attempt) -> list[str]:
    return [h.code.value for h in rk.static_hits(rk.RuleSet.of(rules), a)]


@pytest.mark.parametrize(("kind", "params"), [
    ("single_max", {}), ("single_max", {"amount_minor": 0}),
    ("single_max", {"amount_minor": True}), ("cumulative", {"subject": "merchant"}),
    ("cumulative", {"subject": "planet", "amount_minor": 1}),
    ("velocity", {"count": 1}), ("time_window", {"start": "24:00", "end": "06:00"}),
    ("time_window", {"start": "06:00", "end": "06:00"}), ("allowed", {}),
    ("allowed", {"card_kinds": ["gold"]}), ("block", {"bin_ranges": [["6222", "6223"]]}),
    ("block", {"card_tokens": ["\x00"]}), ("block", {})])
def test_bad_definitions_are_refused(kind: str, params: dict[str, Any]) -> None:
    with pytest.raises((ValidationError, ValueError)):
        rule("r", kind, params)


def test_defaults_are_lower_for_individual_and_micro_merchants() -> None:
    limits = {t: v["single_max"] for t, v in rk.DEFAULT_LIMITS.items()}
    assert limits["micro"] < limits["individual"] < limits["enterprise"]
    assert codes([], attempt(amount_minor=5_000_001)) == ["61"]
    assert codes([], attempt(amount_minor=5_000_001, merchant_type="enterprise")) == []


def test_the_most_specific_scope_wins_and_card_kind_rules_add() -> None:
    rules = [rule("type", "single_max", {"amount_minor": 100}, "merchant_type", "individual"),
             rule("mine", "single_max", {"amount_minor": 5_000}),
             rule("credit", "single_max", {"amount_minor": 2_000}, "all", None,
                  card_kind="credit")]
    assert codes(rules, attempt(amount_minor=4_000)) == []
    assert codes(rules, attempt(amount_minor=4_000, card_kind="credit")) == ["61"]
    assert codes(rules, attempt(amount_minor=4_000, merchant_id="898310054110002")) == ["61"]
    own = attempt(amount_minor=4_000, merchant_limit_minor=3_000)  # merchant-limit: same level
    assert codes(rules, own) == ["61"]


@pytest.mark.parametrize(("start", "end", "now", "inside"), [
    ("00:00", "06:00", "00:00", True), ("00:00", "06:00", "05:59", True),
    ("00:00", "06:00", "06:00", False), ("23:00", "01:00", "23:00", True),
    ("23:00", "01:00", "00:59", True), ("23:00", "01:00", "01:00", False),
    ("23:00", "01:00", "22:59", False)])
def test_time_window_edges(start: str, end: str, now: str, inside: bool) -> None:
    window = rule("w", "time_window", {"start": start, "end": end}, "mcc", "5812")
    hours, minutes = map(int, now.split(":"))
    assert codes([window], attempt(local_time=time(hours, minutes))) == \
        (["58"] if inside else [])


def test_allowed_and_block_codes() -> None:
    allowed = rule("a", "allowed", {"entry_modes": ["chip"], "card_kinds": ["debit"],
                                    "foreign_cards": False, "txn_types": ["sale"]})
    assert codes([allowed], attempt(entry_mode="012")) == ["58"]
    assert codes([allowed], attempt(card_kind="credit")) == ["57"]
    assert codes([allowed], attempt(card_kind="foreign")) == ["62"]
    assert codes([allowed], attempt(txn_type="preauth")) == ["58"]
    block = rule("b", "block", {"bin_ranges": [["622200", "622202"]]}, "all", None)
    assert codes([block], attempt()) == ["05"]
    assert codes([block], attempt(bin6="622203")) == []


def test_review_and_alert_rank_below_decline() -> None:
    hits = rk.static_hits(rk.RuleSet.of([
        rule("r", "single_max", {"amount_minor": 10}, action="review"),
        rule("x", "single_min", {"amount_minor": 10_000})]), attempt())
    outcome = rk.decide(hits)
    assert outcome.decision is rk.Decision.DECLINE and outcome.fired == ["r@1", "x@1"]
    assert rk.decide(hits[1:]).decision is rk.Decision.REVIEW


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
       st.one_of(st.none(), st.text("0123456789abcdef", min_size=1, max_size=64)))
def test_counter_keys_are_sorted_and_follow_day_and_month(day: date,
                                                          token: str | None) -> None:
    keys = rk.counter_keys(MID, TID, token, day)
    assert [k.pair for k in keys] == sorted(k.pair for k in keys)
    assert len(keys) == (6 if token else 4)
    assert {k.bucket for k in keys} == {f"D{day.isoformat()}", f"M{day.isoformat()[:7]}"}


@pytest.mark.parametrize(("today", "now", "month_count", "minutes", "cannot"), [
    (date(2026, 9, 18), datetime(2026, 9, 18, 4, tzinfo=UTC), 5, 10, True),
    (date(2026, 9, 18), datetime(2026, 9, 18, 4, tzinfo=UTC), 6, 10, False),  # over count
    (date(2026, 9, 30), datetime(2026, 9, 30, 4, tzinfo=UTC), 1, 10, False),  # month's end
    (date(2026, 9, 1), datetime(2026, 8, 31, 16, 5, tzinfo=UTC), 1, 10, False),  # August
    (date(2026, 9, 1), datetime(2026, 8, 31, 16, 15, tzinfo=UTC), 1, 10, True),
])
def test_velocity_is_skipped_only_while_the_month_count_bounds_it(
        today: date, now: datetime, month_count: int, minutes: int, cannot: bool) -> None:
    token = "ab" * 32
    velocity = rule("v", "velocity", {"count": 5, "minutes": minutes})
    totals = {(f"c:{token}", f"M{today.isoformat()[:7]}"): (100, month_count)}
    assert rk.velocity_cannot_fire([velocity], token, today, now, totals) is cannot
    assert not rk.velocity_cannot_fire([velocity], token, today, now, {})


_BIN = st.integers(0, 999_999).map(lambda n: f"{n:06d}")


@given(st.lists(st.tuples(_BIN, _BIN).map(sorted), max_size=12), _BIN)
def test_bin_ranges_find_a_bin_exactly_when_a_range_holds_it(
        ranges: list[list[str]], bin6: str) -> None:
    """Bisection over the starts, with the highest end so far: overlapping and nested
    ranges included."""
    found = bin6 in rk.BinRanges.of(ranges)
    assert found is any(lo <= bin6 <= hi for lo, hi in ranges)
    for lo, hi in ranges:
        assert lo in rk.BinRanges.of(ranges) and hi in rk.BinRanges.of(ranges)


def _cannot_fire_rule_by_rule(velocity: list[rk.Rule], token: str, today: date,
                              now: datetime, used: int) -> bool:
    """The shortcut's definition, every rule's window and count checked one by one."""
    if (today + timedelta(days=1)).month != today.month:
        return False
    for r in velocity:
        start = (now - timedelta(minutes=int(r.params["minutes"]))).astimezone(SHANGHAI)
        if (start.year, start.month) != (today.year, today.month) or \
                used > int(r.params["count"]):
            return False
    return True


@given(st.integers(2000, 2099), st.integers(1, 12), st.integers(-24 * 60, 24 * 60),
       st.booleans(), st.integers(0, 8),
       st.lists(st.tuples(st.integers(1, 50), st.integers(1, 24 * 60)), min_size=1,
                max_size=4))
@example(2026, 10, 60, False, 1, [(5, 30), (5, 120)])  # only the longer window crosses
@example(2026, 10, 24 * 60, False, 5, [(50, 30), (2, 30)])  # only the smaller count is over
def test_velocity_shortcut_checks_the_longest_window_and_smallest_count_only(
        year: int, month: int, minutes: int, after_cutoff: bool, used: int,
        limits: list[tuple[int, int]]) -> None:
    """The business date is the local date, or the next one after the cut-off: then the
    longest window alone decides whether every window starts in the business month. Now
    is within a day of a local month's start, where windows cross months."""
    now = datetime(year, month, 1, tzinfo=SHANGHAI).astimezone(UTC) + \
        timedelta(minutes=minutes)
    token = "cd" * 32
    today = now.astimezone(SHANGHAI).date() + timedelta(days=int(after_cutoff))
    velocity = [rule(f"v{n}", "velocity", {"count": count, "minutes": minutes})
                for n, (count, minutes) in enumerate(limits)]
    totals = {(f"c:{token}", f"M{today.isoformat()[:7]}"): (100, used)}
    assert rk.velocity_cannot_fire(velocity, token, today, now, totals) is \
        _cannot_fire_rule_by_rule(velocity, token, today, now, used)


@given(st.integers(1, 10**12 - 1), st.integers(0, 10**12), st.integers(0, 10**6))
def test_counter_hit_iff_over_the_limit(limit: int, after: int, allowance: int) -> None:
    cumulative = rule("c", "cumulative", {"subject": "merchant", "period": "day",
                                          "amount_minor": limit})
    rules = rk.RuleSet.of([cumulative])
    keys = rk.counter_keys(MID, TID, None, date(2026, 9, 18))
    [limited] = [x for x in rk.counter_limits(rules, attempt(), keys, allowance)
                 if x.amount_minor is not None and x.key.period is rk.Period.DAY]
    assert (rk.counter_hit(limited, after, 1) is not None) == (after > limit + allowance)


_LIMIT = st.one_of(st.none(), st.integers(1, 10**6))


@given(st.lists(st.tuples(st.sampled_from(["merchant", "terminal", "card"]),
                          st.sampled_from(["day", "month"]), _LIMIT, _LIMIT),
                max_size=6),
       st.integers(0, 10**4), st.integers(1, 2 * 10**6), st.integers(1, 3))
def test_fixed_limits_are_the_merchants_and_terminals_and_fit_iff_no_counter_is_hit(
        limits: list[tuple[str, str, int | None, int | None]], allowance: int, amount: int,
        count: int) -> None:
    """A sale's merchant and terminal counters, made once per plan and date: the same
    limits as counter_limits gives their keys, and ``fit`` is true exactly when none of
    the four, fresh, would refuse the amount and count."""
    rules = rk.RuleSet.of([
        rule(f"c{n}", "cumulative", {"subject": subject, "period": period,
                                     **({"amount_minor": a} if a else {}),
                                     **({"count": c} if c else {"count": 10**6})})
        for n, (subject, period, a, c) in enumerate(limits)])
    day = date(2026, 9, 18)
    keys = rk.counter_keys(MID, TID, "tok", day)
    fixed = rk.fixed_limits(rules, attempt(), day, allowance)
    assert rk.fixed_limits(rules, attempt(), day, allowance) is fixed  # made once
    assert list(fixed.limits) == rk.counter_limits(rules, attempt(), keys[-4:], allowance)
    assert [lim.key for lim in fixed.limits] == keys[-4:]
    assert fixed.fit(amount, count) is all(
        rk.counter_hit(lim, amount, count) is None for lim in fixed.limits)
    merchant_day, merchant_month = fixed.merchant
    assert fixed.shard_limits.as_tuple() == (merchant_day.amount_minor, merchant_day.count,
                                             merchant_month.amount_minor,
                                             merchant_month.count)


def test_money_going_back_is_never_blocked() -> None:
    block = rule("b", "block", {"merchants": [MID]}, "all", None)
    allowed = rule("a", "allowed", {"card_kinds": ["debit"], "txn_types": ["sale"]})
    assert codes([block], attempt(txn_type="refund", card_kind="credit")) == []
    assert codes([allowed], attempt(txn_type="refund", card_kind="credit")) == ["58"]
    assert codes([block], attempt()) == ["05"]


def test_a_counter_key_with_a_comma_is_refused_before_it_reaches_postgresql() -> None:
    """The PostgreSQL reservation sends the counter keys as one comma-separated list."""
    from autosettle.store.risk import _joined

    assert _joined(["m:1", None, 5]) == "m:1,,5"
    with pytest.raises(ValueError, match="comma"):
        _joined(["m:1,2", "t:3"])


def test_the_postgresql_reservation_stays_within_what_psycopg_caches() -> None:
    """psycopg keeps a statement's parsed form (and so prepares it) only up to 50
    parameters and 4,096 characters; past either, every sale re-parses it (0.3 ms)."""
    import re

    from psycopg import _queries

    from autosettle.store.risk import _PG_RESERVE_WITH_RECORD

    names = set(re.findall(r"%\((\w+)\)s", _PG_RESERVE_WITH_RECORD))
    assert len(names) <= _queries.MAX_CACHED_STATEMENT_PARAMS
    assert len(_PG_RESERVE_WITH_RECORD) <= _queries.MAX_CACHED_STATEMENT_LENGTH
