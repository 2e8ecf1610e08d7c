"""Settlements, fee schedules, cycle costs, payouts, alerts, maintenance notices, the
calendar and settlement runs. A merchant key sees only its own merchant (404 otherwise)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from autosettle.api.deps import Ctx, Idem, Who
from autosettle.api.schemas import MERCHANT_ID_PATTERN
from autosettle.api.settlement_schemas import (
    BATCH_ID_PATTERN,
    PAYOUT_ID_PATTERN,
    AlertList,
    AlertPublic,
    CalendarOverrideCreate,
    CalendarOverrideList,
    CalendarOverridePublic,
    CycleCostPublic,
    CycleCostsPublic,
    FeeScheduleCreate,
    FeeSchedulePublic,
    FeeSchedulesPublic,
    JobRunList,
    JobRunPublic,
    MaintenanceWindowCreate,
    NoticeList,
    NoticePublic,
    PayoutFail,
    PayoutList,
    PayoutPublic,
    SettlementDatePublic,
    SettlementList,
    SettlementPublic,
    SettlementRunCreate,
    WindowPublic,
)
from autosettle.domain.calendar import SHANGHAI, SettlementCycle
from autosettle.domain.errors import InvariantViolation
from autosettle.domain.fees import FeeSchedule, schedule_to_dict
from autosettle.domain.merchants import CycleCode
from autosettle.domain.money import Money, currency
from autosettle.domain.payouts import PayoutStatus
from autosettle.domain.settlement_records import BatchDetail
from autosettle.services import (
    alerts,
    fee_schedules,
    leases,
    maintenance,
    payouts,
    settlement,
    settlement_queries,
)
from autosettle.services.context import ServiceContext

router = APIRouter(prefix="/v1", tags=["settlement"])
MidPath = Annotated[str, Path(pattern=MERCHANT_ID_PATTERN)]
MidQuery = Annotated[str | None, Query(pattern=MERCHANT_ID_PATTERN)]
BatchPath = Annotated[str, Path(pattern=BATCH_ID_PATTERN)]
PayoutPath = Annotated[str, Path(pattern=PAYOUT_ID_PATTERN)]
SETTLEMENTS_LISTED_MAX = 200
ITEMS_IN_LIST_MAX = 100
ITEMS_IN_DETAIL_MAX = 10_000
PAYOUTS_LISTED_MAX = 1_000
PAYOUT_STATUS_PATTERN = "^(" + "|".join(s.value for s in PayoutStatus) + ")$"
JOB_NAME_PATTERN = r"^[a-z0-9-]{1,40}$"
COST_DAYS_DEFAULT = 30


def _today(ctx: ServiceContext) -> date:
    return ctx.now().astimezone(SHANGHAI).date()


def _view(detail: BatchDetail, items_max: int) -> SettlementPublic:
    return SettlementPublic.of(detail.batch, detail.payout, detail.items, items_max)


# -- settlements ----------------------------------------------------------------------------

@router.get("/merchants/{merchant_id}/settlements", response_model=SettlementList)
def list_settlements(
    merchant_id: MidPath, ctx: Ctx, who: Who,
    date_from: Annotated[date | None, Query()] = None,
    date_to: Annotated[date | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=SETTLEMENTS_LISTED_MAX)] = 50,
    include_items: Annotated[bool, Query(description="up to 100 items per settlement")] = True,
) -> SettlementList:
    """The merchant's settlement batches, newest first: totals, fees, debt, expected
    arrival, payout status and (by default) their items."""
    items_max = ITEMS_IN_LIST_MAX if include_items else 0
    found = settlement_queries.list_settlements(ctx, who, merchant_id, date_from, date_to,
                                                limit, items_max)
    return SettlementList(merchant_id=merchant_id,
                          settlements=[_view(d, items_max) for d in found])


@router.get("/settlements/{batch_id}", response_model=SettlementPublic)
def get_settlement(batch_id: BatchPath, ctx: Ctx, who: Who) -> SettlementPublic:
    """One settlement batch with its items (up to 10,000) and its payout."""
    return _view(settlement_queries.get_settlement(ctx, who, batch_id, ITEMS_IN_DETAIL_MAX),
                 ITEMS_IN_DETAIL_MAX)


# -- fee schedules and cycle costs ----------------------------------------------------------

def _schedule_public(schedule: FeeSchedule) -> FeeSchedulePublic:
    return FeeSchedulePublic.model_validate(schedule_to_dict(schedule))


@router.get("/merchants/{merchant_id}/fee-schedules", response_model=FeeSchedulesPublic,
            tags=["fees"])
def get_fee_schedules(merchant_id: MidPath, ctx: Ctx, who: Who,
                      on: Annotated[date | None, Query()] = None) -> FeeSchedulesPublic:
    """The schedule in force on ``on`` (default: today in Shanghai) and every version."""
    day = on or _today(ctx)
    current = fee_schedules.current_schedule(ctx, who, merchant_id, day)
    versions = fee_schedules.schedule_versions(ctx, who, merchant_id)
    return FeeSchedulesPublic(merchant_id=merchant_id, on=day,
                              current=_schedule_public(current),
                              versions=[_schedule_public(v) for v in versions])


@router.post("/merchants/{merchant_id}/fee-schedules", status_code=201,
             response_model=FeeSchedulePublic, tags=["fees"])
def create_fee_schedule(merchant_id: MidPath, body: FeeScheduleCreate, ctx: Ctx, who: Who,
                        idem: Idem) -> Response:
    """Add a schedule version (operator); it applies from ``effective_from``."""
    return idem.run(lambda: _schedule_public(
        fee_schedules.set_schedule(ctx, who, merchant_id, body.spec())), status_code=201)


@router.get("/merchants/{merchant_id}/cycle-costs", response_model=CycleCostsPublic,
            tags=["fees"])
def cycle_costs(merchant_id: MidPath, ctx: Ctx, who: Who,
                date_from: Annotated[date | None, Query()] = None,
                date_to: Annotated[date | None, Query()] = None) -> CycleCostsPublic:
    """What the merchant's sales in the period (business dates, default: the last 30 days)
    cost on its cycle and on each other one."""
    date_to = date_to or _today(ctx)
    # the ordinal form: no OverflowError for a date_to in the first days of year 1
    date_from = date_from or date.fromordinal(max(1, date_to.toordinal()
                                                  - (COST_DAYS_DEFAULT - 1)))
    compared = fee_schedules.compare_cycles(ctx, who, merchant_id, date_from, date_to)
    own, cur, costs = compared.current_cycle, compared.currency, compared.costs
    base = costs.get(own, 0)
    rows = [CycleCostPublic(cycle=cycle, cost_minor=cost,
                            cost=Money(cost, currency(cur)).format(),
                            difference_minor=cost - base, current=cycle == own)
            for cycle, cost in sorted(costs.items())]
    cheapest = min(rows, key=lambda r: (r.cost_minor, not r.current, r.cycle)).cycle \
        if rows else own
    return CycleCostsPublic(merchant_id=merchant_id, date_from=date_from, date_to=date_to,
                            current_cycle=own, currency=cur, cheapest_cycle=cheapest,
                            costs=rows)


# -- payouts --------------------------------------------------------------------------------

@router.get("/payouts", response_model=PayoutList, tags=["payouts"])
def list_payouts(ctx: Ctx, who: Who,
                 status: Annotated[str | None, Query(pattern=PAYOUT_STATUS_PATTERN)] = None,
                 merchant_id: MidQuery = None,
                 limit: Annotated[int, Query(ge=1, le=PAYOUTS_LISTED_MAX)] = 100) -> PayoutList:
    """Payouts, oldest first (operator)."""
    found = settlement_queries.list_payouts(
        ctx, who, PayoutStatus(status) if status is not None else None, merchant_id, limit)
    return PayoutList(payouts=[PayoutPublic.of(p) for p in found])


@router.post("/payouts/{payout_id}/confirm", response_model=PayoutPublic, tags=["payouts"])
def confirm_payout(payout_id: PayoutPath, ctx: Ctx, who: Who, idem: Idem) -> Response:
    """The bank credited the merchant (operator): sent → confirmed."""
    return idem.run(lambda: PayoutPublic.of(payouts.confirm_payout(ctx, payout_id, who)))


@router.post("/payouts/{payout_id}/fail", response_model=PayoutPublic, tags=["payouts"])
def fail_payout(payout_id: PayoutPath, body: PayoutFail, ctx: Ctx, who: Who,
                idem: Idem) -> Response:
    """The bank returned the payout (operator): sent → failed; the money goes back to the
    merchant's payable and an alert is raised."""
    return idem.run(lambda: PayoutPublic.of(payouts.fail_payout(ctx, payout_id,
                                                                body.reason, who)))


