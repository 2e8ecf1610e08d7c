"""Risk control (docs/risk.md): the rule editor, review queue and flagged merchants
(operators); limits, usage, pre-registrations (报备) and decisions (the merchant)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from autosettle.api.deps import Ctx, Idem, Who
from autosettle.api.schemas import MERCHANT_ID_PATTERN, TERMINAL_ID_PATTERN
from autosettle.domain.risk import Rule
from autosettle.domain.risk_records import DecisionRecord, Preregistration, ScoreRecord, StoredRule
from autosettle.services import risk, risk_review, risk_scoring

router = APIRouter(prefix="/v1", tags=["risk"])
RULE_ID_PATTERN = r"^[A-Za-z0-9:._-]{1,80}$"
TXN_ID_PATTERN = r"^[A-Za-z0-9]{1,32}$"
MidPath = Annotated[str, Path(pattern=MERCHANT_ID_PATTERN)]
MidQuery = Annotated[str | None, Query(pattern=MERCHANT_ID_PATTERN)]
RulePath = Annotated[str, Path(pattern=RULE_ID_PATTERN)]
TxnPath = Annotated[str, Path(pattern=TXN_ID_PATTERN)]
Limit = Annotated[int, Query(ge=1, le=200)]
Text40 = Annotated[str, StringConstraints(max_length=40, pattern=r"^[ -~]*$")]
Note = Annotated[str, StringConstraints(max_length=200)]


class RuleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["single_max", "single_min", "cumulative", "velocity", "time_window",
                  "allowed", "block"]
    scope: Literal["all", "merchant_type", "mcc", "merchant", "terminal"]
    scope_value: Text40 | None = None
    card_kind: Literal["debit", "credit", "foreign", "other"] | None = None
    action: Literal["decline", "review", "alert"] = "decline"
    params: dict[str, Any] = Field(description="By kind, see docs/risk.md: amount_minor; "
                                   "subject, period, amount_minor, count; count, minutes, "
                                   "anywhere; start, end; txn_types, card_kinds, entry_modes, "
                                   "foreign_cards; card_tokens, bin_ranges, terminals, "
                                   "merchants.")
    active: bool = True
    note: Note = ""
    expected_version: int | None = Field(default=None, ge=0, description="Refuse (409) if "
                                         "the rule is no longer at this version.")


class RulePublic(BaseModel):
    rule_id: str
    version: int
    kind: str
    scope: str
    scope_value: str | None
    card_kind: str | None
    action: str
    params: dict[str, Any]
    active: bool
    note: str
    built_in: bool

    @classmethod
    def of(cls, r: Rule) -> RulePublic:
        return cls(rule_id=r.rule_id, version=r.version, kind=r.kind.value,
                   scope=r.scope.value, scope_value=r.scope_value, card_kind=r.card_kind,
                   action=r.action.value, params=dict(r.params), active=r.active,
                   note=r.note, built_in=r.version == 0)


class RuleVersionPublic(RulePublic):
    created_by: str
    created_at: datetime

    @classmethod
    def of_stored(cls, s: StoredRule) -> RuleVersionPublic:
        return cls(**RulePublic.of(s.rule).model_dump(), created_by=s.created_by,
                   created_at=s.created_at)


class DecisionPublic(BaseModel):
    txn_id: str
    merchant_id: str
    terminal_id: str
    decision: str
    response_code: str
    reason: str
    reason_en: str
    reason_zh: str
    fired: list[str]
    preregistration_id: int | None
    amount_minor: int
    business_date: date
    created_at: datetime
    held: bool | None = None

    @classmethod
    def of(cls, d: DecisionRecord, held: bool | None = None) -> DecisionPublic:
        return cls(txn_id=d.txn_id, merchant_id=d.merchant_id, terminal_id=d.terminal_id,
                   decision=d.decision, response_code=d.response_code, reason=d.reason,
                   reason_en=d.reason_en, reason_zh=d.reason_zh, fired=list(d.fired),
                   preregistration_id=d.preregistration_id, amount_minor=d.amount_minor,
                   business_date=d.business_date, created_at=d.created_at, held=held)


class PreregistrationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount_minor: int = Field(gt=0, le=10**12 - 1)
    valid_from: datetime
    valid_to: datetime
    terminal_id: Annotated[str, StringConstraints(pattern=TERMINAL_ID_PATTERN)] | None = None
    card_last4: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")] | None = None
    note: Note = ""


class PreregistrationPublic(BaseModel):
    prereg_id: int
    merchant_id: str
    amount_minor: int
    currency: str
    valid_from: datetime
    valid_to: datetime
    terminal_id: str | None
    card_last4: str | None
    note: str
    state: str
    used_txn_id: str | None
    used_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, p: Preregistration, now: datetime) -> PreregistrationPublic:
        return cls(prereg_id=p.prereg_id, merchant_id=p.merchant_id,
                   amount_minor=p.amount_minor, currency=p.currency, valid_from=p.valid_from,
                   valid_to=p.valid_to, terminal_id=p.terminal_id, card_last4=p.card_last4,
                   note=p.note, state=risk.preregistration_state(p, now),
                   used_txn_id=p.used_txn_id, used_at=p.used_at, created_at=p.created_at)


class LimitPublic(BaseModel):
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


class MerchantRiskPublic(BaseModel):
    merchant_id: str
    business_date: date
    limits: list[LimitPublic]
    preregistrations: list[PreregistrationPublic]
    decisions: list[DecisionPublic]


class ScorePublic(BaseModel):
    merchant_id: str
    business_date: date
    score: int
    reasons: list[dict[str, Any]]
    on_review: bool
    released_at: datetime | None
    released_by: str | None

    @classmethod
    def of(cls, s: ScoreRecord) -> ScorePublic:
        return cls(merchant_id=s.merchant_id, business_date=s.business_date, score=s.score,
                   reasons=s.reasons, on_review=s.on_review, released_at=s.released_at,
                   released_by=s.released_by)


class ScoreRun(BaseModel):
    model_config = ConfigDict(extra="forbid")
    business_date: date


class HoldChange(BaseModel):
    merchant_id: str
    txn_id: str
    held: bool
    items_changed: int


class RefundPublic(BaseModel):
    response_code: str
    approved: bool
    message: str
    refund_txn_id: str | None


class ReleasePublic(BaseModel):
    merchant_id: str
    business_date: date
    items_released: int


# -- operators: the rule editor ---------------------------------------------------------------

@router.get("/risk/rules", response_model=list[RulePublic])
def list_rules(ctx: Ctx, who: Who, include_inactive: bool = False) -> list[RulePublic]:
    """The latest version of every rule, built-in defaults (version 0) included."""
    return [RulePublic.of(r) for r in risk.list_rules(ctx, who, include_inactive)]


@router.put("/risk/rules/{rule_id}", response_model=RulePublic)
def put_rule(rule_id: RulePath, body: RuleBody, ctx: Ctx, who: Who, idem: Idem) -> Response:
    """Add the rule's next version (operator); effective at once, audited."""
    values = body.model_dump(exclude={"expected_version"})
    return idem.run(lambda: RulePublic.of(risk.put_rule(
        ctx, who, rule_id, risk.RuleInput(**values), body.expected_version)))


