"""Risk control (issue 13; docs/risk.md): the check every payment passes, the room it takes
and gives back, the rule editor, pre-registrations (报备), the merchant's and the
operator's views.

The check (:func:`check_payment`) runs inside the payment's first unit of work, after the
business rules (``services.payments``), for the REST API and the ISO 8583 host alike. It
costs a counted sale **one** statement when the cached rule set is current: the
conditional upsert that reserves room in the counters (``store.risk``; on PostgreSQL it
also inserts the payment's record). Velocity adds one count of the card's transactions,
read after that upsert has locked the card's rows (race-free), and only when the card's
month count could exceed a velocity limit;
declines, reviews and alerts add the decision row (and a refusal gives back what it
took). The rule set is read again only when the newest rule version's stamp, read with
the payment's context, changes.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from autosettle.domain import risk as rk
from autosettle.domain import risk_shards as rs
from autosettle.domain import transactions as tm
from autosettle.domain.calendar import SHANGHAI, business_date
from autosettle.domain.cards import CardRef
from autosettle.domain.errors import ErrorCode, NotFoundError, ValidationError
from autosettle.domain.merchants import Merchant, check_terminal_id
from autosettle.domain.money import AMOUNT_MINOR_MAX
from autosettle.domain.payment_records import PaymentContext, TransactionRecord
from autosettle.domain.risk_records import DecisionRecord, Preregistration, StoredRule
from autosettle.services.audit import record as audit
from autosettle.services.context import Principal, ServiceContext
from autosettle.store.uow import UnitOfWork

TxnType = tm.TxnType
RULE_ID_LENGTH_MAX = 80
NOTE_LENGTH_MAX = 200
PREREGISTRATION_DAYS_MAX = 31
_CACHE_SIZE = 16
_cache: dict[str | None, rk.RuleSet] = {}
_cache_lock = threading.Lock()


# -- the rule set in force --------------------------------------------------------------------

def rule_set(uow: UnitOfWork, stamp: str | None) -> rk.RuleSet:
    """The rules in force for ``stamp`` (the newest stored version's), parsed once per
    process and stamp; the defaults alone when nothing is stored."""
    found = _cache.get(stamp)
    if found is not None:
        return found
    rules = rk.RuleSet.of(uow.risk.rules() if stamp is not None else ())
    with _cache_lock:
        if len(_cache) >= _CACHE_SIZE:
            _cache.clear()
        _cache[stamp] = rules
    return rules


# -- the check ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Pending:
    """What :func:`reserve` needs to finish a check that passed so far."""

    rules: rk.RuleSet
    attempt: rk.Attempt
    txn_id: str
    last4: str | None
    today: date
    now: datetime
    hits: tuple[rk.Hit, ...]
    prereg: tuple[int, int] | None


@dataclass(frozen=True, slots=True)
class Checked:
    """The outcome, and the counters the transaction took room in (to give back).
    ``pending``: room is still to be reserved (:func:`reserve`), the outcome provisional."""

    outcome: rk.Outcome
    reserved: tuple[rk.CounterKey, ...] = ()
    pending: _Pending | None = None

    @property
    def hold(self) -> bool:
        return self.outcome.decision is rk.Decision.REVIEW

    @property
    def declined(self) -> bool:
        return self.outcome.decision is rk.Decision.DECLINE


APPROVED = Checked(rk.APPROVE)


def attempt_for(context: PaymentContext, txn_type: TxnType, terminal_id: str,
                amount_minor: int | None, card: CardRef | None,
                original: TransactionRecord | None, entry_mode: str | None,
                now: datetime) -> rk.Attempt:
    merchant = context.merchant
    return rk.Attempt(
        merchant_id=merchant.merchant_id, terminal_id=terminal_id,
        merchant_type=str(merchant.merchant_type), mcc=merchant.mcc, txn_type=str(txn_type),
        amount_minor=amount_minor,
        card_token=card.token if card else (original.card_token if original else None),
        card_kind=str(card.kind) if card else (original.card_kind if original else None),
        card_brand=str(card.brand) if card else (original.card_brand if original else None),
        bin6=card.bin6 if card else None, entry_mode=entry_mode,
        local_time=now.astimezone(SHANGHAI).time(),
        merchant_limit_minor=merchant.single_limit_minor)


def check_payment(uow: UnitOfWork, context: PaymentContext, attempt: rk.Attempt,
                  txn_id: str, last4: str | None, today: date, now: datetime) -> Checked:
    """Decide on one payment, everything but the counters: block lists, allowed methods,
    time windows, single limits (a pre-registration may lift them, used once); no
    statement unless a pre-registration is needed. A counted payment that passes comes back
    ``pending``: the caller inserts its record and then calls :func:`reserve` (cumulative
    limits and velocity), so the counter rows are locked only from the reservation to the
    commit."""
    rules = rule_set(uow, context.risk_stamp)
    hits = rk.static_hits(rules, attempt)
    prereg: tuple[int, int] | None = None
    declines = [h for h in hits if h.action is rk.Action.DECLINE]
    if declines and all(h.rule.kind is rk.RuleKind.SINGLE_MAX for h in declines) and \
            attempt.amount_minor is not None:
        prereg = uow.risk.use_preregistration(attempt.merchant_id, attempt.terminal_id, last4,
                                              attempt.amount_minor, now, txn_id)
        if prereg is not None:
            hits = rk.static_hits(rules, attempt, allowance_minor=prereg[1])
    if any(h.action is rk.Action.DECLINE for h in hits):
        return _finish(uow, attempt, txn_id, rk.decide(hits), today, now, prereg, ())
    if attempt.txn_type in rk.COUNTED_TYPES and attempt.amount_minor is not None:
        return Checked(rk.decide(hits), (), _Pending(rules, attempt, txn_id, last4, today,
                                                     now, tuple(hits), prereg))
    return _finish(uow, attempt, txn_id, rk.decide(hits), today, now, prereg, ())


def reserve(uow: UnitOfWork, checked: Checked,
            record: TransactionRecord | None = None) -> Checked:
    """Take the payment's room in the cumulative counters (one statement), all or nothing;
    then, with the card's counter rows locked, count velocity (one statement, only when a
    velocity rule could fire); the final outcome. A
    refusal by an amount limit may still be lifted by a pre-registration. ``record``: the
    payment's record, inserted here (with the reservation, one statement on PostgreSQL)."""
    p = checked.pending
    if p is None:
        if record is not None:
            uow.transactions.add(record)
        return checked
    attempt, hits, prereg = p.attempt, list(p.hits), p.prereg
    assert attempt.amount_minor is not None
    keys = rk.counter_keys(attempt.merchant_id, attempt.terminal_id, attempt.card_token,
                           p.today)
    taken = _reserve(uow, p.rules, attempt, keys, p.today, prereg[1] if prereg else 0,
                     record)
    if isinstance(taken, rk.Hit) and prereg is None and \
            taken.code is rk.RC.EXCEEDS_AMOUNT_LIMIT:
        prereg = uow.risk.use_preregistration(attempt.merchant_id, attempt.terminal_id,
                                              p.last4, attempt.amount_minor, p.now, p.txn_id)
        if prereg is not None:
            taken = _reserve(uow, p.rules, attempt, keys, p.today, prereg[1])
    if not isinstance(taken, rk.Hit):
        fast = _velocity_hits(uow, p.rules, attempt, p.today, p.now, taken)
        hits.extend(fast)
        if any(h.action is rk.Action.DECLINE for h in fast):
            uow.risk.release(keys, rs.shard_of(attempt.terminal_id), attempt.amount_minor, 1)
            taken = next(h for h in fast if h.action is rk.Action.DECLINE)
            hits.remove(taken)
    if isinstance(taken, rk.Hit):
        if prereg is not None:
            uow.risk.cancel_preregistration_use(prereg[0])
        return _finish(uow, attempt, p.txn_id, rk.decide([*hits, taken]), p.today, p.now,
                       None, ())
    if rk.soft_merchant_rules(p.rules, attempt):  # the shard's totals are not the merchant's
        taken.update(uow.risk.usage([k for k in keys if k.subject is rk.Subject.MERCHANT]))
    hits.extend(rk.soft_counter_hits(p.rules, attempt, taken, keys))
    return _finish(uow, attempt, p.txn_id, rk.decide(hits, prereg[0] if prereg else None),
                   p.today, p.now, prereg, tuple(keys))


