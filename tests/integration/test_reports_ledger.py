"""Every report's totals tie to the journal (SQLite and PostgreSQL), in every format.

A small world goes through sales, a void, a refund, two settlement runs (D+1 and T+1),
a payout export and a confirmation; each report is then built, rendered as CSV, XLSX, PDF
and JSON, parsed back, and its totals compared with sums recomputed here straight from the
journal lines (no report code involved).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from jobtools import (
    add_merchant,
    add_sales,
    advance_clock_to,
    assert_balances,
    balances,
    clock_at,
    merchant_payable,
    merchant_unsettled,
    mid,
    pay,
    shanghai,
    tid,
)
from reporttools import (
    csv_totals,
    parse_csv,
    parse_xlsx,
    pdf_text,
    rendered,
    xlsx_totals,
)
from sqlalchemy import func, select

from autosettle.domain.calendar import SHANGHAI
from autosettle.domain.errors import NotFoundError, ValidationError
from autosettle.domain.transactions import TxnType
from autosettle.reports.catalog import ReportName, ReportRequest, build
from autosettle.reports.formats import ReportFormat
from autosettle.reports.model import Report
from autosettle.services import payouts, settlement
from autosettle.services.context import SYSTEM, Principal, Role, ServiceContext
from autosettle.store.tables import journal_entries, journal_lines

DAY = date(2026, 9, 18)  # a Friday: D+1 settles on the 19th, T+1 on Sunday the 20th
M1, M2 = mid(1), mid(2)


def ledger_sum(ctx: ServiceContext, *, account_prefix: str | None = None,
               account: str | None = None, merchant_id: str | None = None,
               kinds: tuple[str, ...] | None = None, not_kinds: tuple[str, ...] = (),
               kind_prefix: str | None = None, before: datetime | None = None,
               since: datetime | None = None) -> int:
    """Σ amount_minor of journal lines (debits positive) matching the filters."""
    line, entry = journal_lines.c, journal_entries.c
    query = (select(func.coalesce(func.sum(line.amount_minor), 0))
             .select_from(journal_lines.join(journal_entries,
                                             entry.entry_id == line.entry_id)))
    if account is not None:
        query = query.where(line.account_code == account)
    if account_prefix is not None:
        query = query.where(line.account_code.like(f"{account_prefix}%"))
    if merchant_id is not None:
        query = query.where(line.merchant_id == merchant_id)
    if kinds is not None:
        query = query.where(entry.kind.in_(kinds))
    if not_kinds:
        query = query.where(entry.kind.not_in(not_kinds))
    if kind_prefix is not None:
        query = query.where(entry.kind.like(f"{kind_prefix}%"))
    if before is not None:
        query = query.where(entry.created_at < before)
    if since is not None:
        query = query.where(entry.created_at >= since)
    with ctx.db.unit_of_work() as uow:
        return int(uow.connection.execute(query).scalar() or 0)


@pytest.fixture
def world(ctx: ServiceContext) -> ServiceContext:
    add_merchant(ctx, M1, "T1")
    add_merchant(ctx, M2, "D1")
    add_sales(ctx, M1, DAY, [10_000, 25_050, 123_456])
    add_sales(ctx, M2, DAY, [100_000, 3_333])
    with clock_at(ctx, datetime.combine(DAY, time(13), SHANGHAI)):
        voided = pay(ctx, M1, TxnType.SALE, 777)
        pay(ctx, M1, TxnType.VOID, original=voided)
        refunded = pay(ctx, M2, TxnType.SALE, 50_000)
        pay(ctx, M2, TxnType.REFUND, 20_000, original=refunded)
    advance_clock_to(ctx, date(2026, 9, 19))
    settlement.settle(ctx, date(2026, 9, 19))
    exported = payouts.export_payouts(ctx, date(2026, 9, 19))
    assert exported.count == 1
    with ctx.db.unit_of_work() as uow:
        sent = uow.settlement.payouts(status="sent", merchant_id=M2, limit=10)
    payouts.confirm_payout(ctx, sent[0].payout_id)
    advance_clock_to(ctx, date(2026, 9, 20))
    settlement.settle(ctx, date(2026, 9, 20))
    payouts.export_payouts(ctx, date(2026, 9, 20))
    add_sales(ctx, M1, date(2026, 9, 21), [8_888])  # after the statement's opening
    advance_clock_to(ctx, date(2026, 9, 21), hour=18)
    return ctx


def renders(make: Callable[[], Report]) -> dict[ReportFormat, bytes]:
    return {fmt: rendered(make, fmt) for fmt in ReportFormat}


def check_formats(make: Callable[[], Report], expected: dict[str, int]) -> dict[str, Any]:
    """Render in every format, parse back, and check the totals equal ``expected``."""
    report = make()
    assert {k: report.totals[k] for k in expected} == expected
    outputs = renders(make)
    table = parse_csv(outputs[ReportFormat.CSV])
    assert table.header == [c.title for c in report.columns]
    assert len(table.rows) == report.row_count
    assert {k: v for k, v in csv_totals(report, table).items() if k in expected} == expected
    ws, rows = parse_xlsx(outputs[ReportFormat.XLSX])
    assert ws.freeze_panes == "A2"
    assert len(rows) == report.row_count + 2
    assert {k: v for k, v in xlsx_totals(report, rows).items() if k in expected} == expected
    texts, embedded = pdf_text(outputs[ReportFormat.PDF])
    assert embedded and all(embedded)
    pages = len(texts)
    for n, text in enumerate(texts, start=1):
        assert f"第{n}/{pages}页" in "".join(text.split())  # "第 n / N 页"
    assert report.title.split(" ")[0] in texts[0]
    body = json.loads(outputs[ReportFormat.JSON])
    assert {k: body["totals"][k] for k in expected} == expected
    assert len(body["rows"]) == report.row_count
    return {"csv": table, "xlsx": rows, "pdf": texts, "json": body}


def test_daily_summary_ties_to_the_journal(world: ServiceContext) -> None:
    ctx = world
    start = datetime.combine(DAY, time(0), SHANGHAI)
    end = start + timedelta(days=1)
    # What the day's payments put on the merchants' unsettled accounts (credits negative).
    net = -ledger_sum(ctx, account_prefix="merchant_unsettled:", not_kinds=("settlement",),
                      since=start, before=end)
    assert net == (10_000 + 25_050 + 123_456) + (100_000 + 3_333) + 50_000 - 20_000
    # Fees the batches took for those items (every item of the day is settled by now).
    fees = -ledger_sum(ctx, account="fee_income", kinds=("settlement",))
    make = lambda: build(ctx, SYSTEM, ReportRequest(ReportName.DAILY_SUMMARY, day=DAY))  # noqa: E731
    out = check_formats(make, {"net": net, "fee": fees})
    assert out["json"]["totals"]["count"] == 9  # 7 sales, a void and a refund
    own = build(ctx, Principal("m1", Role.MERCHANT, M1),
                ReportRequest(ReportName.DAILY_SUMMARY, day=DAY))
    m1_net = -ledger_sum(ctx, account=merchant_unsettled(M1), not_kinds=("settlement",),
                         since=start, before=end)
    assert own.totals["net"] == m1_net
    assert {row[0] for row in own.rows} == {M1}


def test_settlement_report_ties_to_the_journal(world: ServiceContext) -> None:
    ctx = world
    gross = ledger_sum(ctx, account_prefix="merchant_unsettled:", kinds=("settlement",))
    fees = -ledger_sum(ctx, account="fee_income", kinds=("settlement",))
    paid = -ledger_sum(ctx, account_prefix="merchant_payable:", kinds=("settlement",))
    make = lambda: build(ctx, SYSTEM, ReportRequest(  # noqa: E731
        ReportName.SETTLEMENT, date_from=date(2026, 9, 19), date_to=date(2026, 9, 20)))
    report = make()
    assert report.totals["fee"] + report.totals["surcharge"] == fees
    out = check_formats(make, {"gross": gross, "payout": paid})
    rows = out["json"]["rows"]
    assert {r["merchant_id"] for r in rows} == {M1, M2}
    assert {r["merchant_id"]: r["payout_status"] for r in rows} == {M1: "sent",
                                                                      M2: "confirmed"}
    assert all(r["expected_arrival"] for r in rows)


def test_statement_ties_to_the_journal(world: ServiceContext) -> None:
    ctx = world
    date_from, date_to = date(2026, 9, 19), date(2026, 9, 21)
    start = datetime.combine(date_from, time(0), SHANGHAI)
    end = datetime.combine(date_to + timedelta(days=1), time(0), SHANGHAI)
    opening = -ledger_sum(ctx, merchant_id=M1, before=start)
    closing = -ledger_sum(ctx, merchant_id=M1, before=end)
    # A settlement entry moves the merchant's balance by exactly its fee credit.
    fees = ledger_sum(ctx, merchant_id=M1, kinds=("settlement",), since=start, before=end)
    fee_income = -ledger_sum(ctx, account="fee_income", kinds=("settlement",), since=start,
                             before=end)
    payouts_out = ledger_sum(ctx, account=merchant_payable(M1), kind_prefix="payout.",
                             since=start, before=end)
    assert opening == 10_000 + 25_050 + 123_456  # the void cancelled the 7.77 sale
    make = lambda: build(ctx, SYSTEM, ReportRequest(  # noqa: E731
        ReportName.STATEMENT, date_from=date_from, date_to=date_to, merchant_id=M1))
    report = make()
    figures = {f.key: f.value for f in report.figures}
    assert figures["opening"] == opening
    assert figures["closing"] == closing
    assert figures["fees"] == -fees and fees > 0
    m2_fees = ledger_sum(ctx, merchant_id=M2, kinds=("settlement",), since=start, before=end)
    assert fees + m2_fees == fee_income
    assert figures["payouts"] == -payouts_out and payouts_out > 0
    assert figures["sales"] == 8_888
    out = check_formats(make, {"amount": closing - opening})
    balances_column = [row[-1] for row in out["csv"].rows]
    assert balances_column[-1] == f"{closing // 100}.{closing % 100:02d}"
    assert out["csv"].extra["期初余额 Opening balance"] == f"{opening // 100}.{opening % 100:02d}"


def test_statement_streams_in_pages(world: ServiceContext,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A page smaller than the statement: the rows and running balance are unchanged."""
    from autosettle.reports import catalog

    request = ReportRequest(ReportName.STATEMENT, date_from=DAY, date_to=date(2026, 9, 21),
                            merchant_id=M1)
    whole = list(build(world, SYSTEM, request).rows)
    monkeypatch.setattr(catalog, "STATEMENT_PAGE_ROWS", 2)
    paged = list(build(world, SYSTEM, request).rows)
    assert paged == whole and len(whole) > 4


