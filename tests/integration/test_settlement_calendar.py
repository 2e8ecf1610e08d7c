"""Settlement dates on the real calendar, on both databases.

The weeks where acquirers get it wrong: the Spring Festival 2026 (closed Sun 02-15 to Mon
02-23; in-lieu workdays Sat 02-14 and Sat 02-28) and National Day 2026 (closed Thu 10-01 to
Wed 10-07; in-lieu Sun 09-20 and Sat 10-10); the cut-off (日切, 23:00 Shanghai); an operator's
bank closure; and a year ``chinesecalendar`` does not cover yet.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from jobtools import advance_clock_to

from autosettle.domain.calendar import SHANGHAI, WARNING_YEAR_UNCOVERED, BusinessCalendar
from autosettle.domain.merchants import AccountType, CycleCode, MerchantType
from autosettle.domain.money import Money
from autosettle.domain.settlement_records import BatchRecord, SettlementItem
from autosettle.domain.transactions import TxnType
from autosettle.services import merchants, payments, settlement
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.services.payments import CardInput, PaymentRequest
from autosettle.simulators.issuer import IssuerSimulator

DEBIT = "6222020200112345679"
SHOPS = {  # cycle → (merchant id, terminal id)
    "T1": ("898310054110001", "TT000001"),
    "D1": ("898310054110002", "TD000001"),
    "T0": ("898310054110003", "TZ000001"),
    "D0": ("898310054110004", "DZ000001"),
}


@pytest.fixture
def shops(ctx: ServiceContext, sim: IssuerSimulator) -> ServiceContext:
    for cycle, (mid, tid) in SHOPS.items():
        name = f"Calendar Shop {cycle} Co., Ltd."
        merchants.create_merchant(ctx, SYSTEM, merchants.NewMerchant(
            mid, name, MerchantType.ENTERPRISE, "5812", settlement_cycle=CycleCode(cycle)))
        merchants.add_settlement_account(ctx, SYSTEM, mid, merchants.NewSettlementAccount(
            "ICBC", "6212260200001234567", name, AccountType.CORPORATE))
        merchants.add_terminal(ctx, SYSTEM, mid, merchants.NewTerminal(tid))
    sim.add_card(DEBIT, balance_minor=100_000_000, pin=None, expiry="3512")
    return ctx


def at_shanghai(clock: Any, year: int, month: int, day: int, hour: int, minute: int,
                second: int = 0) -> None:
    """Move the (fake) clock to a Shanghai wall-clock time."""
    clock.now = datetime(year, month, day, hour, minute, second,
                         tzinfo=SHANGHAI).astimezone(UTC)


def sale(ctx: ServiceContext, cycle: str, fen: int = 10_000) -> str:
    mid, tid = SHOPS[cycle]
    result = payments.authorize(ctx, PaymentRequest(TxnType.SALE, mid, tid, Money(fen),
                                                    CardInput(DEBIT)))
    assert result.approved and result.record is not None, result.message
    return result.record.txn_id


def item_of(ctx: ServiceContext, cycle: str, txn_id: str) -> SettlementItem:
    with ctx.db.unit_of_work() as uow:
        items = uow.settlement.items_of_txn(SHOPS[cycle][0], txn_id)
    assert len(items) == 1
    return items[0]


def settled(ctx: ServiceContext, cycle: str, txn_id: str) -> bool:
    with ctx.db.unit_of_work() as uow:
        return not uow.claims.unsettled_item_ids(SHOPS[cycle][0], txn_id)


def batches_of(ctx: ServiceContext, cycle: str) -> list[BatchRecord]:
    with ctx.db.unit_of_work() as uow:
        return uow.settlement.batches(SHOPS[cycle][0], None, None, 100)


def settle_on(ctx: ServiceContext, day: date, cycles: tuple[str, ...]) -> int:
    advance_clock_to(ctx, day)  # a run may not be dated after the current business date
    return settlement.settle(ctx, day, cycles, run_key=f"{day}:{'+'.join(cycles)}").batches


def test_spring_festival_week(shops: ServiceContext, clock: Any) -> None:
    at_shanghai(clock, 2026, 2, 13, 10, 0)   # Friday before the holiday
    friday = sale(shops, "T1")
    at_shanghai(clock, 2026, 2, 14, 10, 0)   # Saturday, an in-lieu workday
    saturday = sale(shops, "T1", 20_000)
    at_shanghai(clock, 2026, 2, 15, 10, 0)   # Sunday, first day of the holiday
    sunday_t0 = sale(shops, "T0", 30_000)
    sunday_d0 = sale(shops, "D0", 40_000)
    sunday_d1 = sale(shops, "D1", 50_000)
    at_shanghai(clock, 2026, 2, 27, 10, 0)   # Friday after: T+1 is the in-lieu Saturday
    late = sale(shops, "T1", 60_000)

    assert item_of(shops, "T1", friday).due_date == date(2026, 2, 14)
    assert item_of(shops, "T1", saturday).due_date == date(2026, 2, 24)
    assert item_of(shops, "T0", sunday_t0).due_date == date(2026, 2, 24)
    assert item_of(shops, "D0", sunday_d0).due_date == date(2026, 2, 15)
    assert item_of(shops, "D1", sunday_d1).due_date == date(2026, 2, 16)
    assert item_of(shops, "T1", late).due_date == date(2026, 2, 28)
    assert settlement.expected_settlement(shops, date(2026, 2, 13), "T1") == date(2026, 2, 14)
    assert settlement.expected_settlement(shops, date(2026, 2, 14), "T+1") == date(2026, 2, 24)

    assert settle_on(shops, date(2026, 2, 13), ("T1", "D1")) == 0
    assert settle_on(shops, date(2026, 2, 14), ("T1", "D1")) == 1
    [first] = batches_of(shops, "T1")
    assert (first.item_count, first.gross_minor) == (1, 10_000)
    assert first.expected_arrival == date(2026, 2, 14)
    # The holiday: D0 is paid the same day and D1 the next calendar day; T cycles wait.
    assert settle_on(shops, date(2026, 2, 15), ("T0", "D0")) == 1
    assert batches_of(shops, "D0")[0].settlement_date == date(2026, 2, 15)
    for offset in range(1, 9):  # Mon 02-16 .. Mon 02-23
        day = date(2026, 2, 15) + timedelta(days=offset)
        expected = 1 if day == date(2026, 2, 16) else 0  # the D1 sale of Sunday
        assert settle_on(shops, day, ("T1", "D1")) == expected, day
        assert settle_on(shops, day, ("T0", "D0")) == 0, day
    assert batches_of(shops, "D1")[0].settlement_date == date(2026, 2, 16)
    assert batches_of(shops, "T0") == []
    assert len(batches_of(shops, "T1")) == 1
    # Tuesday 02-24, the first workday after the holiday.
    assert settle_on(shops, date(2026, 2, 24), ("T0", "D0")) == 1
    assert settle_on(shops, date(2026, 2, 24), ("T1", "D1")) == 1
    second = next(b for b in batches_of(shops, "T1") if b.batch_id != first.batch_id)
    assert (second.item_count, second.gross_minor) == (1, 20_000)
    assert batches_of(shops, "T0")[0].settlement_date == date(2026, 2, 24)
    assert settle_on(shops, date(2026, 2, 28), ("T1", "D1")) == 1  # Saturday, a workday
    assert max(b.settlement_date for b in batches_of(shops, "T1")) == date(2026, 2, 28)


def test_national_day_week(shops: ServiceContext, clock: Any) -> None:
    at_shanghai(clock, 2026, 9, 18, 10, 0)   # Friday: T+1 is the in-lieu Sunday 09-20
    friday = sale(shops, "T1")
    at_shanghai(clock, 2026, 9, 19, 10, 0)   # Saturday: its T+1 is that Sunday as well
    saturday = sale(shops, "T1")
    at_shanghai(clock, 2026, 9, 30, 10, 0)   # the eve of the holiday
    eve = sale(shops, "T1")
    eve_d1 = sale(shops, "D1")
    at_shanghai(clock, 2026, 10, 3, 10, 0)   # in the holiday
    holiday = sale(shops, "T1")
    holiday_d1 = sale(shops, "D1")
    at_shanghai(clock, 2026, 10, 9, 10, 0)   # Friday after: T+1 is the in-lieu Saturday
    after = sale(shops, "T1")

    due = {txn: item_of(shops, "T1", txn).due_date for txn in (friday, saturday, eve,
                                                              holiday, after)}
    assert due == {friday: date(2026, 9, 20), saturday: date(2026, 9, 20),
                   eve: date(2026, 10, 8), holiday: date(2026, 10, 8),
                   after: date(2026, 10, 10)}
    assert item_of(shops, "D1", eve_d1).due_date == date(2026, 10, 1)
    assert item_of(shops, "D1", holiday_d1).due_date == date(2026, 10, 4)

    assert settle_on(shops, date(2026, 9, 19), ("T1",)) == 0
    assert settle_on(shops, date(2026, 9, 20), ("T1",)) == 1   # in-lieu Sunday
    assert batches_of(shops, "T1")[0].item_count == 2
    for offset in range(7):  # Thu 10-01 .. Wed 10-07: closed
        day = date(2026, 10, 1) + timedelta(days=offset)
        assert settle_on(shops, day, ("T1",)) == 0, day
        assert settle_on(shops, day, ("D1",)) == (1 if day.day in (1, 4) else 0), day
    assert [b.settlement_date for b in batches_of(shops, "D1")] == [date(2026, 10, 4),
                                                                   date(2026, 10, 1)]
    assert settle_on(shops, date(2026, 10, 8), ("T1",)) == 1
    assert settle_on(shops, date(2026, 10, 10), ("T1",)) == 1  # in-lieu Saturday
    assert [(b.settlement_date, b.item_count) for b in batches_of(shops, "T1")] == [
        (date(2026, 10, 10), 1), (date(2026, 10, 8), 2), (date(2026, 9, 20), 2)]


def test_cutoff_splits_business_dates(shops: ServiceContext, clock: Any) -> None:
    at_shanghai(clock, 2026, 9, 16, 22, 59, 59)   # Wednesday, one second before the cut-off
    before = sale(shops, "T1")
    at_shanghai(clock, 2026, 9, 16, 23, 0, 0)     # the cut-off: Thursday's business
    after = sale(shops, "T1")
    early, late = item_of(shops, "T1", before), item_of(shops, "T1", after)
    assert (early.business_date, early.due_date) == (date(2026, 9, 16), date(2026, 9, 17))
    assert (late.business_date, late.due_date) == (date(2026, 9, 17), date(2026, 9, 18))
    assert settle_on(shops, date(2026, 9, 17), ("T1",)) == 1
    assert batches_of(shops, "T1")[0].item_count == 1
    assert settle_on(shops, date(2026, 9, 18), ("T1",)) == 1
    assert sorted(b.settlement_date for b in batches_of(shops, "T1")) == [
        date(2026, 9, 17), date(2026, 9, 18)]


def close_bank(ctx: ServiceContext, day: date) -> None:
    with ctx.db.unit_of_work() as uow:
        uow.config.set_calendar_override(day, False, "bank closure")


def test_bank_closure_announced_before_capture(shops: ServiceContext,
                                               clock: Any) -> None:
    close_bank(shops, date(2026, 9, 11))           # Friday (an ordinary workday)
    at_shanghai(clock, 2026, 9, 10, 10, 0)         # Thursday
    txn = sale(shops, "T1")
    assert item_of(shops, "T1", txn).due_date == date(2026, 9, 14)   # next Monday
    assert settlement.expected_settlement(shops, date(2026, 9, 10), "T1") == date(2026, 9, 14)
    assert settle_on(shops, date(2026, 9, 11), ("T1",)) == 0
    assert settle_on(shops, date(2026, 9, 14), ("T1",)) == 1


def test_bank_closure_announced_after_capture(shops: ServiceContext,
                                              clock: Any) -> None:
    at_shanghai(clock, 2026, 9, 10, 10, 0)         # Thursday
    txn = sale(shops, "T1")
    d1 = sale(shops, "D1")
    assert item_of(shops, "T1", txn).due_date == date(2026, 9, 11)
    close_bank(shops, date(2026, 9, 11))           # announced after the sale was captured
    assert settlement.expected_settlement(shops, date(2026, 9, 10), "T1") == date(2026, 9, 14)
    assert settle_on(shops, date(2026, 9, 11), ("T1", "D1")) == 1  # D1 pays on any day
    assert batches_of(shops, "D1")[0].item_count == 1
    assert settled(shops, "D1", d1)
    assert not settled(shops, "T1", txn)
    assert settle_on(shops, date(2026, 9, 12), ("T1",)) == 0
    assert settle_on(shops, date(2026, 9, 14), ("T1",)) == 1
    [batch] = batches_of(shops, "T1")
    assert (batch.settlement_date, batch.expected_arrival) == (date(2026, 9, 14),
                                                               date(2026, 9, 14))


def test_uncovered_year_falls_back_to_weekends_and_alerts(shops: ServiceContext,
                                                          clock: Any) -> None:
    assert not BusinessCalendar.covers(2031)
    at_shanghai(clock, 2031, 3, 7, 10, 0)   # a Friday
    txn = sale(shops, "T1")
    assert item_of(shops, "T1", txn).due_date == date(2031, 3, 10)   # Monday
    assert settle_on(shops, date(2031, 3, 8), ("T1",)) == 0          # Saturday
    advance_clock_to(shops, date(2031, 3, 10))
    run = settlement.settle(shops, date(2031, 3, 10), ("T1",))
    assert (run.batches, run.errors) == (1, [])
    assert settle_on(shops, date(2031, 3, 11), ("T1",)) == 0
    with shops.db.unit_of_work() as uow:
        alerts = [a for a in uow.alerts.open_alerts() if a.kind == WARNING_YEAR_UNCOVERED]
    assert len(alerts) == 1   # raised once, however many lookups fell back
    assert "2031" in alerts[0].message