def _velocity_hits(uow: UnitOfWork, rules: rk.RuleSet, attempt: rk.Attempt, today: date,
                   now: datetime, totals: dict[tuple[str, str], tuple[int, int]]
                   ) -> list[rk.Hit]:
    """Every velocity rule in force, in one statement over the card's transactions (this
    one's record included: it went in with the reservation). Race-free: the reservation
    locked the card's own counter rows, so a concurrent sale of the card waits for this
    one's commit, and the count, a new statement, sees every sale of the card before."""
    velocity = rk.velocity_rules(rules, attempt)
    if not velocity or attempt.card_token is None or \
            rk.velocity_cannot_fire(velocity, attempt.card_token, today, now, totals):
        return []
    counts = uow.risk.velocity_counts(attempt.card_token, attempt.merchant_id, [
        (now - timedelta(minutes=int(r.params["minutes"])), bool(r.params.get("anywhere")))
        for r in velocity])
    return [hit for rule, count in zip(velocity, counts, strict=True)
            if (hit := rk.velocity_hit(rule, count - 1)) is not None]


def _reserve(uow: UnitOfWork, rules: rk.RuleSet, attempt: rk.Attempt,
             keys: Sequence[rk.CounterKey], today: date, allowance: int,
             record: TransactionRecord | None = None
             ) -> dict[tuple[str, str], tuple[int, int]] | rk.Hit:
    """Room in every counter, all or nothing: the totals after (the merchant's: its
    shard's, unless the exact path ran), or why not. The merchant's counter is taken in
    its shard within the shard's allotment; a shard out of room sends the sale down the
    exact path (:func:`_exact`)."""
    assert attempt.amount_minor is not None
    amount = attempt.amount_minor
    fixed = rk.fixed_limits(rules, attempt, today, allowance)  # the last four of ``keys``
    card = rk.counter_limits(rules, attempt, keys[:-4], allowance)  # the card's, if any
    # a fresh counter row is inserted unchecked: check each here (in lock order)
    unfit = card if fixed.fit(amount, 1) else [*card, *fixed.limits]
    for limit in unfit:
        hit = rk.counter_hit(limit, amount, 1)
        if hit is not None:
            if record is not None:
                uow.transactions.add(record)
            return hit
    mine = fixed.merchant
    shard = rs.shard_of(attempt.terminal_id)
    take: rs.Take | None = None
    if uow.risk.merchant_sharded:
        others = [*card, *fixed.terminal]
        take = rs.Take(attempt.merchant_id, shard, today, fixed.shard_limits, mine[0].key.pair,
                       mine[1].key.pair)
    else:  # one writer (SQLite): the merchant's counter is one row per period
        others = [*card, *fixed.limits]
    taken = uow.risk.reserve(others, take, amount, record=record)
    missed = [lim for lim in others if lim.key.pair not in taken]
    if missed:
        uow.risk.release([lim.key for lim in (*card, *fixed.limits) if lim.key.pair in taken],
                         shard, amount, 1)
        used = uow.risk.usage([lim.key for lim in missed])
        for limit in missed:
            before = used.get(limit.key.pair, (0, 0))
            hit = rk.counter_hit(limit, before[0] + amount, before[1] + 1)
            if hit is not None:
                return hit
        raise AssertionError("a counter refused room within its limits")  # pragma: no cover
    if take is None or take.day_key in taken:
        return taken
    exact = _exact(uow, take, mine, amount)
    if isinstance(exact, rk.Hit):
        uow.risk.release([lim.key for lim in others], shard, amount, 1)
        return exact
    taken.update(exact)
    return taken