@router.delete("/risk/rules/{rule_id}", response_model=RulePublic)
def deactivate_rule(rule_id: RulePath, ctx: Ctx, who: Who, idem: Idem) -> Response:
    """A new, inactive version of the rule (a built-in default stops applying)."""
    return idem.run(lambda: RulePublic.of(risk.deactivate_rule(ctx, who, rule_id)))


@router.get("/risk/rules/{rule_id}/versions", response_model=list[RuleVersionPublic])
def rule_versions(rule_id: RulePath, ctx: Ctx, who: Who) -> list[RuleVersionPublic]:
    return [RuleVersionPublic.of_stored(s) for s in risk.rule_versions(ctx, who, rule_id)]


# -- operators: review queue, decisions, flagged merchants ----------------------------------

@router.get("/risk/review-queue", response_model=list[DecisionPublic])
def review_queue(ctx: Ctx, who: Who, merchant_id: MidQuery = None,
                 limit: Limit = 100) -> list[DecisionPublic]:
    """Transactions approved on review, newest first, and whether still held."""
    return [DecisionPublic.of(e.decision, e.held)
            for e in risk.review_queue(ctx, who, merchant_id, limit)]


def _hold(ctx: Ctx, who: Who, txn_id: str, held: bool) -> HoldChange:
    merchant_id, changed = risk.set_review_hold_by_id(ctx, who, txn_id, held)
    return HoldChange(merchant_id=merchant_id, txn_id=txn_id, held=held,
                      items_changed=changed)


@router.post("/risk/review/{txn_id}/hold", response_model=HoldChange)
def hold(txn_id: TxnPath, ctx: Ctx, who: Who, idem: Idem) -> Response:
    """Hold a transaction's unsettled settlement items (operator)."""
    return idem.run(lambda: _hold(ctx, who, txn_id, True))


@router.post("/risk/review/{txn_id}/release", response_model=HoldChange)
def release(txn_id: TxnPath, ctx: Ctx, who: Who, idem: Idem) -> Response:
    """Release them: they settle with the next run (operator)."""
    return idem.run(lambda: _hold(ctx, who, txn_id, False))


@router.post("/risk/review/{txn_id}/refund", response_model=RefundPublic)
def refund(txn_id: TxnPath, ctx: Ctx, who: Who, idem: Idem) -> Response:
    """Refund what is left of a transaction on review, at its terminal (operator)."""
    def run() -> RefundPublic:
        result = risk_review.refund_reviewed(ctx, who, txn_id)
        return RefundPublic(response_code=result.response_code.value,
                            approved=result.approved, message=result.message,
                            refund_txn_id=result.record.txn_id if result.record else None)
    return idem.run(run)