@router.post("/payouts/{payout_id}/retry", response_model=PayoutPublic, tags=["payouts"])
def retry_payout(payout_id: PayoutPath, ctx: Ctx, who: Who, idem: Idem) -> Response:
    """Send a failed or blocked payout again after the account was fixed (operator):
    → pending; the next payout file carries it."""
    return idem.run(lambda: PayoutPublic.of(payouts.retry_payout(ctx, who, payout_id)))


# -- alerts ---------------------------------------------------------------------------------

@router.get("/alerts", response_model=AlertList, tags=["alerts"])
def list_alerts(ctx: Ctx, who: Who, merchant_id: MidQuery = None,
                include_resolved: bool = False,
                limit: Annotated[int, Query(ge=1, le=alerts.ALERTS_LISTED_MAX)] = 100
                ) -> AlertList:
    """Alerts, newest first: all of them for an operator, a merchant's own otherwise."""
    return AlertList(alerts=[AlertPublic.of(a) for a in alerts.list_alerts(
        ctx, who, merchant_id, include_resolved, limit)])


@router.post("/alerts/{alert_id}/resolve", response_model=AlertPublic, tags=["alerts"])
def resolve_alert(alert_id: Annotated[int, Path(ge=1, le=2**62)], ctx: Ctx, who: Who,
                  idem: Idem) -> Response:
    """Mark an alert handled (operator)."""
    return idem.run(lambda: AlertPublic.of(alerts.resolve_alert(ctx, who, alert_id)))