def _exact(uow: UnitOfWork, take: rs.Take, mine: Sequence[rk.CounterLimit], amount: int
           ) -> dict[tuple[str, str], tuple[int, int]] | rk.Hit:
    """The exact path of the merchant's counter: every shard locked in order, the true
    totals checked against the limits (nothing that fits is refused), the room left shared
    out again, this sale's taken in its shard. The merchant's totals after, or why not."""
    shards = uow.risk.lock_merchant_shards(take.merchant_id, rs.SHARDS)
    plan = rs.rebalance(shards, take.shard, take.day, take.limits, amount, 1)
    if isinstance(plan, int):  # 0, 1: the day's limits; 2, 3: the month's
        period = plan // 2
        used = rs.totals(shards, take.day)
        hit = rk.counter_hit(mine[period], used[2 * period] + amount, used[2 * period + 1] + 1)
        assert hit is not None
        return hit
    uow.risk.put_merchant_shards(take.merchant_id, plan)
    day_amount, day_count, month_amount, month_count = rs.totals(plan, take.day)
    return {take.day_key: (day_amount, day_count), take.month_key: (month_amount, month_count)}


def _finish(uow: UnitOfWork, attempt: rk.Attempt, txn_id: str, outcome: rk.Outcome,
            today: date, now: datetime, prereg: tuple[int, int] | None,
            reserved: tuple[rk.CounterKey, ...]) -> Checked:
    if prereg is not None:
        outcome = replace(outcome, preregistration_id=prereg[0])
    if outcome.hits or prereg is not None:
        first = outcome.first
        uow.risk.add_decision(DecisionRecord(
            txn_id=txn_id, merchant_id=attempt.merchant_id, terminal_id=attempt.terminal_id,
            decision=outcome.decision.value,
            response_code=first.code.value if first and outcome.decision is rk.Decision.DECLINE
            else "00",
            reason=first.reason if first else "preregistered",
            reason_en=(first.english if first else "a pre-registered transaction")[:200],
            reason_zh=(first.chinese if first else "已报备的大额交易")[:200],
            fired=outcome.fired, preregistration_id=prereg[0] if prereg else None,
            amount_minor=attempt.amount_minor or 0, business_date=today, created_at=now))
        if outcome.decision in (rk.Decision.ALERT, rk.Decision.REVIEW) and first is not None:
            uow.alerts.raise_alert(now, "warning", f"risk_{outcome.decision.value}",
                                   f"{attempt.merchant_id}/{attempt.terminal_id} txn {txn_id}:"
                                   f" {first.english} ({', '.join(outcome.fired)})"[:500],
                                   attempt.merchant_id, dedup_key=f"risk:{txn_id}")
    return Checked(outcome, reserved)