@router.get("/risk/decisions", response_model=list[DecisionPublic])
def list_decisions(ctx: Ctx, who: Who, merchant_id: MidQuery = None,
                   decision: Literal["decline", "review", "alert", "approve"] | None = None,
                   limit: Limit = 100) -> list[DecisionPublic]:
    """Decisions on which a rule fired, newest first (a merchant: its own)."""
    return [DecisionPublic.of(d) for d in risk.decisions(
        ctx, who, merchant_id if merchant_id is not None else who.merchant_id,
        [decision] if decision else None, limit)]


@router.post("/risk/scores/run", response_model=list[ScorePublic])
def run_scores(body: ScoreRun, ctx: Ctx, who: Who, idem: Idem) -> Response:
    """Score every merchant-day of a business date; put those above the threshold on
    review (their items of that day held)."""
    return idem.run(lambda: [ScorePublic.of(s) for s in risk_scoring.score_day(
        ctx, who, body.business_date)])


@router.get("/risk/flagged", response_model=list[ScorePublic])
def flagged(ctx: Ctx, who: Who, business_date: date | None = None,
            include_released: bool = False) -> list[ScorePublic]:
    """Merchant-days on review (or every scored one), with their reasons."""
    found = risk_scoring.flagged(ctx, who, business_date,
                                 None if include_released else True)
    return [ScorePublic.of(s) for s in found]


class FlaggedRelease(BaseModel):
    model_config = ConfigDict(extra="forbid")
    merchant_id: Annotated[str, StringConstraints(pattern=MERCHANT_ID_PATTERN)]
    business_date: date


@router.post("/risk/flagged/release", response_model=ReleasePublic)
def release_flagged(body: FlaggedRelease, ctx: Ctx, who: Who, idem: Idem) -> Response:
    """Take a merchant-day off review: its held items settle with the next run."""
    return idem.run(lambda: ReleasePublic(
        merchant_id=body.merchant_id, business_date=body.business_date,
        items_released=risk_scoring.release_merchant_day(ctx, who, body.merchant_id,
                                                         body.business_date)))


# -- the merchant -------------------------------------------------------------------------------

@router.get("/merchants/{merchant_id}/risk", response_model=MerchantRiskPublic)
def merchant_risk(merchant_id: MidPath, ctx: Ctx, who: Who) -> MerchantRiskPublic:
    """Its limits and today's usage, its pre-registrations, why each declined or held
    transaction was declined or held."""
    view = risk.merchant_view(ctx, who, merchant_id)
    now = ctx.now()
    return MerchantRiskPublic(
        merchant_id=view.merchant_id, business_date=view.business_date,
        limits=[LimitPublic(**vars_of(u)) for u in view.limits],
        preregistrations=[PreregistrationPublic.of(p, now) for p in view.preregistrations],
        decisions=[DecisionPublic.of(e.decision, e.held) for e in view.decisions])


def vars_of(value: Any) -> dict[str, Any]:
    return {name: getattr(value, name) for name in value.__dataclass_fields__}


@router.get("/merchants/{merchant_id}/risk/preregistrations",
            response_model=list[PreregistrationPublic])
def list_preregistrations(merchant_id: MidPath, ctx: Ctx,
                          who: Who) -> list[PreregistrationPublic]:
    now = ctx.now()
    return [PreregistrationPublic.of(p, now)
            for p in risk.list_preregistrations(ctx, who, merchant_id)]


@router.post("/merchants/{merchant_id}/risk/preregistrations", status_code=201,
             response_model=PreregistrationPublic)
def preregister(merchant_id: MidPath, body: PreregistrationCreate, ctx: Ctx, who: Who,
                idem: Idem) -> Response:
    """Pre-register (报备) one expected large transaction: inside the window, one
    transaction up to the amount may exceed the single and cumulative amount limits."""
    return idem.run(lambda: PreregistrationPublic.of(risk.preregister(
        ctx, who, merchant_id, risk.NewPreregistration(**body.model_dump())), ctx.now()),
        status_code=201)


@router.delete("/risk/preregistrations/{prereg_id}", response_model=PreregistrationPublic)
def cancel_preregistration(prereg_id: Annotated[int, Path(ge=1, le=2**62)], ctx: Ctx,
                           who: Who, idem: Idem) -> Response:
    """Cancel an open pre-registration (its merchant, or an operator)."""
    return idem.run(lambda: PreregistrationPublic.of(risk.cancel_preregistration_by_id(
        ctx, who, prereg_id), ctx.now()))


@router.get("/merchants/{merchant_id}/risk/scores", response_model=list[ScorePublic])
def merchant_scores(merchant_id: MidPath, ctx: Ctx, who: Who) -> list[ScorePublic]:
    return [ScorePublic.of(s) for s in risk_scoring.merchant_scores(ctx, who, merchant_id)]
