"""Reconciliation (operator only): days, runs, the discrepancy queue and its actions, the
daily summary. Files are imported with ``autosettle recon import`` (they are large and
arrive on the operator's side, not through the API). docs/reconciliation.md."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from autosettle.api.deps import Ctx, Idem, Who
from autosettle.services import recon

router = APIRouter(prefix="/v1/recon", tags=["reconciliation"])
CHANNEL_PATTERN = r"^[a-z0-9][a-z0-9-]{0,19}$"
STATE_PATTERN = "^(open|resolved)$"
CLASS_PATTERN = ("^(ours_only|theirs_only|amount_mismatch|status_mismatch|fee_mismatch|"
                 "date_mismatch)$")
ChannelPath = Annotated[str, Path(pattern=CHANNEL_PATTERN)]
IdPath = Annotated[int, Path(ge=1, le=2**62)]
Note = Annotated[str, Field(min_length=1, max_length=500)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunCreate(Strict):
    business_date: date
    channel: Annotated[str, Field(pattern=CHANNEL_PATTERN)] = "issuer-sim"


class RunPublic(BaseModel):
    channel: str
    business_date: date
    ours: int
    theirs: int
    counts: dict[str, int]
    cleared_minor: int
    auto_resolved: int


class DayPublic(BaseModel):
    channel: str
    business_date: date
    state: str
    matched: int
    cleared_minor: int
    runs: int


class DayList(BaseModel):
    items: list[DayPublic]


class DiscrepancyPublic(BaseModel):
    discrepancy_id: int
    channel: str
    business_date: date
    klass: str = Field(description="ours_only, theirs_only, amount_mismatch, "
                       "status_mismatch, fee_mismatch or date_mismatch")
    merchant_id: str | None
    txn_id: str | None
    line_id: int | None
    our_amount_minor: int | None
    their_amount_minor: int | None
    our_fee_minor: int | None
    their_fee_minor: int | None
    currency: str
    state: str
    owner: str | None
    resolution: str | None
    note: str | None
    entry_key: str | None
    created_at: datetime
    resolved_at: datetime | None
    age_days: int
    line: dict[str, Any] | None = None

    @classmethod
    def of(cls, d: recon.Discrepancy) -> DiscrepancyPublic:
        line = None
        if d.line is not None:
            line = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in d.line.items()}
        return cls(**{**{f: getattr(d, f) for f in cls.model_fields if f != "line"},
                      "line": line})


class DiscrepancyList(BaseModel):
    items: list[DiscrepancyPublic]
    next_after: int | None = Field(
        None, description="more rows: ask again with after=this id; null on the last page")


class Assign(Strict):
    owner: Annotated[str, Field(min_length=1, max_length=100)]


class Resolve(Strict):
    action: Annotated[str, Field(pattern="^(adjust|accept|refund|resettle)$")]
    reason: Note


class ClosePublic(BaseModel):
    channel: str
    business_date: date
    state: str


class SummaryPublic(BaseModel):
    business_date: date
    rows: list[dict[str, Any]]


@router.get("/days", response_model=DayList)
def list_days(ctx: Ctx, who: Who) -> DayList:
    """Every reconciled business date per channel, with its state."""
    return DayList(items=[DayPublic(**d) for d in recon.day_states(ctx, who)])


@router.post("/runs", response_model=RunPublic)
def run(body: RunCreate, ctx: Ctx, who: Who, idem: Idem) -> Response:
    """Match a channel's (or ``bank``'s) imported lines of a date against our records."""
    def go() -> RunPublic:
        r = recon.run_day(ctx, who, body.business_date, body.channel)
        return RunPublic(channel=r.channel, business_date=r.business_date, ours=r.ours,
                         theirs=r.theirs, counts=r.counts, cleared_minor=r.cleared_minor,
                         auto_resolved=r.auto_resolved)
    return idem.run(go)


@router.get("/discrepancies", response_model=DiscrepancyList)
def list_discrepancies(
    ctx: Ctx, who: Who,
    business_date: date | None = None,
    channel: Annotated[str | None, Query(pattern=CHANNEL_PATTERN)] = None,
    state: Annotated[str | None, Query(pattern=STATE_PATTERN)] = None,
    klass: Annotated[str | None, Query(pattern=CLASS_PATTERN)] = None,
    owner: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    after: Annotated[int | None, Query(ge=0, description="the previous page's next_after")]
    = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> DiscrepancyList:
    """The discrepancy queue, oldest first (id order), every filter applied by the database;
    page with ``after`` = the previous page's ``next_after``."""
    rows = recon.list_discrepancies(ctx, who, channel=channel, on=business_date, state=state,
                                    klass=klass, owner=owner, after=after, limit=limit + 1)
    page = rows[:limit]
    return DiscrepancyList(items=[DiscrepancyPublic.of(d) for d in page],
                           next_after=page[-1].discrepancy_id if len(rows) > limit else None)


@router.get("/discrepancies/{discrepancy_id}", response_model=DiscrepancyPublic)
def get_discrepancy(discrepancy_id: IdPath, ctx: Ctx, who: Who) -> DiscrepancyPublic:
    """One discrepancy with the other side's line (never a card number)."""
    return DiscrepancyPublic.of(recon.get_discrepancy(ctx, who, discrepancy_id))


@router.post("/discrepancies/{discrepancy_id}/assign", response_model=DiscrepancyPublic)
def assign(discrepancy_id: IdPath, body: Assign, ctx: Ctx, who: Who, idem: Idem) -> Response:
    """Give a discrepancy an owner (audited)."""
    return idem.run(lambda: DiscrepancyPublic.of(
        recon.assign(ctx, who, discrepancy_id, body.owner)))


@router.post("/discrepancies/{discrepancy_id}/resolve", response_model=DiscrepancyPublic)
def resolve(discrepancy_id: IdPath, body: Resolve, ctx: Ctx, who: Who,
            idem: Idem) -> Response:
    """Close a discrepancy: ``adjust`` (a balanced ledger entry with a reason code),
    ``refund`` / ``resettle`` (a request; a returned payout is sent again), ``accept``."""
    return idem.run(lambda: DiscrepancyPublic.of(
        recon.resolve(ctx, who, discrepancy_id, body.action, body.reason)))


@router.post("/days/{channel}/{business_date}/close", response_model=ClosePublic)
def close(channel: ChannelPath, business_date: date, ctx: Ctx, who: Who,
          idem: Idem) -> Response:
    """Close a business date whose discrepancies are all resolved; it cannot change after."""
    return idem.run(lambda: ClosePublic(**recon.close_day(ctx, who, business_date, channel)))


@router.get("/summary", response_model=SummaryPublic)
def summary(business_date: date, ctx: Ctx, who: Who) -> SummaryPublic:
    """The daily summary per channel: counts and amounts per class, unresolved ageing."""
    return SummaryPublic(business_date=business_date,
                         rows=recon.summary(ctx, who, business_date))