# -- giving room back ---------------------------------------------------------------------------

def _keys_of(record: TransactionRecord) -> list[rk.CounterKey]:
    """The counters a counted record took room in."""
    return rk.counter_keys(record.merchant_id, record.terminal_id, record.card_token,
                           record.business_date)


def _shard(record: TransactionRecord) -> int:
    """The shard of the merchant's counter the record's room is in."""
    return rs.shard_of(record.terminal_id)


def _counted(record: TransactionRecord) -> bool:
    return str(record.txn_type) in rk.COUNTED_TYPES and record.amount_minor > 0


def on_unanswered(uow: UnitOfWork, record: TransactionRecord) -> None:
    """A counted record left pending without approval (declined by the issuer, timed out,
    reversed while pending): the room it took is free again."""
    if _counted(record):
        uow.risk.release(_keys_of(record), _shard(record), record.amount_minor, 1)


def on_events(uow: UnitOfWork, record: TransactionRecord,
              chain: Sequence[TransactionRecord], events: Sequence[tm.Event]) -> None:
    """Voids, refunds, cancels and reversals give room back (a reversed void, refund or
    cancel takes it again, beyond any limit: the sale stands again)."""
    by_id = {r.txn_id: r for r in (record, *chain)}
    for event in events:
        target = by_id.get(event.target_id)
        if target is None or (not _counted(target) and event.kind is not tm.EventKind.REVERSED):
            continue
        amount = event.amount.amount_minor
        match event.kind:
            case tm.EventKind.VOIDED | tm.EventKind.HOLD_RELEASED:
                uow.risk.release(_keys_of(target), _shard(target), amount, 1)
            case tm.EventKind.REFUNDED:
                uow.risk.release(_keys_of(target), _shard(target), amount, 0)
            case tm.EventKind.REVERSED:
                _on_reversed(uow, target, chain, amount)
            case _:
                pass


