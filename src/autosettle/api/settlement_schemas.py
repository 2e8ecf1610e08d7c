"""Request and response shapes of the settlement API (``XCreate`` in, ``XPublic`` out)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from autosettle.api.schemas import SINGLE_LINE_PATTERN, CurrencyCode, Strict
from autosettle.domain.cards import CardKind
from autosettle.domain.fees import RefundFeePolicy
from autosettle.domain.jobs import JobRun
from autosettle.domain.maintenance import (
    ArrivalChange,
    CalendarOverride,
    DeferredRun,
    Notice,
    Window,
)
from autosettle.domain.merchants import CycleCode
from autosettle.domain.money import AMOUNT_MINOR_MAX, Money, currency
from autosettle.domain.settlement_records import (
    AlertRecord,
    BatchRecord,
    PayoutRecord,
    SettlementItem,
)

BATCH_ID_PATTERN = r"^[A-Za-z0-9-]{1,48}$"
PAYOUT_ID_PATTERN = r"^[0-9a-f]{32}$"
# A rate is a decimal fraction (0.0050 = 0.50 %); the domain checks its range.
RATE_PATTERN = r"^[0-9]{1,2}(\.[0-9]{1,8})?$"
Rate = Annotated[str, StringConstraints(pattern=RATE_PATTERN)]
MinorAmount = Annotated[int, Field(ge=0, le=AMOUNT_MINOR_MAX, strict=True)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500,
                                        pattern=SINGLE_LINE_PATTERN)]
ShortNote = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                             max_length=200, pattern=SINGLE_LINE_PATTERN)]


def _fmt(amount_minor: int, code: str) -> str:
    return Money(amount_minor, currency(code)).format()


# -- settlements ----------------------------------------------------------------------------

class SettlementItemPublic(BaseModel):
    txn_id: str
    source_txn_id: str
    kind: str = Field(description="capture, void, refund, or rev-<kind> for a reversal")
    txn_type: str
    card_kind: str | None
    business_date: date
    cycle: str
    due_date: date
    amount_minor: int
    fee_minor: int
    net_minor: int
    currency: str
    fee_schedule: str

    @classmethod
    def of(cls, i: SettlementItem) -> SettlementItemPublic:
        return cls(txn_id=i.txn_id, source_txn_id=i.source_txn_id, kind=i.kind,
                   txn_type=i.txn_type, card_kind=i.card_kind, business_date=i.business_date,
                   cycle=i.cycle, due_date=i.due_date, amount_minor=i.amount_minor,
                   fee_minor=i.fee_minor, net_minor=i.amount_minor - i.fee_minor,
                   currency=i.currency, fee_schedule=i.fee_schedule)


class PayoutPublic(BaseModel):
    payout_id: str
    merchant_id: str
    batch_id: str
    account_id: str | None
    amount_minor: int
    amount: str
    currency: str
    status: str = Field(description="blocked, pending, sent, confirmed or failed")
    attempts: int
    expected_arrival: date
    file_name: str | None
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, p: PayoutRecord) -> PayoutPublic:
        return cls(payout_id=p.payout_id, merchant_id=p.merchant_id, batch_id=p.batch_id,
                   account_id=p.account_id, amount_minor=p.amount_minor,
                   amount=_fmt(p.amount_minor, p.currency), currency=p.currency,
                   status=p.status, attempts=p.attempts, expected_arrival=p.expected_arrival,
                   file_name=p.file_name, failure_reason=p.failure_reason,
                   created_at=p.created_at, updated_at=p.updated_at)


class SettlementPublic(BaseModel):
    batch_id: str
    merchant_id: str
    cycle: str
    settlement_date: date
    run_key: str
    status: str
    item_count: int
    gross_minor: int = Field(description="Σ item amounts: sales − refunds − voids/reversals")
    fee_minor: int = Field(description="Σ item fees")
    surcharge_minor: int = Field(description="same-day (T+0/D+0) payout surcharge")
    debt_recovered_minor: int
    debt_added_minor: int
    payout_minor: int
    payout_amount: str
    currency: str
    expected_arrival: date
    created_at: datetime
    payout_status: str | None = Field(description="status of the payout; null when "
                                      "nothing was paid out (zero or debt)")
    payout: PayoutPublic | None
    items: list[SettlementItemPublic]
    items_truncated: bool

    @classmethod
    def of(cls, b: BatchRecord, payout: PayoutRecord | None,
           items: list[SettlementItem] | None, items_max: int) -> SettlementPublic:
        shown = (items or [])[:items_max]
        return cls(batch_id=b.batch_id, merchant_id=b.merchant_id, cycle=b.cycle,
                   settlement_date=b.settlement_date, run_key=b.run_key, status=b.status,
                   item_count=b.item_count, gross_minor=b.gross_minor, fee_minor=b.fee_minor,
                   surcharge_minor=b.surcharge_minor,
                   debt_recovered_minor=b.debt_recovered_minor,
                   debt_added_minor=b.debt_added_minor, payout_minor=b.payout_minor,
                   payout_amount=_fmt(b.payout_minor, b.currency), currency=b.currency,
                   expected_arrival=payout.expected_arrival if payout else b.expected_arrival,
                   created_at=b.created_at,
                   payout_status=payout.status if payout else None,
                   payout=PayoutPublic.of(payout) if payout else None,
                   items=[SettlementItemPublic.of(i) for i in shown],
                   items_truncated=b.item_count > len(shown))


class SettlementList(BaseModel):
    merchant_id: str
    settlements: list[SettlementPublic]


class PayoutList(BaseModel):
    payouts: list[PayoutPublic]


class PayoutFail(Strict):
    reason: ShortNote


# -- fee schedules --------------------------------------------------------------------------

class RateIn(Strict):
    rate: Rate = Field(description="decimal fraction, e.g. \"0.0050\" for 0.50 %")
    cap_minor: MinorAmount | None = None
    minimum_minor: MinorAmount | None = None


class SurchargeIn(Strict):
    rate: Rate = "0"
    fixed_minor: MinorAmount = 0


class FeeScheduleCreate(Strict):
    effective_from: date = Field(description="applies to transactions from this business "
                                 "date on; history keeps its fees")
    currency: CurrencyCode = "CNY"
    rates: dict[CardKind, RateIn] = Field(default_factory=dict)
    fallback: RateIn = Field(description="for card kinds not in rates")
    fixed_fee_minor: MinorAmount = 0
    same_day_surcharge: SurchargeIn = Field(default_factory=SurchargeIn)
    refund_fee_policy: RefundFeePolicy = RefundFeePolicy.PRO_RATA

    def spec(self) -> dict[str, Any]:
        return {
            "effective_from": self.effective_from.isoformat(), "currency": self.currency,
            "rates": {k.value: v.model_dump() for k, v in self.rates.items()},
            "fallback": self.fallback.model_dump(), "fixed_fee_minor": self.fixed_fee_minor,
            "same_day_surcharge": self.same_day_surcharge.model_dump(),
            "refund_fee_policy": self.refund_fee_policy.value,
        }


class RatePublic(BaseModel):
    rate: str
    cap_minor: int | None
    minimum_minor: int | None


class SurchargePublic(BaseModel):
    rate: str
    fixed_minor: int


class FeeSchedulePublic(BaseModel):
    schedule_id: str
    version: int
    effective_from: date
    currency: str
    rates: dict[str, RatePublic]
    fallback: RatePublic
    fixed_fee_minor: int
    same_day_surcharge: SurchargePublic
    refund_fee_policy: str


class FeeSchedulesPublic(BaseModel):
    merchant_id: str
    on: date
    current: FeeSchedulePublic = Field(description="in force on `on` (own or default)")
    versions: list[FeeSchedulePublic] = Field(description="the merchant's own versions")


class CycleCostPublic(BaseModel):
    cycle: str
    cost_minor: int
    cost: str
    difference_minor: int = Field(description="cost − cost of the current cycle")
    current: bool


class CycleCostsPublic(BaseModel):
    merchant_id: str
    date_from: date
    date_to: date
    current_cycle: str
    currency: str
    cheapest_cycle: str
    costs: list[CycleCostPublic]


# -- alerts, maintenance, calendar ----------------------------------------------------------

class AlertPublic(BaseModel):
    alert_id: int
    at: datetime
    severity: str
    kind: str
    merchant_id: str | None
    message: str
    resolved_at: datetime | None

    @classmethod
    def of(cls, a: AlertRecord) -> AlertPublic:
        return cls(alert_id=a.alert_id, at=a.at, severity=a.severity, kind=a.kind,
                   merchant_id=a.merchant_id, message=a.message, resolved_at=a.resolved_at)


class AlertList(BaseModel):
    alerts: list[AlertPublic]


class MaintenanceWindowCreate(Strict):
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    note: Note


class WindowPublic(BaseModel):
    window_id: int
    starts_at: datetime
    ends_at: datetime
    note: str

    @classmethod
    def of(cls, w: Window) -> WindowPublic:
        return cls(window_id=w.window_id, starts_at=w.starts_at, ends_at=w.ends_at,
                   note=w.note)


class DeferredRunPublic(BaseModel):
    job: str
    scheduled_at: datetime
    runs_at: datetime

    @classmethod
    def of(cls, r: DeferredRun) -> DeferredRunPublic:
        return cls(job=r.job, scheduled_at=r.scheduled_at, runs_at=r.runs_at)


class ArrivalChangePublic(BaseModel):
    cycle: str
    expected_arrival: date = Field(description="when it would have arrived")
    new_expected_arrival: date
    amount_minor: int | None = Field(description="waiting now for that date (merchants)")
    currency: str | None

    @classmethod
    def of(cls, a: ArrivalChange) -> ArrivalChangePublic:
        return cls(cycle=a.cycle, expected_arrival=a.was, new_expected_arrival=a.now,
                   amount_minor=a.amount_minor, currency=a.currency)


class NoticePublic(BaseModel):
    window: WindowPublic
    deferred_runs: list[DeferredRunPublic]
    arrivals: list[ArrivalChangePublic]

    @classmethod
    def of(cls, n: Notice) -> NoticePublic:
        return cls(window=WindowPublic.of(n.window),
                   deferred_runs=[DeferredRunPublic.of(r) for r in n.deferred_runs],
                   arrivals=[ArrivalChangePublic.of(a) for a in n.arrivals])


class NoticeList(BaseModel):
    notices: list[NoticePublic]


class CalendarOverrideCreate(Strict):
    day: date
    is_workday: bool = Field(strict=True)
    note: ShortNote


class CalendarOverridePublic(BaseModel):
    day: date
    is_workday: bool
    note: str

    @classmethod
    def of(cls, o: CalendarOverride) -> CalendarOverridePublic:
        return cls(day=o.day, is_workday=o.is_workday, note=o.note)


class CalendarOverrideList(BaseModel):
    overrides: list[CalendarOverridePublic]


class SettlementDatePublic(BaseModel):
    business_date: date
    cycle: str
    settlement_date: date


# -- settlement runs ------------------------------------------------------------------------

class SettlementRunCreate(Strict):
    date: Annotated[date, Field(description=(
        "The run's settlement date: not after the current business date (Asia/Shanghai, "
        "23:00 cut-off) and not before 2004-01-01, else 422 date_out_of_range"))]
    cycles: list[CycleCode] = Field(default_factory=lambda: [CycleCode.T1, CycleCode.D1],
                                    min_length=1, max_length=4)


class JobRunPublic(BaseModel):
    job_name: str
    run_key: str
    status: str = Field(description=(
        "running, done, failed, deferred (held back by a maintenance window), abandoned "
        "(its owner stopped before the end: lease expired) or superseded (a deferred run a "
        "later run of the same job covered)"))
    owner: str
    lease_expires_at: datetime
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, Any]
    error: str | None

    @classmethod
    def of(cls, r: JobRun) -> JobRunPublic:
        return cls(job_name=r.job_name, run_key=r.run_key, status=r.status, owner=r.owner,
                   lease_expires_at=r.lease_expires_at, started_at=r.started_at,
                   finished_at=r.finished_at, counts=dict(r.counts), error=r.error)


class JobRunList(BaseModel):
    runs: list[JobRunPublic]