def test_fee_analysis_ties_to_the_journal(world: ServiceContext) -> None:
    ctx = world
    settled_fees = -ledger_sum(ctx, account="fee_income", kinds=("settlement",))
    make = lambda: build(ctx, SYSTEM, ReportRequest(  # noqa: E731
        ReportName.FEE_ANALYSIS, date_from=DAY, date_to=DAY))
    out = check_formats(make, {"fee": settled_fees})
    rows = {r["merchant_id"]: r for r in out["json"]["rows"]}
    assert rows[M1]["cycle"] == "T1" and rows[M2]["cycle"] == "D1"
    # The cycle comparison prices the captures (services/fee_schedules.py): next-day cycles
    # cost their fees alone (before the void's fee credit), same-day ones 2.00 per payout.
    assert rows[M1]["cost_t1"] == rows[M1]["fee"] + 3  # the 7.77 sale's fee, given back
    assert rows[M2]["cost_t1"] == rows[M2]["fee"] + 20_000 * 41 // 10_000 + 0  # refund credit
    for row in rows.values():
        assert row["cost_t1"] == row["cost_d1"]
        assert row["cost_t0"] == row["cost_d0"] == row["cost_t1"] + 200


def test_terminal_health_ties_to_the_journal(world: ServiceContext) -> None:
    ctx = world
    start = datetime.combine(DAY, time(0), SHANGHAI)
    net = -ledger_sum(ctx, account_prefix="merchant_unsettled:", not_kinds=("settlement",),
                      since=start, before=start + timedelta(days=1))
    make = lambda: build(ctx, SYSTEM, ReportRequest(ReportName.TERMINAL_HEALTH, day=DAY))  # noqa: E731
    out = check_formats(make, {"net": net, "count": 9})
    assert {(r["merchant_id"], r["terminal_id"]) for r in out["json"]["rows"]} == {
        (M1, tid(M1)), (M2, tid(M2))}