def _on_reversed(uow: UnitOfWork, reversed_record: TransactionRecord,
                 chain: Sequence[TransactionRecord], amount: int) -> None:
    kind = TxnType(reversed_record.txn_type)
    if _counted(reversed_record):
        uow.risk.release(_keys_of(reversed_record), _shard(reversed_record), amount, 1)
        return
    original = chain[0] if chain else None
    if original is None or not _counted(original):
        return
    count = 0 if kind is TxnType.REFUND else 1
    if kind in (TxnType.VOID, TxnType.REFUND, TxnType.PREAUTH_VOID):
        uow.risk.take(_keys_of(original), _shard(original), amount, count)


# -- the rule editor (operators) ----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RuleInput:
    kind: str
    scope: str
    action: str
    params: dict[str, Any]
    scope_value: str | None = None
    card_kind: str | None = None
    active: bool = True
    note: str = ""


def _check_rule_id(rule_id: str) -> str:
    if not isinstance(rule_id, str) or not 0 < len(rule_id) <= RULE_ID_LENGTH_MAX or \
            not rule_id.isascii() or not all(ch.isalnum() or ch in "-_:." for ch in rule_id):
        raise ValidationError("rule id must be 1-80 ASCII letters, digits, '-', '_', ':', '.'")
    if rule_id == rk.MERCHANT_LIMIT_RULE:
        raise ValidationError("the merchant's own limit is set on the merchant "
                              "(single_limit_minor)")
    return rule_id


def _rule_of(rule_id: str, version: int, body: RuleInput) -> rk.Rule:
    try:
        kind, scope, action = rk.RuleKind(body.kind), rk.Scope(body.scope), rk.Action(body.action)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    if len(body.note) > NOTE_LENGTH_MAX or not body.note.isprintable():
        raise ValidationError("note must be at most 200 printable characters")
    if body.scope_value is not None and (len(body.scope_value) > 40 or
                                         not body.scope_value.isascii() or
                                         not body.scope_value.isprintable()):
        raise ValidationError("scope_value must be at most 40 printable ASCII characters")
    try:
        return rk.check_rule(rk.Rule(rule_id, version, kind, scope, body.scope_value, action,
                                     dict(body.params), body.card_kind, body.active, body.note))
    except ValueError as exc:  # an unknown merchant type, subject or period
        raise ValidationError(str(exc)) from None


def put_rule(ctx: ServiceContext, who: Principal, rule_id: str, body: RuleInput,
             expected_version: int | None = None) -> rk.Rule:
    """Add the next version of a rule (a new id starts at 1; a default's id at 1 replaces
    the built-in version 0). Effective at once; audited. ``expected_version``: refuse if
    someone else edited it meanwhile (``invalid_state``)."""
    who.require_operator()
    _check_rule_id(rule_id)
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        current = uow.risk.latest_version(rule_id)
        if expected_version is not None and expected_version != current:
            raise ValidationError(f"rule {rule_id} is at version {current}, not "
                                  f"{expected_version}: reload and retry",
                                  ErrorCode.INVALID_STATE)
        rule = _rule_of(rule_id, current + 1, body)
        uow.risk.add_rule(rule, uuid.uuid4().hex, who.actor, now)
        audit(uow, who, "risk_rule.put", f"risk_rule/{rule_id}", now,
              detail={"version": rule.version, "kind": rule.kind.value,
                      "scope": rule.scope.value, "scope_value": rule.scope_value,
                      "action": rule.action.value, "active": rule.active,
                      "params": dict(rule.params)})
    return rule


def deactivate_rule(ctx: ServiceContext, who: Principal, rule_id: str) -> rk.Rule:
    """A new version of the rule, inactive (defaults too: the built-in stops applying)."""
    current = _current(ctx, who, rule_id)
    return put_rule(ctx, who, rule_id, RuleInput(
        current.kind.value, current.scope.value, current.action.value, dict(current.params),
        current.scope_value, current.card_kind, active=False, note=current.note),
        expected_version=current.version)


def _current(ctx: ServiceContext, who: Principal, rule_id: str) -> rk.Rule:
    who.require_operator()
    with ctx.db.unit_of_work() as uow:
        stored = uow.risk.versions(rule_id)
    if stored:
        return stored[-1].rule
    for rule in rk.default_rules():
        if rule.rule_id == rule_id:
            return rule
    raise NotFoundError(f"rule {rule_id} not found")


