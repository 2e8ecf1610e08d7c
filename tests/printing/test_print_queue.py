"""The print queue on both databases: every receipt a persisted job, an offline printer
never touches the payment, a printer that goes away mid-slip prints it exactly once when it
comes back, jobs survive a restart, reprints, stuck jobs, the settlement slip."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from printtools import (
    MID,
    PAN,
    PAN_POOR,
    TID,
    TID2,
    FakePrinter,
    PrinterState,
    decode_escpos,
    follow_up,
    sale,
    seed_shop,
    txn_of,
)

from autosettle.domain.errors import AuthError, NotFoundError, ValidationError
from autosettle.domain.iso8583.fields import CardTotals, SettlementTotals
from autosettle.domain.print_records import JobKind, JobState
from autosettle.domain.transactions import TxnStatus, TxnType
from autosettle.services import printing, terminal_batches
from autosettle.services.context import SYSTEM, Principal, Role, ServiceContext
from autosettle.services.printing import NewPrinter, PrinterChanges
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.store.uow import Database

PRINTER = "front-desk"


@pytest.fixture
def fake() -> Iterator[FakePrinter]:
    printer = FakePrinter()
    yield printer
    printer.close()


@pytest.fixture
def shop(ctx: ServiceContext, sim: IssuerSimulator, fake: FakePrinter) -> ServiceContext:
    seed_shop(ctx, sim)
    ctx.settings.printer_timeout_s = 1.0
    printing.add_printer(ctx, SYSTEM, NewPrinter(PRINTER, MID, TID, "network", fake.address))
    return ctx


def jobs(ctx: ServiceContext, state: JobState | None = None) -> list[printing.PrintJob]:
    found = printing.list_jobs(ctx, SYSTEM, PRINTER, state.value if state else None,
                               limit=500)
    return sorted(found, key=lambda j: j.job_id)


def unsettled(ctx: ServiceContext) -> int:
    with ctx.db.unit_of_work() as uow:
        return -uow.ledger.balance(f"merchant_unsettled:{MID}", "CNY")


def assert_ledger_balanced(ctx: ServiceContext) -> None:
    with ctx.db.unit_of_work() as uow:
        assert all(v == 0 for v in uow.ledger.imbalance_by_currency().values())


def test_each_approved_sale_gets_a_merchant_and_a_cardholder_slip_once(
        shop: ServiceContext, fake: FakePrinter, clock: object) -> None:
    first = txn_of(sale(shop, 1234))
    clock.advance(seconds=1)  # type: ignore[attr-defined]
    second = txn_of(sale(shop, 500))
    assert printing.follow(shop) == 4
    assert printing.follow(shop) == 0  # idempotent
    queued = jobs(shop)
    assert [(j.txn_id, j.copy) for j in queued] == [
        (first, "merchant"), (first, "cardholder"), (second, "merchant"),
        (second, "cardholder")]
    run = printing.deliver(shop)
    assert (run.printed, run.failed) == (4, 0)
    assert printing.deliver(shop).printed == 0
    printed = decode_escpos(fake.received())
    assert printed.cuts == 4
    assert printed.qr_payloads == [first, first, second, second]
    assert printed.text.count("商户存根 MERCHANT COPY") == 2
    assert printed.text.count("持卡人存根 CARDHOLDER COPY") == 2
    assert f"{PAN[:6]}*********{PAN[-4:]}" in printed.text and PAN not in printed.text
    assert "RMB 12.34" in printed.text and "密码验证,免签名" in printed.text
    assert all(j.state is JobState.PRINTED for j in jobs(shop))


def test_an_offline_printer_never_touches_the_payment(
        shop: ServiceContext, fake: FakePrinter) -> None:
    fake.close()  # switched off
    result = sale(shop, 1234)
    assert result.record is not None and result.record.status == TxnStatus.APPROVED
    printing.follow(shop)
    run = printing.deliver(shop)
    assert (run.printed, run.failed, run.waiting) == (0, 1, 1)
    first, second = jobs(shop)
    assert first.state is JobState.PENDING and first.attempts == 1
    assert first.last_error is not None and "refused" in first.last_error
    assert first.next_attempt_at == shop.now() + printing.backoff(1)
    assert second.attempts == 0  # the printer's other jobs waited
    assert unsettled(shop) == 1234
    assert_ledger_balanced(shop)


def test_a_printer_that_goes_away_mid_slip_prints_it_exactly_once_when_back(
        shop: ServiceContext, fake: FakePrinter, clock: object) -> None:
    txn = txn_of(sale(shop, 888))
    printing.follow(shop)
    fake.state = PrinterState(drop_after_bytes=300)
    run = printing.deliver(shop)
    assert run.failed == 1 and run.printed == 0
    assert decode_escpos(fake.received()).cuts == 0  # half a slip, no cut
    fake.state = PrinterState()  # back
    assert printing.deliver(shop).printed == 0  # not due before the backoff
    clock.advance(seconds=6)  # type: ignore[attr-defined]
    assert printing.deliver(shop).printed == 2
    clock.advance(seconds=600)  # type: ignore[attr-defined]
    assert printing.deliver(shop).printed == 0
    last = fake.connections[-1]
    complete = decode_escpos(bytes(last))
    assert complete.cuts == 2 and complete.qr_payloads == [txn, txn]
    assert decode_escpos(fake.received()).qr_payloads.count(txn) == 2  # one per copy, once


@pytest.mark.parametrize("state", [PrinterState(paper_out=True), PrinterState(cover_open=True),
                                   PrinterState(silent=True)])
def test_no_slip_goes_to_a_printer_that_cannot_print(
        shop: ServiceContext, fake: FakePrinter, clock: object, state: PrinterState) -> None:
    sale(shop, 100)
    printing.follow(shop)
    fake.state = state
    assert printing.deliver(shop).failed == 1
    assert fake.received() == b""
    fake.state = PrinterState()
    clock.advance(seconds=10)  # type: ignore[attr-defined]
    assert printing.deliver(shop).printed == 2


def test_jobs_survive_a_restart(shop: ServiceContext, fake: FakePrinter, clock: object) -> None:
    fake.state = PrinterState(paper_out=True)
    txn_of(sale(shop, 4321))
    printing.follow(shop)
    printing.deliver(shop)
    shop.db.dispose()
    restarted = ServiceContext(settings=shop.settings,
                               db=Database(shop.settings.effective_database_url), clock=shop.clock,
                               channel=shop.channel)
    try:
        assert len(jobs(restarted, JobState.PENDING)) == 2
        fake.state = PrinterState()
        clock.advance(seconds=10)  # type: ignore[attr-defined]
        assert printing.deliver(restarted).printed == 2
    finally:
        restarted.db.dispose()


def test_stuck_jobs_are_shown(shop: ServiceContext, fake: FakePrinter, clock: object) -> None:
    fake.state = PrinterState(cover_open=True)
    sale(shop, 100)
    printing.follow(shop)
    assert printing.list_jobs(shop, SYSTEM, stuck_only=True) == []
    for _ in range(3):
        printing.deliver(shop)
        clock.advance(seconds=400)  # type: ignore[attr-defined]
    stuck = printing.list_jobs(shop, SYSTEM, stuck_only=True)
    assert len(stuck) == 2 and all(printing.is_stuck(j, shop.now()) for j in stuck)
    assert stuck[-1].last_error is not None and "cover_open" in stuck[-1].last_error


def test_declines_voids_and_refunds(shop: ServiceContext, fake: FakePrinter) -> None:
    declined = sale(shop, 50_000, pan=PAN_POOR)
    assert declined.record is not None and declined.record.status == TxnStatus.DECLINED
    original = sale(shop, 2_000)
    refund = follow_up(shop, TxnType.REFUND, txn_of(original), 500)
    void = follow_up(shop, TxnType.VOID, txn_of(sale(shop, 700)))
    printing.follow(shop)
    printing.deliver(shop)
    kinds = [(j.txn_id, j.kind) for j in jobs(shop)]
    assert (txn_of(declined), JobKind.DECLINE) in kinds
    assert sum(1 for t, _ in kinds if t == txn_of(declined)) == 1
    text = decode_escpos(fake.received()).text
    assert "交易失败" in text and "可用余额不足" in text
    assert "退货 REFUND" in text and "RMB -5.00" in text and "撤销 VOID" in text
    assert original.record is not None and original.record.stan in text  # original trace
    assert refund.record is not None and void.record is not None
    assert unsettled(shop) == 2_000 - 500
    assert_ledger_balanced(shop)


def test_reprints_are_marked_duplicate(shop: ServiceContext, fake: FakePrinter,
                                      clock: object) -> None:
    first = sale(shop, 111)
    clock.advance(seconds=1)  # type: ignore[attr-defined]
    second = sale(shop, 222)
    printing.follow(shop)
    printing.deliver(shop)
    assert first.record is not None and second.record is not None
    last = printing.reprint(shop, SYSTEM, PRINTER)
    assert [j.txn_id for j in last] == [second.record.txn_id] * 2
    by_trace = printing.reprint(shop, SYSTEM, PRINTER, trace=str(int(first.record.stan)))
    by_rrn = printing.reprint(shop, SYSTEM, PRINTER, rrn=first.record.rrn)
    assert {j.txn_id for j in by_trace + by_rrn} == {first.record.txn_id}
    assert len({j.job_key for j in by_trace + by_rrn}) == 4  # two reprints, two copies each
    assert all(j.duplicate for j in last + by_trace + by_rrn)
    before = len(fake.received())
    assert printing.deliver(shop).printed == 6
    assert decode_escpos(fake.received()[before:]).text.count("重打印 DUPLICATE") == 6
    with pytest.raises(NotFoundError):
        printing.reprint(shop, SYSTEM, PRINTER, trace="999999")
    with pytest.raises(ValidationError):
        printing.reprint(shop, SYSTEM, PRINTER, trace="1", rrn="2")


def test_the_batch_close_prints_the_settlement_slip(shop: ServiceContext,
                                                    fake: FakePrinter) -> None:
    records = [sale(shop, fen).record for fen in (1000, 2000, 3000)]
    assert all(records)
    batch_no = records[0].batch_no  # type: ignore[union-attr]
    totals = SettlementTotals(CardTotals(debit_amount_minor=6000, debit_count=3))
    outcome = terminal_batches.settle(shop, MID, TID, batch_no, totals)
    assert outcome.balanced
    printing.follow(shop)
    printing.deliver(shop)
    settlement = [j for j in jobs(shop) if j.kind is JobKind.SETTLEMENT]
    assert len(settlement) == 1 and settlement[0].state is JobState.PRINTED
    text = decode_escpos(fake.received()).text
    assert "结算总计单" in text and "对账平 BALANCED" in text
    assert "消费 SALE" in text and "RMB 60.00" in text
    assert printing.follow(shop) == 0
    again = printing.reprint(shop, SYSTEM, PRINTER)
    assert [j.kind for j in again] == [JobKind.SETTLEMENT]


def test_only_the_terminal_with_a_printer_and_only_after_it_was_added(
        shop: ServiceContext, clock: object) -> None:
    sale(shop, 100, terminal_id=TID2)
    assert printing.follow(shop) == 0
    printing.update_printer(shop, SYSTEM, PRINTER, PrinterChanges(copies=3))
    sale(shop, 100)
    assert printing.follow(shop) == 3  # merchant, cardholder, bank


def test_two_workers_never_print_one_job_twice(shop: ServiceContext) -> None:
    sale(shop, 100)
    printing.follow(shop)
    job = jobs(shop)[0]
    now = shop.now()
    with shop.db.unit_of_work() as uow:
        assert uow.printing.claim(job.job_id, now, now + printing.CLAIM_LEASE)
    with shop.db.unit_of_work() as uow:
        assert not uow.printing.claim(job.job_id, now, now + printing.CLAIM_LEASE)


def test_who_may_do_what(shop: ServiceContext) -> None:
    merchant = Principal("m", Role.MERCHANT, MID)
    other = Principal("o", Role.MERCHANT, "898310058120001")
    own_till = Principal("t", Role.TERMINAL, MID, TID)
    other_till = Principal("t2", Role.TERMINAL, MID, TID2)
    assert [p.name for p in printing.list_printers(shop, merchant)] == [PRINTER]
    assert printing.get_printer(shop, own_till, PRINTER).terminal_id == TID
    assert printing.list_printers(shop, other) == []
    assert printing.list_printers(shop, other_till) == []
    for who in (other, other_till):
        with pytest.raises(NotFoundError):
            printing.get_printer(shop, who, PRINTER)
        with pytest.raises(NotFoundError):
            printing.reprint(shop, who, PRINTER)
    with pytest.raises(AuthError):
        printing.add_printer(shop, merchant, NewPrinter("x", MID, TID2, "file", "/tmp/x.prn"))
    with pytest.raises(AuthError):
        printing.remove_printer(shop, own_till, PRINTER)


@pytest.mark.parametrize(("field", "value"), [
    ("interface", "bluetooth"), ("address", "no such:host:99"), ("width_cols", 40),
    ("encoding", "utf-8"), ("copies", 4), ("name", "has space"),
])
def test_bad_printer_settings_are_refused_and_change_nothing(
        ctx: ServiceContext, sim: IssuerSimulator, field: str, value: object) -> None:
    seed_shop(ctx, sim)
    good = dict(name="p1", merchant_id=MID, terminal_id=TID2, interface="network",
                address="10.0.0.9", width_cols=32, encoding="gb18030", copies=2)
    with pytest.raises(ValidationError):
        printing.add_printer(ctx, SYSTEM, NewPrinter(**{**good, field: value}))  # type: ignore[arg-type]
    assert printing.list_printers(ctx, SYSTEM) == []
    with pytest.raises(NotFoundError):
        printing.add_printer(ctx, SYSTEM, NewPrinter(**{**good, "terminal_id": "ZZ000009"}))  # type: ignore[arg-type]


def test_removing_a_printer_cancels_its_pending_jobs(shop: ServiceContext,
                                                     fake: FakePrinter) -> None:
    fake.state = PrinterState(paper_out=True)
    sale(shop, 100)
    printing.follow(shop)
    assert printing.remove_printer(shop, SYSTEM, PRINTER) == 2
    with shop.db.unit_of_work() as uow:
        states = {j.state for j in uow.printing.jobs(limit=10)}
    assert states == {JobState.CANCELLED}