def test_balances_untouched_by_reports(world: ServiceContext) -> None:
    before = balances(world)
    for name in ReportName:
        outputs = renders(lambda name=name: build(  # type: ignore[misc]
            world, SYSTEM, ReportRequest(name, date_from=DAY, merchant_id=M1)))
        assert all(outputs.values())
    assert_balances(world, {}, since=before)


def test_merchants_see_only_their_own(world: ServiceContext) -> None:
    m2 = Principal("m2", Role.MERCHANT, M2)
    terminal = Principal("t1", Role.TERMINAL, M1, tid(M1))
    for name in ReportName:
        with pytest.raises(NotFoundError):
            build(world, m2, ReportRequest(name, date_from=DAY, merchant_id=M1))
        with pytest.raises(NotFoundError):
            build(world, terminal, ReportRequest(name, date_from=DAY))
    own = build(world, m2, ReportRequest(ReportName.STATEMENT, date_from=DAY))
    assert own.header.merchant_id == M2
    with pytest.raises(NotFoundError):
        build(world, SYSTEM, ReportRequest(ReportName.STATEMENT, merchant_id=mid(99)))
    with pytest.raises(ValidationError):
        build(world, SYSTEM, ReportRequest(ReportName.STATEMENT))  # which merchant?
    with pytest.raises(ValidationError):
        build(world, SYSTEM, ReportRequest(ReportName.SETTLEMENT, date_from=DAY,
                                           date_to=DAY - timedelta(days=1)))