def list_rules(ctx: ServiceContext, who: Principal, include_inactive: bool = False
               ) -> list[rk.Rule]:
    """The latest version of every rule (defaults included), by id."""
    who.require_operator()
    with ctx.db.unit_of_work() as uow:
        stored = uow.risk.rules()
    latest: dict[str, rk.Rule] = {r.rule_id: r for r in rk.default_rules()}
    for rule in stored:
        latest[rule.rule_id] = rule
    return sorted((r for r in latest.values() if include_inactive or r.active),
                  key=lambda r: r.rule_id)


def rule_versions(ctx: ServiceContext, who: Principal, rule_id: str) -> list[StoredRule]:
    who.require_operator()
    with ctx.db.unit_of_work() as uow:
        found = uow.risk.versions(rule_id)
    if not found and not any(r.rule_id == rule_id for r in rk.default_rules()):
        raise NotFoundError(f"rule {rule_id} not found")
    return found


# -- pre-registration (报备) -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class NewPreregistration:
    amount_minor: int
    valid_from: datetime
    valid_to: datetime
    terminal_id: str | None = None
    card_last4: str | None = None
    note: str = ""


def preregister(ctx: ServiceContext, who: Principal, merchant_id: str,
                new: NewPreregistration) -> Preregistration:
    """The merchant (or an operator) registers one expected large transaction: inside the
    window, one transaction up to the amount may pass the single and cumulative amount
    limits, once."""
    who.require_merchant(merchant_id)
    if who.terminal_id is not None:
        raise NotFoundError(f"merchant {merchant_id} not found")
    if not 0 < new.amount_minor <= AMOUNT_MINOR_MAX:
        raise ValidationError("amount_minor must be positive and at most 10^12 - 1",
                              ErrorCode.INVALID_AMOUNT)
    if new.valid_from.tzinfo is None or new.valid_to.tzinfo is None:
        raise ValidationError("valid_from and valid_to need a time zone offset")
    if not new.valid_from < new.valid_to or \
            new.valid_to - new.valid_from > timedelta(days=PREREGISTRATION_DAYS_MAX):
        raise ValidationError(f"the window must be non-empty and at most "
                              f"{PREREGISTRATION_DAYS_MAX} days")
    now = ctx.now()
    if new.valid_to <= now:
        raise ValidationError("the window has already ended")
    if new.terminal_id is not None:
        check_terminal_id(new.terminal_id)
    if new.card_last4 is not None and not (len(new.card_last4) == 4 and
                                           new.card_last4.isdigit() and
                                           new.card_last4.isascii()):
        raise ValidationError("card_last4 must be 4 digits")
    if len(new.note) > NOTE_LENGTH_MAX or not new.note.isprintable():
        raise ValidationError("note must be at most 200 printable characters")
    with ctx.db.unit_of_work() as uow:
        merchant = uow.merchants.get(merchant_id)
        if merchant is None:
            raise NotFoundError(f"merchant {merchant_id} not found")
        if new.terminal_id is not None and uow.terminals.get(merchant_id,
                                                             new.terminal_id) is None:
            raise NotFoundError(f"terminal {new.terminal_id} not found")
        found = uow.risk.add_preregistration(
            merchant_id, new.amount_minor, merchant.currency, new.valid_from, new.valid_to,
            new.terminal_id, new.card_last4, new.note, who.actor, now)
        audit(uow, who, "risk_preregistration.create",
              f"merchant/{merchant_id}/preregistration/{found.prereg_id}", now,
              detail={"amount_minor": new.amount_minor})
    return found


def preregistration_state(p: Preregistration, now: datetime) -> str:
    """open, used, cancelled, or expired (an open one past its window)."""
    return "expired" if p.status == "open" and p.valid_to <= now else p.status


def list_preregistrations(ctx: ServiceContext, who: Principal,
                          merchant_id: str) -> list[Preregistration]:
    who.require_merchant(merchant_id)
    if who.terminal_id is not None:
        raise NotFoundError(f"merchant {merchant_id} not found")
    with ctx.db.unit_of_work() as uow:
        return uow.risk.preregistrations(merchant_id)


