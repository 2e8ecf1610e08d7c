"""The merchant-day cash-out scoring job and the operator's flagged-merchant list.

:func:`score_day` scores every merchant with transactions on a business date
(``domain.risk_scoring``: transparent signals, reasons with numbers), stores the scores, and
puts a merchant whose score reaches ``risk_review_score`` on review: its settlement items of
that day are held (the issue-4 hold flag), so its next settlement leaves them out until an
operator releases them (:func:`release_merchant_day`). Run it after the cut-off: the
scheduler does (``jobs/risk_scoring.py``), and so may ``autosettle risk score --date`` and
``POST /v1/risk/scores/run``. Scoring a date again changes nothing (:func:`_rescored`).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

from autosettle.domain import risk as rk
from autosettle.domain import risk_scoring as sc
from autosettle.domain.calendar import SHANGHAI
from autosettle.domain.errors import ErrorCode, NotFoundError, ValidationError
from autosettle.domain.merchants import Merchant
from autosettle.domain.risk_records import ScoredTxn, ScoreRecord
from autosettle.services.audit import record as audit
from autosettle.services.context import Principal, ServiceContext


def single_limit_of(rules: rk.RuleSet, merchant: Merchant) -> int | None:
    """The generic single-transaction maximum in force for a merchant-wide sale."""
    attempt = rk.Attempt(merchant.merchant_id, "", str(merchant.merchant_type), merchant.mcc,
                         "sale", None, merchant_limit_minor=merchant.single_limit_minor)
    candidates = list(rules.of_kind(rk.RuleKind.SINGLE_MAX))
    if merchant.single_limit_minor is not None:
        candidates.append(rk.merchant_limit_rule(merchant.merchant_id,
                                                 merchant.single_limit_minor))
    found = [int(r.params["amount_minor"]) for r in rk.in_force(candidates, attempt)
             if r.card_kind is None and r.action is rk.Action.DECLINE]
    return min(found, default=None)


def score_day(ctx: ServiceContext, who: Principal, day: date) -> list[ScoreRecord]:
    """Score every merchant with transactions on ``day``; highest score first."""
    who.require_operator()
    now = ctx.now()
    threshold = ctx.settings.risk_review_score
    first = day - timedelta(days=sc.HISTORY_DAYS)
    with ctx.db.unit_of_work() as uow:
        rows = uow.risk.day_transactions(first, day)
        rules = rk.RuleSet.of(uow.risk.rules())
        today: dict[str, list[ScoredTxn]] = defaultdict(list)
        past: dict[str, list[ScoredTxn]] = defaultdict(list)
        for row in rows:
            (today if row.business_date == day else past)[row.merchant_id].append(row)
        out: list[ScoreRecord] = []
        changed = 0
        for merchant_id in sorted(today):
            merchant = uow.merchants.get(merchant_id)
            if merchant is None:
                continue
            result = sc.score_day(_day_txns(today[merchant_id]),
                                  single_limit_of(rules, merchant),
                                  _history(past[merchant_id]))
            found, new = _rescored(uow.risk.scores(day, None, merchant_id), merchant_id,
                                   day, result, threshold, now)
            if new:  # new or changed; the same score is left as it was
                uow.risk.put_score(found)
                changed += 1
            if found.on_review:
                held = uow.risk.hold_merchant_day(merchant_id, day, True)
                uow.alerts.raise_alert(
                    now, "warning", "risk_cash_out",
                    f"merchant {merchant_id} scored {result.score} on {day}: "
                    + "; ".join(r.english for r in result.reasons) + f" ({held} items held)",
                    merchant_id, dedup_key=f"risk-score:{merchant_id}:{day}")
            out.append(found)
        audit(uow, who, "risk_score.run", f"risk_scores/{day}", now,
              detail={"merchants": len(out), "on_review": sum(s.on_review for s in out),
                      "changed": changed})
    return sorted(out, key=lambda s: (-s.score, s.merchant_id))


def _rescored(before: list[ScoreRecord], merchant_id: str, day: date, result: sc.DayScore,
              threshold: int, now: datetime) -> tuple[ScoreRecord, bool]:
    """The score to keep for a merchant-day scored (again) at ``now``, and whether it is
    new (to store).

    Scoring a date again changes nothing that is still true (the scheduler's job after a
    crash, ``autosettle risk score`` after the job): the same score and reasons keep their
    record, time included. A day an operator released stays released, whatever the new
    score: the operator's decision stands and its items are not held again.
    """
    reasons = [r.as_dict() for r in result.reasons]
    previous = before[0] if before else None
    released = previous is not None and previous.released_at is not None
    on_review = result.score >= threshold and not released
    if previous is not None and (previous.score, previous.reasons, previous.on_review) == (
            result.score, reasons, on_review):
        return previous, False
    return ScoreRecord(merchant_id, day, result.score, reasons, on_review,
                       previous.released_at if previous is not None and released else None,
                       previous.released_by if previous is not None and released else None,
                       now), True


def _day_txns(rows: list[ScoredTxn]) -> list[sc.DayTxn]:
    ordered = sorted(rows, key=lambda r: r.created_at)
    return [sc.DayTxn(r.amount_minor, r.status in ("approved", "completed"),
                      r.card_token, r.card_kind, r.created_at.astimezone(SHANGHAI).time())
            for r in ordered if r.txn_type in ("sale", "preauth")]


def _history(rows: list[ScoredTxn]) -> sc.History:
    by_day: dict[date, int] = defaultdict(int)
    credit = total = 0
    for r in rows:
        if r.status != "approved" or r.txn_type not in ("sale", "preauth"):
            continue
        by_day[r.business_date] += r.amount_minor
        total += r.amount_minor
        if r.card_kind == "credit":
            credit += r.amount_minor
    return sc.History(list(by_day.values()), credit / total if total else None)


def flagged(ctx: ServiceContext, who: Principal, day: date | None = None,
            on_review: bool | None = True) -> list[ScoreRecord]:
    """Scored merchant-days (default: those on review), newest day and highest score first."""
    who.require_operator()
    with ctx.db.unit_of_work() as uow:
        return uow.risk.scores(day, on_review)


def merchant_scores(ctx: ServiceContext, who: Principal,
                    merchant_id: str) -> list[ScoreRecord]:
    who.require_merchant(merchant_id)
    if who.terminal_id is not None:
        raise NotFoundError(f"merchant {merchant_id} not found")
    with ctx.db.unit_of_work() as uow:
        return uow.risk.scores(merchant_id=merchant_id)


def release_merchant_day(ctx: ServiceContext, who: Principal, merchant_id: str,
                         day: date) -> int:
    """Take a merchant-day off review: its held items settle with the next run."""
    who.require_operator()
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        if not uow.risk.scores(day, None, merchant_id):
            raise NotFoundError(f"no score for merchant {merchant_id} on {day}")
        if not uow.risk.release_score(merchant_id, day, who.actor, now):
            raise ValidationError(f"merchant {merchant_id} is not on review for {day}",
                                  ErrorCode.INVALID_STATE)
        released = uow.risk.hold_merchant_day(merchant_id, day, False)
        audit(uow, who, "risk_score.release", f"merchant/{merchant_id}/score/{day}", now,
              detail={"items": released})
    return released