def test_statement_of_a_quiet_period_is_its_balance(world: ServiceContext) -> None:
    later = date(2026, 10, 5)
    report = build(world, SYSTEM, ReportRequest(ReportName.STATEMENT, date_from=later,
                                                date_to=later, merchant_id=M1))
    figures = {f.key: f.value for f in report.figures}
    assert report.row_count == 0 and list(report.rows) == []
    assert figures["opening"] == figures["closing"] == -ledger_sum(world, merchant_id=M1)
    out = io.BytesIO()
    from autosettle.reports.formats import render
    render(report, ReportFormat.PDF, out)
    texts, embedded = pdf_text(out.getvalue())
    assert "第1/1页" in "".join(texts[0].split()) and all(embedded)


def test_shanghai_days(world: ServiceContext) -> None:
    """The sales of the 18th made at noon Shanghai time are inside the 18th's statement."""
    report = build(world, SYSTEM, ReportRequest(ReportName.STATEMENT, date_from=DAY,
                                                date_to=DAY, merchant_id=M1))
    times = [row[0] for row in report.rows]
    assert times and all(isinstance(t, datetime) for t in times)
    assert all(t.astimezone(SHANGHAI).date() == DAY for t in times)  # type: ignore[union-attr]
    assert shanghai(2026, 9, 18, 12) in times