def cancel_preregistration_by_id(ctx: ServiceContext, who: Principal,
                                 prereg_id: int) -> Preregistration:
    """:func:`cancel_preregistration` by id alone (another merchant's: 404)."""
    with ctx.db.unit_of_work() as uow:
        found = uow.risk.preregistration(None, prereg_id)
    if found is None or not who.can_see_merchant(found.merchant_id):
        raise NotFoundError(f"pre-registration {prereg_id} not found")
    return cancel_preregistration(ctx, who, found.merchant_id, prereg_id)


def cancel_preregistration(ctx: ServiceContext, who: Principal, merchant_id: str,
                           prereg_id: int) -> Preregistration:
    who.require_merchant(merchant_id)
    if who.terminal_id is not None:
        raise NotFoundError(f"merchant {merchant_id} not found")
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        found = uow.risk.preregistration(merchant_id, prereg_id)
        if found is None:
            raise NotFoundError(f"pre-registration {prereg_id} not found")
        if not uow.risk.cancel_preregistration(merchant_id, prereg_id):
            raise ValidationError(f"pre-registration {prereg_id} is {found.status}",
                                  ErrorCode.INVALID_STATE)
        audit(uow, who, "risk_preregistration.cancel",
              f"merchant/{merchant_id}/preregistration/{prereg_id}", now)
        result = uow.risk.preregistration(merchant_id, prereg_id)
    assert result is not None
    return result


# -- the merchant's view -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class LimitUsage:
    rule: str
    kind: str
    subject: str | None
    period: str | None
    card_kind: str | None
    action: str
    limit_amount_minor: int | None
    limit_count: int | None
    used_amount_minor: int | None
    used_count: int | None
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ExplainedDecision:
    decision: DecisionRecord
    held: bool


@dataclass(frozen=True, slots=True)
class MerchantRiskView:
    merchant_id: str
    business_date: date
    limits: list[LimitUsage]
    preregistrations: list[Preregistration]
    decisions: list[ExplainedDecision]


def merchant_view(ctx: ServiceContext, who: Principal, merchant_id: str,
                  limit: int = 50) -> MerchantRiskView:
    """Its limits (rules in force for a merchant-wide sale), today's usage against them,
    its pre-registrations and why each declined or held transaction was."""
    who.require_merchant(merchant_id)
    if who.terminal_id is not None:
        raise NotFoundError(f"merchant {merchant_id} not found")
    now = ctx.now()
    today = business_date(now, ctx.settings.cutoff)
    with ctx.db.unit_of_work() as uow:
        merchant = uow.merchants.get(merchant_id)
        if merchant is None:
            raise NotFoundError(f"merchant {merchant_id} not found")
        rules = rk.RuleSet.of(uow.risk.rules())
        keys = rk.counter_keys(merchant_id, "", None, today)
        keys = [k for k in keys if k.subject is rk.Subject.MERCHANT]
        used = uow.risk.usage(keys)
        preregs = uow.risk.preregistrations(merchant_id)
        decisions = uow.risk.decisions(merchant_id, None, limit)
        held = uow.risk.held_txn_ids(merchant_id, [d.txn_id for d in decisions])
    return MerchantRiskView(merchant_id, today, limits_of(rules, merchant, keys, used),
                            preregs, [ExplainedDecision(d, d.txn_id in held)
                                      for d in decisions])


