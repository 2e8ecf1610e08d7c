"""Risk control rules and their evaluation (pure; docs/risk.md).

A :class:`Rule` is one versioned definition: a *kind* (what it checks), a *scope* (whom it
applies to: everyone, a merchant type, an MCC, a merchant or a terminal), optionally a card
kind (debit / credit), an *action* (decline, review, alert) and its parameters. Operators edit
rules; every edit is a new version, and every decision names the versions that fired.

Built-in defaults (:data:`DEFAULT_LIMITS`, by merchant type) are rules of version 0 with
fixed ids (``default:<type>:<name>``): a stored version of the same id replaces them. A
merchant's own per-sale limit (``merchants.single_limit_minor``) is the merchant-scope
``single_max`` rule ``merchant-limit`` (one mechanism: the rules).

Which rules apply, for each *slot* (a kind, plus the card kind and, for cumulative limits,
the subject and period): the rules of the most specific scope that has any (terminal >
merchant > MCC > merchant type > everyone); among those, the strictest. So a merchant-scope
rule can raise a default, and a credit-card rule adds to the generic one.

Cumulative limits (per business day and month, per merchant, terminal and card token) are
checked by the store, atomically with the reservation of room (:class:`CounterLimit`); the
rest is decided here from one :class:`Attempt`.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any

from autosettle.domain.calendar import SHANGHAI
from autosettle.domain.errors import ValidationError
from autosettle.domain.merchants import MerchantType
from autosettle.domain.response_codes import ResponseCode
from autosettle.domain.risk_shards import Limits

RC = ResponseCode
AMOUNT_LIMIT_MAX = 10**12 - 1
COUNT_LIMIT_MAX = 1_000_000
VELOCITY_MINUTES_MAX = 7 * 24 * 60
LIST_ITEMS_MAX = 10_000
MERCHANT_LIMIT_RULE = "merchant-limit"
COUNTED_TYPES = frozenset({"sale", "preauth"})
"""Types that take room in the cumulative counters (and in velocity)."""
RETURNS_MONEY = frozenset({"void", "refund", "preauth_void", "completion_void"})
"""Types that give money back: block lists and allowed methods never stop them (only an
``allowed`` rule's ``txn_types`` does)."""


class RuleKind(StrEnum):
    SINGLE_MAX = "single_max"  # params: amount_minor
    SINGLE_MIN = "single_min"  # params: amount_minor
    CUMULATIVE = "cumulative"  # params: subject, period, amount_minor?, count?
    VELOCITY = "velocity"  # params: count, minutes, anywhere (bool)
    TIME_WINDOW = "time_window"  # params: start, end ("HH:MM", Shanghai; closed window)
    ALLOWED = "allowed"  # params: txn_types?, card_kinds?, entry_modes?, foreign_cards?
    BLOCK = "block"  # params: card_tokens?, bin_ranges?, terminals?, merchants?


class Scope(StrEnum):
    ALL = "all"
    MERCHANT_TYPE = "merchant_type"
    MCC = "mcc"
    MERCHANT = "merchant"
    TERMINAL = "terminal"  # scope_value "MERCHANTID/TERMINAL"


SPECIFICITY = {Scope.TERMINAL: 4, Scope.MERCHANT: 3, Scope.MCC: 2, Scope.MERCHANT_TYPE: 1,
               Scope.ALL: 0}


class Action(StrEnum):
    DECLINE = "decline"
    REVIEW = "review"  # approve, hold the settlement item until an operator releases it
    ALERT = "alert"  # approve, record and tell operators


class Decision(StrEnum):
    APPROVE = "approve"
    DECLINE = "decline"
    REVIEW = "review"
    ALERT = "alert"


class Subject(StrEnum):
    MERCHANT = "merchant"
    TERMINAL = "terminal"
    CARD = "card"


class Period(StrEnum):
    DAY = "day"
    MONTH = "month"


class EntryMode(StrEnum):
    MANUAL = "manual"
    SWIPE = "swipe"
    CHIP = "chip"
    CONTACTLESS = "contactless"
    OTHER = "other"


def entry_mode_of(pos_entry_mode: str | None) -> EntryMode | None:
    """ISO 8583 field 22's first two digits: 01 manual key entry, 02/90 magnetic stripe,
    05/95 chip, 07/91/98 contactless; None when the terminal did not say."""
    if not pos_entry_mode:
        return None
    return _ENTRY_MODES.get(pos_entry_mode[:2], EntryMode.OTHER)


_ENTRY_MODES = {"01": EntryMode.MANUAL, "02": EntryMode.SWIPE, "90": EntryMode.SWIPE,
                "05": EntryMode.CHIP, "95": EntryMode.CHIP, "07": EntryMode.CONTACTLESS,
                "91": EntryMode.CONTACTLESS, "98": EntryMode.CONTACTLESS}


# -- rules ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class BinRanges:
    """BIN ranges (six digits, both ends included), searched by bisection: the ranges'
    starts in order and, at each, the highest end of the ranges starting there or before
    (so overlapping ranges need no merging)."""

    starts: tuple[str, ...] = ()
    reach: tuple[str, ...] = ()

    @classmethod
    def of(cls, ranges: Iterable[Sequence[str]]) -> BinRanges:
        ordered = sorted((lo, hi) for lo, hi in ranges)
        reach: list[str] = []
        for _, hi in ordered:
            reach.append(max(hi, reach[-1]) if reach else hi)
        return cls(tuple(lo for lo, _ in ordered), tuple(reach))

    def __contains__(self, bin6: object) -> bool:
        if not isinstance(bin6, str):
            return False
        at = bisect_right(self.starts, bin6)
        return at > 0 and self.reach[at - 1] >= bin6


@dataclass(frozen=True, slots=True)
class Rule:
    rule_id: str
    version: int
    kind: RuleKind
    scope: Scope
    scope_value: str | None
    action: Action
    params: Mapping[str, Any]
    card_kind: str | None = None
    active: bool = True
    note: str = ""
    lookup: Mapping[str, frozenset[str]] = field(default_factory=dict, compare=False,
                                                 repr=False)
    """Block lists as sets (built once per rule version, not per payment)."""
    bins: BinRanges = field(default_factory=BinRanges, compare=False, repr=False)
    """A block rule's BIN ranges, searchable (built once per rule version)."""

    def __post_init__(self) -> None:
        if self.kind is RuleKind.BLOCK and not self.lookup:
            object.__setattr__(self, "lookup", {
                name: frozenset(self.params.get(name, ()))
                for name in ("card_tokens", "terminals", "merchants")})
            object.__setattr__(self, "bins", BinRanges.of(self.params.get("bin_ranges", ())))

    @property
    def ref(self) -> str:
        """``id@version``: how a decision names the rule that fired."""
        return f"{self.rule_id}@{self.version}"

    def params_json(self) -> str:
        return json.dumps(dict(self.params), sort_keys=True, ensure_ascii=False)


def _int(params: Mapping[str, Any], name: str, low: int, high: int,
         required: bool = True) -> int | None:
    value = params.get(name)
    if value is None:
        if required:
            raise ValidationError(f"rule parameter {name} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"rule parameter {name} must be an integer {low}..{high}")
    return value


def _str_list(params: Mapping[str, Any], name: str,
              allowed: Iterable[str] | None = None) -> list[str] | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > LIST_ITEMS_MAX or not all(
            isinstance(v, str) and v.isascii() and v.isprintable() and 0 < len(v) <= 64
            for v in value):
        raise ValidationError(f"rule parameter {name} must be a list of short ASCII texts")
    if allowed is not None:
        bad = sorted(set(value) - set(allowed))
        if bad:
            raise ValidationError(f"rule parameter {name}: unknown {', '.join(bad)}")
    return sorted(set(value))


def parse_hhmm(text: Any, name: str) -> time:
    if not isinstance(text, str) or len(text) != 5 or text[2] != ":" or \
            not (text[:2] + text[3:]).isdigit() or not text.isascii():
        raise ValidationError(f"rule parameter {name} must be HH:MM")
    hours, minutes = int(text[:2]), int(text[3:])
    if hours > 23 or minutes > 59:
        raise ValidationError(f"rule parameter {name} must be HH:MM")
    return time(hours, minutes)


_TXN_TYPES = ("sale", "void", "refund", "preauth", "preauth_void", "completion",
              "completion_void", "balance_inquiry")
_CARD_KINDS = ("debit", "credit", "foreign", "other")


def check_rule(rule: Rule) -> Rule:
    """The rule, with its parameters checked and normalised; ``validation_failed`` else."""
    p = dict(rule.params)
    kind = RuleKind(rule.kind)
    scope = Scope(rule.scope)
    if scope is Scope.ALL and rule.scope_value is not None:
        raise ValidationError("a rule for everyone has no scope value")
    if scope is not Scope.ALL and not rule.scope_value:
        raise ValidationError(f"a {scope} rule needs a scope value")
    if scope is Scope.MERCHANT_TYPE:
        MerchantType(rule.scope_value or "")
    if scope is Scope.TERMINAL and (rule.scope_value or "").count("/") != 1:
        raise ValidationError("a terminal rule's scope value is MERCHANTID/TERMINALID")
    if rule.card_kind is not None and rule.card_kind not in _CARD_KINDS:
        raise ValidationError("card_kind must be debit, credit, foreign or other")
    out: dict[str, Any]
    if kind in (RuleKind.SINGLE_MAX, RuleKind.SINGLE_MIN):
        out = {"amount_minor": _int(p, "amount_minor", 1, AMOUNT_LIMIT_MAX)}
    elif kind is RuleKind.CUMULATIVE:
        subject = Subject(p.get("subject", "merchant"))
        period = Period(p.get("period", "day"))
        amount = _int(p, "amount_minor", 1, AMOUNT_LIMIT_MAX, required=False)
        count = _int(p, "count", 1, COUNT_LIMIT_MAX, required=False)
        if amount is None and count is None:
            raise ValidationError("a cumulative rule needs amount_minor or count")
        if rule.card_kind is not None:
            raise ValidationError("cumulative rules count every card kind")
        out = {"subject": subject.value, "period": period.value}
        out |= {k: v for k, v in (("amount_minor", amount), ("count", count)) if v is not None}
    elif kind is RuleKind.VELOCITY:
        anywhere = p.get("anywhere", False)
        if not isinstance(anywhere, bool):
            raise ValidationError("rule parameter anywhere must be true or false")
        out = {"count": _int(p, "count", 1, COUNT_LIMIT_MAX),
               "minutes": _int(p, "minutes", 1, VELOCITY_MINUTES_MAX), "anywhere": anywhere}
    elif kind is RuleKind.TIME_WINDOW:
        start, end = parse_hhmm(p.get("start"), "start"), parse_hhmm(p.get("end"), "end")
        if start == end:
            raise ValidationError("a time window must not be empty")
        out = {"start": p["start"], "end": p["end"]}
    elif kind is RuleKind.ALLOWED:
        out = {}
        for name, allowed in (("txn_types", _TXN_TYPES), ("card_kinds", _CARD_KINDS),
                              ("entry_modes", tuple(EntryMode))):
            values = _str_list(p, name, allowed)
            if values is not None:
                out[name] = values
        if "foreign_cards" in p:
            if not isinstance(p["foreign_cards"], bool):
                raise ValidationError("rule parameter foreign_cards must be true or false")
            out["foreign_cards"] = p["foreign_cards"]
        if not out:
            raise ValidationError("an allowed rule needs txn_types, card_kinds, entry_modes "
                                  "or foreign_cards")
    else:
        out = {}
        for name in ("card_tokens", "terminals", "merchants"):
            values = _str_list(p, name)
            if values is not None:
                out[name] = values
        ranges = p.get("bin_ranges")
        if ranges is not None:
            if not isinstance(ranges, list) or len(ranges) > LIST_ITEMS_MAX:
                raise ValidationError("bin_ranges must be a list of [low, high] 6-digit BINs")
            checked = []
            for pair in ranges:
                if not (isinstance(pair, list) and len(pair) == 2 and all(
                        isinstance(b, str) and len(b) == 6 and b.isdigit() and b.isascii()
                        for b in pair) and pair[0] <= pair[1]):
                    raise ValidationError("bin_ranges must be a list of [low, high] 6-digit "
                                          "BINs, low <= high")
                checked.append([pair[0], pair[1]])
            out["bin_ranges"] = sorted(checked)
        if not out:
            raise ValidationError("a block rule needs card_tokens, bin_ranges, terminals or "
                                  "merchants")
    return Rule(rule.rule_id, rule.version, kind, scope, rule.scope_value, Action(rule.action),
                out, rule.card_kind, rule.active, rule.note)


# -- built-in defaults by merchant type -----------------------------------------------------

DEFAULT_LIMITS: Mapping[MerchantType, Mapping[str, int]] = {
    # fen. Individual (个体户) and micro (小微) merchants get lower limits than enterprises.
    MerchantType.ENTERPRISE: {"single_max": 100_000_000},  # 1,000,000.00 CNY; no day cap
    MerchantType.INDIVIDUAL: {"single_max": 5_000_000, "day_amount": 20_000_000,
                              "month_amount": 300_000_000},
    MerchantType.MICRO: {"single_max": 2_000_000, "day_amount": 10_000_000,
                         "month_amount": 100_000_000},
}


def default_rules() -> list[Rule]:
    rules: list[Rule] = []
    for mtype, limits in DEFAULT_LIMITS.items():
        base = f"default:{mtype.value}:"
        rules.append(Rule(base + "single_max", 0, RuleKind.SINGLE_MAX, Scope.MERCHANT_TYPE,
                          mtype.value, Action.DECLINE,
                          {"amount_minor": limits["single_max"]}))
        for period in (Period.DAY, Period.MONTH):
            amount = limits.get(f"{period.value}_amount")
            if amount is not None:
                rules.append(Rule(f"{base}{period.value}_amount", 0, RuleKind.CUMULATIVE,
                                  Scope.MERCHANT_TYPE, mtype.value, Action.DECLINE,
                                  {"subject": "merchant", "period": period.value,
                                   "amount_minor": amount}))
    return rules


# -- the set of rules in force ----------------------------------------------------------------

PLANS_CACHED_MAX = 10_000


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The active rules (stored versions replacing defaults of the same id), indexed by
    kind and by scope; the rules in force per payment *profile* (merchant, terminal, type,
    MCC, card kind, transaction type) are worked out once per rule set (:meth:`plan`)."""

    rules: tuple[Rule, ...]
    by_kind: Mapping[RuleKind, tuple[Rule, ...]] = field(default_factory=dict)
    by_scope: Mapping[tuple[Scope, str | None], tuple[Rule, ...]] = field(default_factory=dict)
    plans: dict[tuple[Any, ...], Plan] = field(default_factory=dict, compare=False,
                                               repr=False)

    @classmethod
    def of(cls, stored: Iterable[Rule]) -> RuleSet:
        latest: dict[str, Rule] = {r.rule_id: r for r in default_rules()}
        for rule in stored:
            if rule.rule_id not in latest or latest[rule.rule_id].version <= rule.version:
                latest[rule.rule_id] = rule
        active = tuple(r for r in latest.values() if r.active)
        by_kind: dict[RuleKind, list[Rule]] = {}
        by_scope: dict[tuple[Scope, str | None], list[Rule]] = {}
        for rule in active:
            by_kind.setdefault(rule.kind, []).append(rule)
            by_scope.setdefault((rule.scope, rule.scope_value), []).append(rule)
        return cls(active, {k: tuple(v) for k, v in by_kind.items()},
                   {k: tuple(v) for k, v in by_scope.items()})

    def of_kind(self, kind: RuleKind) -> tuple[Rule, ...]:
        return self.by_kind.get(kind, ())

    def candidates(self, a: Attempt) -> list[Rule]:
        """The rules whose scope names this payment (card kind not yet checked)."""
        found: list[Rule] = []
        for key in ((Scope.ALL, None), (Scope.MERCHANT_TYPE, a.merchant_type),
                    (Scope.MCC, a.mcc), (Scope.MERCHANT, a.merchant_id),
                    (Scope.TERMINAL, f"{a.merchant_id}/{a.terminal_id}")):
            found.extend(self.by_scope.get(key, ()))
        if a.merchant_limit_minor is not None:
            found.append(merchant_limit_rule(a.merchant_id, a.merchant_limit_minor))
        return found

    def plan(self, a: Attempt) -> Plan:
        """The rules in force for ``a``'s profile, split by how they are checked."""
        key = (a.merchant_id, a.terminal_id, a.merchant_type, a.mcc, a.card_kind,
               a.txn_type, a.merchant_limit_minor)
        found = self.plans.get(key)
        if found is None:
            forced = in_force(self.candidates(a), a)
            cumulative = tuple(r for r in forced if r.kind is RuleKind.CUMULATIVE)
            static = tuple(r for r in forced if r.kind not in (RuleKind.VELOCITY,
                                                               RuleKind.CUMULATIVE))
            found = Plan(
                static=static,
                screen=Screen.of(static, a),
                velocity=tuple(r for r in forced if r.kind is RuleKind.VELOCITY),
                cumulative=cumulative,
                soft_cumulative=tuple(r for r in cumulative if r.action is not Action.DECLINE))
            if len(self.plans) >= PLANS_CACHED_MAX:
                self.plans.clear()
            self.plans[key] = found
        return found


@dataclass(frozen=True, slots=True)
class Plan:
    static: tuple[Rule, ...]
    screen: Screen
    velocity: tuple[Rule, ...]
    cumulative: tuple[Rule, ...]
    soft_cumulative: tuple[Rule, ...] = ()
    """The cumulative rules that review or alert (no decline)."""
    limits: dict[tuple[str, str], _SlotLimit] = field(default_factory=dict, compare=False,
                                                      repr=False)
    """The decline limits per (subject, period), worked out once (:func:`counter_limits`)."""
    fixed: dict[tuple[date, int], FixedLimits] = field(default_factory=dict, compare=False,
                                                       repr=False)
    """The merchant's and terminal's counters with their limits, per business date and
    allowance, made once (:func:`fixed_limits`; the card's change with every card)."""


@dataclass(frozen=True, slots=True)
class _SlotLimit:
    amount_minor: int | None
    count: int | None
    amount_rules: tuple[Rule, ...]
    count_rules: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class Screen:
    """A plan's static rules folded for the common case, a payment none of them fires on
    (:func:`static_hits` evaluates them one by one only when :meth:`clear` says no). What the
    plan's profile fixes (merchant, terminal, transaction type, card kind: block lists of
    terminals and merchants, allowed types and card kinds) is decided once, when the plan is
    made; what varies per payment is a few lookups: the card and BIN against every block
    list at once, the entry mode against every allowed list, the amount against the
    smallest maximum and the largest minimum, the local time against the windows. Exact:
    :meth:`clear` is true if and only if no static rule fires (a property test checks it)."""

    profile_clear: bool
    card_tokens: frozenset[str]
    bins: BinRanges
    entry_modes: frozenset[str] | None
    single_max: int | None
    single_min: int | None
    windows: tuple[tuple[time, time], ...]

    @classmethod
    def of(cls, static: Sequence[Rule], a: Attempt) -> Screen:
        """The screen of a plan's ``static`` rules, made with the plan's ``a`` (only its
        profile is read)."""
        profile = replace(a, card_token=None, bin6=None, entry_mode=None)
        profile_clear = True
        tokens: set[str] = set()
        ranges: list[Sequence[str]] = []
        modes: set[str] | None = None
        maxima: list[int] = []
        minima: list[int] = []
        windows: list[tuple[time, time]] = []
        for rule in static:
            match rule.kind:
                case RuleKind.BLOCK:
                    if a.txn_type not in RETURNS_MONEY and _block_hit(rule, profile):
                        profile_clear = False
                    tokens.update(rule.lookup["card_tokens"])
                    ranges.extend(rule.params.get("bin_ranges", ()))
                case RuleKind.ALLOWED:
                    if _allowed_hit(rule, profile) is not None:
                        profile_clear = False
                    allowed = rule.params.get("entry_modes")
                    if allowed is not None:
                        modes = set(allowed) if modes is None else modes & set(allowed)
                case RuleKind.TIME_WINDOW:
                    windows.append((parse_hhmm(rule.params["start"], "start"),
                                    parse_hhmm(rule.params["end"], "end")))
                case RuleKind.SINGLE_MAX:
                    maxima.append(int(rule.params["amount_minor"]))
                case RuleKind.SINGLE_MIN:
                    minima.append(int(rule.params["amount_minor"]))
                case _:
                    pass
        return cls(profile_clear, frozenset(tokens), BinRanges.of(ranges),
                   None if modes is None else frozenset(modes), min(maxima, default=None),
                   max(minima, default=None), tuple(windows))

    def clear(self, a: Attempt, allowance_minor: int = 0) -> bool:
        """Whether no static rule of the plan fires on ``a`` (a payment of its profile)."""
        if not self.profile_clear:
            return False
        if a.txn_type not in RETURNS_MONEY:
            if a.card_token in self.card_tokens or a.bin6 in self.bins:  # None in neither
                return False
            if self.entry_modes is not None:
                mode = entry_mode_of(a.entry_mode)
                if mode is not None and mode.value not in self.entry_modes:
                    return False
        amount = a.amount_minor
        if amount is not None and a.txn_type in _LIMITED_TYPES:
            if self.single_max is not None and amount > self.single_max and \
                    amount > allowance_minor:
                return False
            if self.single_min is not None and amount < self.single_min:
                return False
        if self.windows and a.local_time is not None and a.txn_type in COUNTED_TYPES:
            return not any(_in_window(a.local_time, start, end)
                           for start, end in self.windows)
        return True


@dataclass(frozen=True, slots=True)
class Attempt:
    """What a payment is checked on (no card data beyond the token and the BIN)."""

    merchant_id: str
    terminal_id: str
    merchant_type: str
    mcc: str
    txn_type: str
    amount_minor: int | None
    card_token: str | None = None
    card_kind: str | None = None
    card_brand: str | None = None
    bin6: str | None = None
    entry_mode: str | None = None
    local_time: time | None = None
    merchant_limit_minor: int | None = None


def _applies(rule: Rule, a: Attempt) -> bool:
    if rule.card_kind is not None and rule.card_kind != a.card_kind:
        return False
    match rule.scope:
        case Scope.ALL:
            return True
        case Scope.MERCHANT_TYPE:
            return rule.scope_value == a.merchant_type
        case Scope.MCC:
            return rule.scope_value == a.mcc
        case Scope.MERCHANT:
            return rule.scope_value == a.merchant_id
        case _:
            return rule.scope_value == f"{a.merchant_id}/{a.terminal_id}"


def _slot(rule: Rule) -> tuple[Any, ...]:
    if rule.kind is RuleKind.CUMULATIVE:
        return (rule.kind, rule.params["subject"], rule.params["period"], rule.action)
    return (rule.kind, rule.card_kind, rule.action)


def in_force(rules: Iterable[Rule], a: Attempt) -> list[Rule]:
    """The rules that apply to ``a``: per slot, those of the most specific scope present."""
    best: dict[tuple[Any, ...], tuple[int, list[Rule]]] = {}
    for rule in rules:
        if not _applies(rule, a):
            continue
        slot, level = _slot(rule), SPECIFICITY[rule.scope]
        known = best.get(slot)
        if known is None or level > known[0]:
            best[slot] = (level, [rule])
        elif level == known[0]:
            known[1].append(rule)
    return [r for _, found in best.values() for r in found]


def merchant_limit_rule(merchant_id: str, limit_minor: int) -> Rule:
    return Rule(MERCHANT_LIMIT_RULE, 1, RuleKind.SINGLE_MAX, Scope.MERCHANT, merchant_id,
                Action.DECLINE, {"amount_minor": limit_minor})


# -- hits and outcomes ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Hit:
    """A rule that fired: what it does, the code and the cashier's reason in both languages."""

    rule: Rule
    code: ResponseCode
    reason: str  # machine-readable, fits transactions.refusal_reason
    english: str
    chinese: str

    @property
    def action(self) -> Action:
        return self.rule.action


def _yuan(minor: int) -> str:
    return f"{minor // 100:,}.{minor % 100:02d}"


def _in_window(now: time, start: time, end: time) -> bool:
    """``start`` inclusive, ``end`` exclusive; a window may wrap past midnight."""
    if start < end:
        return start <= now < end
    return now >= start or now < end


def static_hits(rules: RuleSet, a: Attempt, allowance_minor: int = 0) -> list[Hit]:
    """Every hit that needs no counter: block lists, allowed methods and types, time
    windows, single-transaction limits (``allowance_minor``: a pre-registered amount lifts
    the single maximum up to it). Velocity and cumulative limits are checked elsewhere."""
    plan = rules.plan(a)
    if plan.screen.clear(a, allowance_minor):
        return []
    hits: list[Hit] = []
    for rule in plan.static:
        hit = _static_hit(rule, a, allowance_minor)
        if hit is not None:
            hits.append(hit)
    return sorted(hits, key=_hit_order)


_KIND_ORDER = {RuleKind.BLOCK: 0, RuleKind.ALLOWED: 1, RuleKind.TIME_WINDOW: 2,
               RuleKind.SINGLE_MIN: 3, RuleKind.SINGLE_MAX: 4, RuleKind.VELOCITY: 5,
               RuleKind.CUMULATIVE: 6}


def _hit_order(hit: Hit) -> tuple[int, int, str]:
    action_order = {Action.DECLINE: 0, Action.REVIEW: 1, Action.ALERT: 2}
    return (action_order[hit.action], _KIND_ORDER[hit.rule.kind], hit.rule.ref)


_LIMITED_TYPES = frozenset({"sale", "preauth", "completion"})
"""The types a single-transaction limit applies to."""


def _static_hit(rule: Rule, a: Attempt, allowance: int) -> Hit | None:
    p = rule.params
    match rule.kind:
        case RuleKind.BLOCK:
            return None if a.txn_type in RETURNS_MONEY else _block_hit(rule, a)
        case RuleKind.ALLOWED:
            return _allowed_hit(rule, a)
        case RuleKind.TIME_WINDOW:
            if a.local_time is None or a.txn_type not in COUNTED_TYPES:
                return None
            if _in_window(a.local_time, parse_hhmm(p["start"], "start"),
                          parse_hhmm(p["end"], "end")):
                return Hit(rule, RC.NOT_PERMITTED_TO_TERMINAL, "time_window",
                           f"no sales between {p['start']} and {p['end']} for this merchant",
                           f"该商户 {p['start']}-{p['end']} 时段不允许交易")
            return None
        case RuleKind.SINGLE_MAX:
            limit = int(p["amount_minor"])
            if a.txn_type in _LIMITED_TYPES and a.amount_minor is not None and \
                    a.amount_minor > limit and a.amount_minor > allowance:
                return Hit(rule, RC.EXCEEDS_AMOUNT_LIMIT, "over_single_limit",
                           f"amount exceeds the single-transaction limit of "
                           f"{_yuan(limit)} CNY",
                           f"超过单笔交易限额 {_yuan(limit)} 元")
            return None
        case RuleKind.SINGLE_MIN:
            limit = int(p["amount_minor"])
            if a.txn_type in _LIMITED_TYPES and a.amount_minor is not None and \
                    a.amount_minor < limit:
                return Hit(rule, RC.EXCEEDS_AMOUNT_LIMIT, "under_single_min",
                           f"amount is below the minimum of {_yuan(limit)} CNY",
                           f"低于单笔最低金额 {_yuan(limit)} 元")
            return None
        case _:
            return None


def _block_hit(rule: Rule, a: Attempt) -> Hit | None:
    sets = rule.lookup
    what: str | None = None
    terminals = sets["terminals"]
    if a.card_token is not None and a.card_token in sets["card_tokens"]:
        what = "card"
    elif a.bin6 is not None and a.bin6 in rule.bins:
        what = "bin"
    elif terminals and (f"{a.merchant_id}/{a.terminal_id}" in terminals or
                        a.terminal_id in terminals):
        what = "terminal"
    elif a.merchant_id in sets["merchants"]:
        what = "merchant"
    if what is None:
        return None
    zh = {"card": "卡片", "bin": "卡号段", "terminal": "终端", "merchant": "商户"}[what]
    return Hit(rule, RC.DO_NOT_HONOUR, f"blocked_{what}", f"this {what} is on a block list",
               f"该{zh}已被列入黑名单")


def _allowed_hit(rule: Rule, a: Attempt) -> Hit | None:
    p = rule.params
    types = p.get("txn_types")
    if types is not None and a.txn_type not in types:
        return Hit(rule, RC.NOT_PERMITTED_TO_TERMINAL, "type_not_authorised",
                   f"{a.txn_type} is not authorised for this merchant",
                   "该商户未开通此交易类型")
    if a.txn_type in RETURNS_MONEY:
        return None
    if p.get("foreign_cards") is False and a.card_kind == "foreign":
        return Hit(rule, RC.RESTRICTED_CARD, "foreign_card_not_authorised",
                   "foreign cards are not authorised for this merchant",
                   "该商户不受理境外卡")
    kinds = p.get("card_kinds")
    if kinds is not None and a.card_kind is not None and a.card_kind not in kinds:
        return Hit(rule, RC.NOT_PERMITTED_TO_CARDHOLDER, "card_kind_not_authorised",
                   f"{a.card_kind} cards are not authorised for this merchant",
                   "该商户不受理此类卡" if a.card_kind != "credit" else "该商户不受理信用卡")
    modes = p.get("entry_modes")
    mode = entry_mode_of(a.entry_mode)
    if modes is not None and mode is not None and mode.value not in modes:
        return Hit(rule, RC.NOT_PERMITTED_TO_TERMINAL, "entry_mode_not_authorised",
                   f"{mode.value} entry is not authorised for this merchant",
                   "该商户不允许手工输入卡号" if mode is EntryMode.MANUAL
                   else "该商户不允许此种读卡方式")
    return None


def velocity_rules(rules: RuleSet, a: Attempt) -> list[Rule]:
    if a.card_token is None or a.txn_type not in COUNTED_TYPES:
        return []
    return list(rules.plan(a).velocity)


def velocity_hit(rule: Rule, recent: int) -> Hit | None:
    """``recent``: the card's counted transactions in the rule's window, this one excluded."""
    count, minutes = int(rule.params["count"]), int(rule.params["minutes"])
    if recent + 1 <= count:
        return None
    where = "anywhere" if rule.params.get("anywhere") else "at this merchant"
    return Hit(rule, RC.EXCEEDS_FREQUENCY_LIMIT, "velocity",
               f"this card was used more than {count} times in {minutes} minutes {where}",
               f"该卡 {minutes} 分钟内交易超过 {count} 笔")


# -- cumulative counters ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CounterKey:
    subject: Subject
    period: Period
    key: str  # "m:<merchant>", "t:<merchant>/<terminal>", "c:<card token>"
    bucket: str  # "D2026-12-04" or "M2026-12"

    @property
    def pair(self) -> tuple[str, str]:
        return (self.key, self.bucket)


KEYS_CACHED_MAX = 4096


@lru_cache(maxsize=64)
def _buckets(business_date: date) -> tuple[str, str]:
    iso = business_date.isoformat()
    return f"D{iso}", f"M{iso[:7]}"


@lru_cache(maxsize=KEYS_CACHED_MAX)
def _profile_keys(merchant_id: str, terminal_id: str, business_date: date
                  ) -> tuple[CounterKey, ...]:
    day, month = _buckets(business_date)
    merchant, terminal = f"m:{merchant_id}", f"t:{merchant_id}/{terminal_id}"
    return (CounterKey(Subject.MERCHANT, Period.DAY, merchant, day),
            CounterKey(Subject.MERCHANT, Period.MONTH, merchant, month),
            CounterKey(Subject.TERMINAL, Period.DAY, terminal, day),
            CounterKey(Subject.TERMINAL, Period.MONTH, terminal, month))


@lru_cache(maxsize=KEYS_CACHED_MAX)
def _card_keys(card_token: str, business_date: date) -> tuple[CounterKey, ...]:
    day, month = _buckets(business_date)
    card = f"c:{card_token}"
    return (CounterKey(Subject.CARD, Period.DAY, card, day),
            CounterKey(Subject.CARD, Period.MONTH, card, month))


def counter_keys(merchant_id: str, terminal_id: str, card_token: str | None,
                 business_date: date) -> list[CounterKey]:
    """The counters one counted transaction moves, in lock order: sorted by key and bucket,
    that is the card's ("c:"), the merchant's ("m:"), the terminal's ("t:"), each day
    ("D") before month ("M"). Made once per merchant, terminal, card and date (this is on
    every sale's path)."""
    fixed = _profile_keys(merchant_id, terminal_id, business_date)
    return [*_card_keys(card_token, business_date), *fixed] if card_token else list(fixed)


def velocity_cannot_fire(velocity: Sequence[Rule], card_token: str, today: date,
                         now: datetime,
                         totals: Mapping[tuple[str, str], tuple[int, int]]) -> bool:
    """True when no velocity rule can fire, known from the reservation's own totals: the
    card's counted transactions of the business month (this one included, under the row
    lock) bound every window that starts in the same month, since the month counter moves
    with every counted transaction of the card that velocity counts. So a card below its
    velocity limits this month costs no velocity statement. Not on a month's last business
    day (a concurrent sale after the cutoff counts in the next month's counter).

    Only the longest window and the smallest count need checking: the business date is
    never before the local date, so when the longest window starts in the business month,
    every shorter one (which starts later, and no later than now) does too."""
    if not velocity:
        return True
    used = totals.get((f"c:{card_token}", _buckets(today)[1]))
    month_start, last_day = _month_of(today)
    if used is None or last_day:
        return False
    count, minutes = _velocity_bounds(velocity)
    return used[1] <= count and now - timedelta(minutes=minutes) >= month_start


def _velocity_bounds(velocity: Sequence[Rule]) -> tuple[int, int]:
    """The smallest count and the longest window (minutes) of ``velocity``."""
    count, minutes = int(velocity[0].params["count"]), int(velocity[0].params["minutes"])
    for rule in velocity[1:]:
        count = min(count, int(rule.params["count"]))
        minutes = max(minutes, int(rule.params["minutes"]))
    return count, minutes


@lru_cache(maxsize=64)
def _month_of(business_date: date) -> tuple[datetime, bool]:
    """The first instant of ``business_date``'s month (local, Asia/Shanghai, time; as UTC),
    and whether ``business_date`` is the month's last day."""
    start = datetime(business_date.year, business_date.month, 1, tzinfo=SHANGHAI)
    return (start.astimezone(UTC),
            (business_date + timedelta(days=1)).month != business_date.month)


@dataclass(frozen=True, slots=True)
class CounterLimit:
    """The room one counter has for a decline: None = no such limit."""

    key: CounterKey
    amount_minor: int | None
    count: int | None
    amount_rules: tuple[Rule, ...] = ()
    count_rules: tuple[Rule, ...] = ()


def counter_limits(rules: RuleSet, a: Attempt, keys: Sequence[CounterKey],
                   allowance_minor: int = 0) -> list[CounterLimit]:
    """The decline limits of each counter (strictest rule in force); amount limits lifted
    by a pre-registered ``allowance_minor``."""
    plan = rules.plan(a)
    return [_counter_limit(plan, key, allowance_minor) for key in keys]


@dataclass(frozen=True, slots=True)
class FixedLimits:
    """The counters a counted payment of one plan moves on one business date besides its
    card's, the merchant's and the terminal's (day, month; lock order after the card's),
    with their decline limits under one allowance: made once per plan, date and allowance
    (a sale's reservation is on every sale's path)."""

    merchant: tuple[CounterLimit, CounterLimit]
    terminal: tuple[CounterLimit, CounterLimit]
    shard_limits: Limits
    """The merchant's day and month limits, for its shards."""
    amount_max: int | None
    """The smallest amount limit of the four (None: none has one)."""
    count_max: int | None

    @property
    def limits(self) -> tuple[CounterLimit, ...]:
        return (*self.merchant, *self.terminal)

    def fit(self, amount_minor: int, count: int) -> bool:
        """Whether each of the four, fresh, has room for ``amount_minor`` and ``count``."""
        return (self.amount_max is None or amount_minor <= self.amount_max) and \
            (self.count_max is None or count <= self.count_max)


FIXED_CACHED_MAX = 8
"""Per plan: a few business dates and allowances."""


def fixed_limits(rules: RuleSet, a: Attempt, business_date: date,
                 allowance_minor: int = 0) -> FixedLimits:
    """The merchant's and terminal's counters of ``a``'s plan on ``business_date``."""
    plan = rules.plan(a)
    found = plan.fixed.get((business_date, allowance_minor))
    if found is not None:
        return found
    md, mm, td, tm = (_counter_limit(plan, key, allowance_minor) for key in
                      _profile_keys(a.merchant_id, a.terminal_id, business_date))
    four = (md, mm, td, tm)
    amounts = [lim.amount_minor for lim in four if lim.amount_minor is not None]
    counts = [lim.count for lim in four if lim.count is not None]
    found = FixedLimits((md, mm), (td, tm),
                        Limits(md.amount_minor, md.count, mm.amount_minor, mm.count),
                        min(amounts, default=None), min(counts, default=None))
    if len(plan.fixed) >= FIXED_CACHED_MAX:
        plan.fixed.clear()
    plan.fixed[(business_date, allowance_minor)] = found
    return found


def _counter_limit(plan: Plan, key: CounterKey, allowance_minor: int) -> CounterLimit:
    slot = (key.subject.value, key.period.value)
    found = plan.limits.get(slot)
    if found is None:
        mine = [r for r in plan.cumulative if r.action is Action.DECLINE and
                r.params["subject"] == slot[0] and r.params["period"] == slot[1]]
        by_amount = tuple(r for r in mine if "amount_minor" in r.params)
        by_count = tuple(r for r in mine if "count" in r.params)
        found = plan.limits.setdefault(slot, _SlotLimit(
            min((int(r.params["amount_minor"]) for r in by_amount), default=None),
            min((int(r.params["count"]) for r in by_count), default=None),
            by_amount, by_count))
    amount = found.amount_minor
    if amount is not None:
        amount += allowance_minor
    return CounterLimit(key, amount, found.count, found.amount_rules, found.count_rules)


_WHO = {Subject.MERCHANT: ("merchant", "商户"), Subject.TERMINAL: ("terminal", "终端"),
        Subject.CARD: ("card", "卡片")}


def counter_hit(limit: CounterLimit, amount_after: int, count_after: int) -> Hit | None:
    """Why a reservation that would bring a counter to these totals is refused."""
    over_amount = limit.amount_minor is not None and amount_after > limit.amount_minor
    if not over_amount and (limit.count is None or count_after <= limit.count):
        return None
    period = limit.key.period
    who = _WHO[limit.key.subject]
    span = ("daily", "日") if period is Period.DAY else ("monthly", "月")
    if over_amount:
        rule = min(limit.amount_rules, key=lambda r: int(r.params["amount_minor"]))
        return Hit(rule, RC.EXCEEDS_AMOUNT_LIMIT, f"over_{period.value}_amount",
                   f"the {who[0]}'s {span[0]} limit of "
                   f"{_yuan(int(rule.params['amount_minor']))} CNY is reached",
                   f"已达{who[1]}{span[1]}累计限额 {_yuan(int(rule.params['amount_minor']))} 元")
    if limit.count is not None and count_after > limit.count:
        rule = min(limit.count_rules, key=lambda r: int(r.params["count"]))
        return Hit(rule, RC.EXCEEDS_FREQUENCY_LIMIT, f"over_{period.value}_count",
                   f"the {who[0]}'s {span[0]} limit of {rule.params['count']} "
                   "transactions is reached",
                   f"已达{who[1]}{span[1]}累计笔数限制 {rule.params['count']} 笔")
    return None


def soft_merchant_rules(rules: RuleSet, a: Attempt) -> bool:
    """Whether a review or alert rule watches the merchant's own cumulative totals (which
    the reservation does not return: it returns the merchant's shard's)."""
    return any(r.params["subject"] == "merchant" for r in rules.plan(a).soft_cumulative)


def soft_counter_hits(rules: RuleSet, a: Attempt,
                      totals: Mapping[tuple[str, str], tuple[int, int]],
                      keys: Sequence[CounterKey]) -> list[Hit]:
    """Review and alert cumulative rules, on the totals after this transaction."""
    hits: list[Hit] = []
    soft = rules.plan(a).soft_cumulative
    if not soft:
        return hits
    for key in keys:
        amount, count = totals.get(key.pair, (0, 0))
        for rule in soft:
            if rule.params["subject"] != key.subject.value or \
                    rule.params["period"] != key.period.value:
                continue
            hit = counter_hit(CounterLimit(key, rule.params.get("amount_minor"),
                                           rule.params.get("count"), (rule,), (rule,)),
                              amount, count)
            if hit is not None:
                hits.append(hit)
    return hits


# -- the decision ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Outcome:
    decision: Decision
    hits: tuple[Hit, ...] = ()
    preregistration_id: int | None = None

    @property
    def first(self) -> Hit | None:
        return self.hits[0] if self.hits else None

    @property
    def fired(self) -> list[str]:
        return sorted({h.rule.ref for h in self.hits})


APPROVE = Outcome(Decision.APPROVE)


def decide(hits: Sequence[Hit], preregistration_id: int | None = None) -> Outcome:
    """Decline if any decline hit; else review if any review hit; else alert; else approve."""
    if not hits and preregistration_id is None:
        return APPROVE
    ordered = tuple(sorted(hits, key=_hit_order))
    if not ordered:
        return Outcome(Decision.APPROVE, (), preregistration_id)
    decision = {Action.DECLINE: Decision.DECLINE, Action.REVIEW: Decision.REVIEW,
                Action.ALERT: Decision.ALERT}[ordered[0].action]
    return Outcome(decision, ordered, preregistration_id)