# -- maintenance and notices ----------------------------------------------------------------

@router.post("/maintenance-windows", status_code=201, response_model=WindowPublic,
             tags=["maintenance"])
def announce_window(body: MaintenanceWindowCreate, ctx: Ctx, who: Who,
                    idem: Idem) -> Response:
    """Announce a maintenance window (operator): jobs due inside it run when it ends."""
    return idem.run(lambda: WindowPublic.of(maintenance.announce(
        ctx, who, body.starts_at, body.ends_at, body.note)), status_code=201)


@router.get("/notices", response_model=NoticeList, tags=["maintenance"])
def notices(ctx: Ctx, who: Who, merchant_id: MidQuery = None) -> NoticeList:
    """Current and upcoming maintenance windows, the runs they defer and the new expected
    arrival of the caller's money (an operator may name a merchant)."""
    return NoticeList(notices=[NoticePublic.of(n) for n in maintenance.notices(
        ctx, who, merchant_id)])


# -- calendar -------------------------------------------------------------------------------

@router.post("/calendar/overrides", status_code=201, response_model=CalendarOverridePublic,
             tags=["calendar"])
def set_override(body: CalendarOverrideCreate, ctx: Ctx, who: Who, idem: Idem) -> Response:
    """Declare a day a workday or a closure (operator); replaces an earlier override."""
    return idem.run(lambda: CalendarOverridePublic.of(maintenance.set_calendar_override(
        ctx, who, body.day, body.is_workday, body.note)), status_code=201)


@router.get("/calendar/overrides", response_model=CalendarOverrideList, tags=["calendar"])
def list_overrides(ctx: Ctx, who: Who, date_from: Annotated[date | None, Query()] = None,
                   date_to: Annotated[date | None, Query()] = None) -> CalendarOverrideList:
    """The operator's override table (operator)."""
    return CalendarOverrideList(overrides=[CalendarOverridePublic.of(o) for o in
                                           maintenance.list_calendar_overrides(
                                               ctx, who, date_from, date_to)])


@router.get("/calendar/settlement-date", response_model=SettlementDatePublic,
            tags=["calendar"])
def settlement_date(ctx: Ctx, who: Who, business_date: Annotated[date, Query(alias="date")],
                    cycle: CycleCode = CycleCode.T1) -> SettlementDatePublic:
    """When a business date's transactions settle on ``cycle`` (with the overrides)."""
    return SettlementDatePublic(business_date=business_date, cycle=cycle.value,
                                settlement_date=settlement.expected_settlement(
                                    ctx, business_date, cycle.value, who))


# -- settlement runs ------------------------------------------------------------------------

@router.post("/settlement-runs", status_code=201, response_model=JobRunPublic,
             tags=["settlement-runs"])
def run_settlement(body: SettlementRunCreate, ctx: Ctx, who: Who, idem: Idem) -> Response:
    """Settle a date now (operator), synchronously; recorded as job ``settle-manual``.

    Re-running a date changes nothing. Refused (409) inside a maintenance window.
    """
    def run() -> JobRunPublic:
        cycles = tuple(dict.fromkeys(SettlementCycle.parse(c.value).value
                                     for c in body.cycles))
        done = leases.settle_now(ctx, who, body.date, cycles)
        found = leases.get_run(ctx, done.outcome.job_name, done.outcome.run_key)
        if found is None:
            raise InvariantViolation("the run was not recorded")
        return JobRunPublic.of(found)
    return idem.run(run, status_code=201)


@router.get("/settlement-runs", response_model=JobRunList, tags=["settlement-runs"])
def list_runs(ctx: Ctx, who: Who,
              job: Annotated[str | None, Query(pattern=JOB_NAME_PATTERN)] = None,
              limit: Annotated[int, Query(ge=1, le=leases.RECENT_RUNS_MAX)] = 50
              ) -> JobRunList:
    """Recent job runs of the scheduler and of operators (operator), newest first."""
    who.require_operator()
    return JobRunList(runs=[JobRunPublic.of(r) for r in leases.recent_runs(ctx, job, limit)])