def limits_of(rules: rk.RuleSet, merchant: Merchant, keys: Sequence[rk.CounterKey],
              used: dict[tuple[str, str], tuple[int, int]]) -> list[LimitUsage]:
    out: list[LimitUsage] = []
    for card_kind in (None, "debit", "credit"):
        attempt = rk.Attempt(merchant.merchant_id, "", str(merchant.merchant_type),
                             merchant.mcc, "sale", None, card_kind=card_kind,
                             merchant_limit_minor=merchant.single_limit_minor)
        candidates = list(rules.rules)
        if merchant.single_limit_minor is not None:
            candidates.append(rk.merchant_limit_rule(merchant.merchant_id,
                                                     merchant.single_limit_minor))
        for rule in rk.in_force(candidates, attempt):
            if rule.card_kind != card_kind or rule.scope is rk.Scope.TERMINAL:
                continue
            p = rule.params
            if rule.kind is rk.RuleKind.CUMULATIVE:
                if p["subject"] != "merchant":
                    out.append(LimitUsage(rule.ref, rule.kind.value, p["subject"], p["period"],
                                          None, rule.action.value, p.get("amount_minor"),
                                          p.get("count"), None, None, {}))
                    continue
                key = next(k for k in keys
                           if k.period is not None and k.period.value == p["period"])
                amount, count = used.get(key.pair, (0, 0))
                out.append(LimitUsage(rule.ref, rule.kind.value, "merchant", p["period"], None,
                                      rule.action.value, p.get("amount_minor"), p.get("count"),
                                      amount, count, {}))
            elif rule.kind in (rk.RuleKind.SINGLE_MAX, rk.RuleKind.SINGLE_MIN):
                out.append(LimitUsage(rule.ref, rule.kind.value, None, None, rule.card_kind,
                                      rule.action.value, p["amount_minor"], None, None, None,
                                      {}))
            elif rule.kind is not rk.RuleKind.BLOCK:
                out.append(LimitUsage(rule.ref, rule.kind.value, None, None, rule.card_kind,
                                      rule.action.value, None, p.get("count"), None, None,
                                      dict(p)))
    unique: dict[str, LimitUsage] = {}
    for item in out:
        unique.setdefault(item.rule, item)
    return list(unique.values())


# -- the operator's review queue ---------------------------------------------------------------

def review_queue(ctx: ServiceContext, who: Principal, merchant_id: str | None = None,
                 limit: int = 100) -> list[ExplainedDecision]:
    """Transactions put on review (approved, settlement item held), newest first, with
    whether they are still held."""
    who.require_operator()
    with ctx.db.unit_of_work() as uow:
        found = uow.risk.decisions(merchant_id, [rk.Decision.REVIEW.value], limit)
        out = []
        for d in found:
            held = uow.risk.held_txn_ids(d.merchant_id, [d.txn_id])
            out.append(ExplainedDecision(d, d.txn_id in held))
    return out


def decisions(ctx: ServiceContext, who: Principal, merchant_id: str | None,
              kinds: Sequence[str] | None = None, limit: int = 100) -> list[DecisionRecord]:
    if merchant_id is None:
        who.require_operator()
    else:
        who.require_merchant(merchant_id)
        if who.terminal_id is not None:
            raise NotFoundError(f"merchant {merchant_id} not found")
    with ctx.db.unit_of_work() as uow:
        return uow.risk.decisions(merchant_id, kinds, limit)


def set_review_hold(ctx: ServiceContext, who: Principal, merchant_id: str, txn_id: str,
                    held: bool) -> int:
    """Hold or release a transaction's unsettled settlement items; how many changed."""
    who.require_operator()
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        if uow.transactions.get(merchant_id, txn_id) is None:
            raise NotFoundError(f"transaction {txn_id} not found")
        changed = uow.claims.set_held(merchant_id, txn_id, held)
        audit(uow, who, "risk_review.hold" if held else "risk_review.release",
              f"merchant/{merchant_id}/transaction/{txn_id}", now, detail={"items": changed})
    return changed


def set_review_hold_by_id(ctx: ServiceContext, who: Principal, txn_id: str,
                          held: bool) -> tuple[str, int]:
    """:func:`set_review_hold` of a transaction named by its (globally unique) id."""
    who.require_operator()
    with ctx.db.unit_of_work() as uow:
        found = uow.transactions.get_any_merchant(txn_id)
    if found is None:
        raise NotFoundError(f"transaction {txn_id} not found")
    return found.merchant_id, set_review_hold(ctx, who, found.merchant_id, txn_id, held)


def decision_of(ctx: ServiceContext, who: Principal, merchant_id: str,
                txn_id: str) -> ExplainedDecision | None:
    """The risk decision of one transaction (and whether it is held), if one was written."""
    who.require_merchant(merchant_id)
    if who.terminal_id is not None:
        raise NotFoundError(f"merchant {merchant_id} not found")
    with ctx.db.unit_of_work() as uow:
        found = uow.risk.decision(merchant_id, txn_id)
        if found is None:
            return None
        held = uow.risk.held_txn_ids(merchant_id, [txn_id])
    return ExplainedDecision(found, txn_id in held)
