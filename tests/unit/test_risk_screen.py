"""The plan's screen (``domain.risk.Screen``) folds the static rules so that a payment no
rule fires on costs a few lookups: it must say "clear" exactly when evaluating every static
rule one by one finds no hit, for any rule set and any payment of the plan's profile (the
screen is made with the profile's first payment and reused for every later one).
"""

from __future__ import annotations

from datetime import time
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from autosettle.domain import risk as rk

MID, OTHER_MID = "898310054110001", "898310054110002"
TERMINALS = ("HL000001", "HL000002")
TOKENS = ("a" * 64, "b" * 64, "c" * 64)
BINS = ("400000", "622202", "622848", "999999")
ENTRY = (None, "011", "021", "051", "071", "901", "951", "981", "991")
TIMES = ("00:00", "06:00", "12:30", "22:00", "23:59")


def _subset(pool: tuple[str, ...]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(pool), min_size=1, max_size=len(pool), unique=True)


_BLOCK = st.fixed_dictionaries({}, optional={
    "card_tokens": _subset(TOKENS),
    "bin_ranges": st.lists(st.tuples(st.sampled_from(BINS), st.sampled_from(BINS))
                           .map(lambda p: sorted(p)), min_size=1, max_size=3),
    "terminals": _subset((*TERMINALS, f"{MID}/{TERMINALS[1]}")),
    "merchants": _subset((MID, OTHER_MID)),
}).filter(bool)
_ALLOWED = st.fixed_dictionaries({}, optional={
    "txn_types": _subset(rk._TXN_TYPES),
    "card_kinds": _subset(rk._CARD_KINDS),
    "entry_modes": _subset(tuple(m.value for m in rk.EntryMode)),
    "foreign_cards": st.booleans(),
}).filter(bool)
_WINDOW = st.tuples(st.sampled_from(TIMES), st.sampled_from(TIMES)).filter(
    lambda w: w[0] != w[1]).map(lambda w: {"start": w[0], "end": w[1]})
_AMOUNT = st.integers(1, 10**7).map(lambda n: {"amount_minor": n})

_RULE = st.one_of(
    st.tuples(st.just("block"), _BLOCK), st.tuples(st.just("allowed"), _ALLOWED),
    st.tuples(st.just("time_window"), _WINDOW), st.tuples(st.just("single_max"), _AMOUNT),
    st.tuples(st.just("single_min"), _AMOUNT))


@st.composite
def _rules(draw: st.DrawFn) -> list[rk.Rule]:
    rules = []
    for n, (kind, params) in enumerate(draw(st.lists(_RULE, max_size=4))):
        scope = draw(st.sampled_from(["all", "merchant", "mcc"]))
        value = {"all": None, "merchant": MID, "mcc": "5411"}[scope]
        rules.append(rk.check_rule(rk.Rule(
            f"r{n}", 1, rk.RuleKind(kind), rk.Scope(scope), value,
            rk.Action(draw(st.sampled_from(["decline", "review", "alert"]))), params,
            draw(st.sampled_from([None, *rk._CARD_KINDS])))))
    return rules


_PAYMENT: dict[str, Any] = {
    "amount_minor": st.one_of(st.integers(1, 10**7), st.none()),
    "card_token": st.sampled_from((None, *TOKENS)),
    "bin6": st.sampled_from((None, *BINS)),
    "entry_mode": st.sampled_from(ENTRY),
    "local_time": st.one_of(st.none(), st.times().map(lambda t: t.replace(microsecond=0))),
}


def _attempt(profile: dict[str, Any], payment: dict[str, Any]) -> rk.Attempt:
    return rk.Attempt(merchant_id=MID, mcc="5411", **profile, **payment)


@settings(max_examples=1_000)
@given(_rules(), st.fixed_dictionaries({
    "terminal_id": st.sampled_from(TERMINALS),
    "merchant_type": st.sampled_from(["enterprise", "individual", "micro"]),
    "txn_type": st.one_of(st.just("sale"), st.sampled_from(rk._TXN_TYPES)),
    "card_kind": st.sampled_from((None, *rk._CARD_KINDS)),
    "merchant_limit_minor": st.one_of(st.none(), st.integers(1, 10**7)),
}), st.fixed_dictionaries(_PAYMENT), st.fixed_dictionaries(_PAYMENT),
    st.integers(0, 10**7))
def test_the_screen_is_clear_exactly_when_no_static_rule_fires(
        rules: list[rk.Rule], profile: dict[str, Any], first: dict[str, Any],
        later: dict[str, Any], allowance: int) -> None:
    rule_set = rk.RuleSet.of(rules)
    rule_set.plan(_attempt(profile, first))  # the plan and its screen are made here
    a = _attempt(profile, later)
    plan = rule_set.plan(a)
    fired = [h for r in plan.static if (h := rk._static_hit(r, a, allowance)) is not None]
    clear = plan.screen.clear(a, allowance)
    event(f"clear: {clear}")
    assert clear is (not fired), fired
    assert (rk.static_hits(rule_set, a, allowance) == []) is (not fired)


def test_a_window_wrapping_midnight_is_screened() -> None:
    rules = rk.RuleSet.of([rk.check_rule(rk.Rule(
        "night", 1, rk.RuleKind.TIME_WINDOW, rk.Scope.MCC, "5411", rk.Action.DECLINE,
        {"start": "22:00", "end": "06:00"}))])
    sale = {"terminal_id": TERMINALS[0], "merchant_type": "enterprise", "txn_type": "sale",
            "card_kind": "debit", "merchant_limit_minor": None}
    for at, clear in ((time(21, 59), True), (time(22, 0), False), (time(5, 59), False),
                      (time(6, 0), True)):
        a = _attempt(sale, {"amount_minor": 100, "local_time": at})
        assert rules.plan(a).screen.clear(a) is clear
