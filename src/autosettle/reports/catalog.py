"""The reports, as a service over the store: one source for the console, the API and the CLI.

:func:`build` checks who may see what (:mod:`autosettle.services.access`: a merchant sees
only its own merchant, anything else is ``404 not_found``; a terminal key sees no report),
reads the aggregates the store sums in SQL (``uow.reports``) and returns the neutral
:class:`~autosettle.reports.model.Report` that every renderer draws. Totals come from the
database, never from adding up rendered rows, and each one ties to the journal (see
docs/reports.md and tests/integration/test_reports_ledger.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Final

from autosettle.domain.calendar import SHANGHAI
from autosettle.domain.errors import ErrorCode, NotFoundError, ValidationError
from autosettle.reports.charts import Chart, ChartKind, ChartUnit, Series, format_value
from autosettle.reports.model import Column, ColumnType, Figure, Header, Report, Row
from autosettle.services import fee_schedules, terminal_status
from autosettle.services.access import Area, require_read
from autosettle.services.context import Principal, Role, ServiceContext

PERIOD_DAYS_MAX: Final = 366
REPORT_DATE_MIN: Final = date(2000, 1, 1)
REPORT_DATE_MAX: Final = date(2099, 12, 31)
STATEMENT_PAGE_ROWS: Final = 5_000
BATCH_PAGE_ROWS: Final = 5_000
CHART_BARS_MAX: Final = 12
FEE_CHART_MERCHANTS_MAX: Final = 6
CYCLES: Final = ("T1", "D1", "T0", "D0")


class ReportName(StrEnum):
    """The reports there are (the names in the URL and on the command line)."""

    DAILY_SUMMARY = "daily-summary"
    SETTLEMENT = "settlement"
    STATEMENT = "statement"
    FEE_ANALYSIS = "fee-analysis"
    TERMINAL_HEALTH = "terminal-health"


TITLES: Final[Mapping[ReportName, str]] = {
    ReportName.DAILY_SUMMARY: "交易日汇总 Daily transaction summary",
    ReportName.SETTLEMENT: "结算报表 Settlement report",
    ReportName.STATEMENT: "商户对账单 Merchant statement",
    ReportName.FEE_ANALYSIS: "手续费分析 Fee analysis",
    ReportName.TERMINAL_HEALTH: "终端健康 Terminal health",
}
"""Each report's title (Chinese, then English), e.g. for a console menu."""


@dataclass(frozen=True, slots=True)
class ReportRequest:
    """What a caller asks for. ``day`` is the business date of the one-day reports;
    ``date_from`` / ``date_to`` the (inclusive) period of the others; missing dates default
    to today in Shanghai."""

    name: ReportName
    day: date | None = None
    date_from: date | None = None
    date_to: date | None = None
    merchant_id: str | None = None


def build(ctx: ServiceContext, who: Principal, request: ReportRequest) -> Report:
    """The report ``request`` names, as ``who`` may see it. Everything that can refuse
    (access, parameters) is checked here, before any row is read: a streamed report does
    not fail half-way for a reason the caller could have been told first."""
    for day in (request.day, request.date_from, request.date_to):
        if day is not None and not REPORT_DATE_MIN <= day <= REPORT_DATE_MAX:
            raise ValidationError(f"report dates run from {REPORT_DATE_MIN} to "
                                  f"{REPORT_DATE_MAX}: {day}", ErrorCode.DATE_OUT_OF_RANGE)
    builder = _BUILDERS[request.name]
    return builder(ctx, who, request)


# -- shared -----------------------------------------------------------------------------------

def _today(ctx: ServiceContext) -> date:
    return ctx.now().astimezone(SHANGHAI).date()


def _period(ctx: ServiceContext, request: ReportRequest) -> tuple[date, date]:
    today = _today(ctx)
    date_to = request.date_to or request.date_from or today
    date_from = request.date_from or date_to
    if date_from > date_to:
        raise ValidationError("date_from must not be after date_to")
    if (date_to - date_from).days >= PERIOD_DAYS_MAX:
        raise ValidationError(f"a period is at most {PERIOD_DAYS_MAX} days")
    return date_from, date_to


def _scope(ctx: ServiceContext, who: Principal, area: Area, merchant_id: str | None,
           required: bool) -> str | None:
    """The merchant the report covers: a merchant key's own (another one is a 404); for an
    operator the one asked for, or every merchant (None) unless the report needs one."""
    if who.role is Role.TERMINAL:
        raise NotFoundError("not found")
    if merchant_id is None and not who.is_operator:
        merchant_id = who.merchant_id
    require_read(who, area, merchant_id)
    if merchant_id is None:
        if required:
            raise ValidationError("merchant_id is required for this report")
        return None
    with ctx.db.unit_of_work() as uow:
        if uow.merchants.get(merchant_id) is None:
            raise NotFoundError(f"merchant {merchant_id} not found")
    return merchant_id


def _header(ctx: ServiceContext, merchant_id: str | None) -> Header:
    if merchant_id is None:
        return Header(None, "全部商户 All merchants")
    with ctx.db.unit_of_work() as uow:
        names = uow.reports.merchant_names([merchant_id])
    found = names.get(merchant_id)
    return Header(merchant_id, found.legal_name if found else merchant_id)


def _merchant_param(merchant_id: str | None) -> tuple[str, str]:
    return ("商户 Merchant", merchant_id or "全部 all")


def _top(pairs: Sequence[tuple[str, int]], limit: int = CHART_BARS_MAX) -> list[tuple[str, int]]:
    return sorted(pairs, key=lambda p: (-p[1], p[0]))[:limit]


def _yes_no(value: bool) -> str:
    return "是" if value else "否"


# -- daily transaction summary ----------------------------------------------------------------

DAILY_COLUMNS: Final = (
    Column("merchant_id", "商户号", ColumnType.TEXT, 17),
    Column("terminal_id", "终端号", ColumnType.TEXT, 10),
    Column("card_kind", "卡类型", ColumnType.TEXT, 9),
    Column("txn_type", "交易类型", ColumnType.TEXT, 12),
    Column("response_code", "应答码", ColumnType.TEXT, 7),
    Column("status", "状态", ColumnType.TEXT, 10),
    Column("count", "笔数", ColumnType.COUNT, 8),
    Column("amount", "交易金额", ColumnType.MONEY, 15),
    Column("net", "入账净额", ColumnType.MONEY, 15),
    Column("fee", "手续费", ColumnType.MONEY, 12),
)


def _daily_summary(ctx: ServiceContext, who: Principal, request: ReportRequest) -> Report:
    merchant_id = _scope(ctx, who, Area.SETTLEMENTS, request.merchant_id, required=False)
    day = request.day or request.date_from or _today(ctx)
    with ctx.db.unit_of_work() as uow:
        rows = uow.reports.daily_summary(day, merchant_id)
    table: list[Row] = [
        (r.merchant_id, r.terminal_id, r.card_kind or "", r.txn_type, r.response_code or "",
         r.status, r.txn_count, r.amount_minor, r.net_minor, r.fee_minor) for r in rows]
    totals = {"count": sum(r.txn_count for r in rows),
              "amount": sum(r.amount_minor for r in rows),
              "net": sum(r.net_minor for r in rows),
              "fee": sum(r.fee_minor for r in rows)}
    net_by_merchant: dict[str, int] = {}
    count_by_code: dict[str, int] = {}
    for r in rows:
        net_by_merchant[r.merchant_id] = net_by_merchant.get(r.merchant_id, 0) + r.net_minor
        code = r.response_code or "--"
        count_by_code[code] = count_by_code.get(code, 0) + r.txn_count
    approved = sum(r.txn_count for r in rows if r.response_code == "00")
    charts: list[Chart] = []
    if merchant_id is None:
        top = _top(list(net_by_merchant.items()))
        charts.append(Chart(ChartKind.BAR, "各商户入账净额 Net by merchant",
                            tuple(m[-6:] for m, _ in top),
                            (Series("入账净额 net", tuple(v for _, v in top)),), ChartUnit.FEN))
    else:
        by_terminal: dict[str, int] = {}
        for r in rows:
            by_terminal[r.terminal_id] = by_terminal.get(r.terminal_id, 0) + r.net_minor
        top = _top(list(by_terminal.items()))
        charts.append(Chart(ChartKind.BAR, "各终端入账净额 Net by terminal",
                            tuple(t for t, _ in top),
                            (Series("入账净额 net", tuple(v for _, v in top)),), ChartUnit.FEN))
    codes = _top(list(count_by_code.items()))
    charts.append(Chart(ChartKind.BAR, "应答码笔数 Count by response code",
                        tuple(c for c, _ in codes),
                        (Series("笔数 count", tuple(v for _, v in codes)),), ChartUnit.COUNT))
    return Report(
        name=ReportName.DAILY_SUMMARY, title=TITLES[ReportName.DAILY_SUMMARY],
        header=_header(ctx, merchant_id),
        parameters=(("营业日 Business date", day.isoformat()), _merchant_param(merchant_id)),
        columns=DAILY_COLUMNS, rows=table, row_count=len(table), totals=totals,
        figures=(Figure("transactions", "交易笔数 Transactions", totals["count"],
                        ColumnType.COUNT),
                 Figure("approved", "成功笔数 Approved", approved, ColumnType.COUNT),
                 Figure("net", "入账净额 Net to merchants", totals["net"]),
                 Figure("fee", "手续费 Fees", totals["fee"])),
        charts=tuple(charts), generated_at=ctx.now())


# -- settlement report ------------------------------------------------------------------------

SETTLEMENT_COLUMNS: Final = (
    Column("batch_id", "结算批次", ColumnType.TEXT, 30),
    Column("merchant_id", "商户号", ColumnType.TEXT, 17),
    Column("cycle", "周期", ColumnType.TEXT, 6),
    Column("settlement_date", "结算日", ColumnType.DATE, 12),
    Column("items", "笔数", ColumnType.COUNT, 8),
    Column("gross", "结算金额", ColumnType.MONEY, 15),
    Column("fee", "手续费", ColumnType.MONEY, 12),
    Column("surcharge", "加急费", ColumnType.MONEY, 10),
    Column("debt_recovered", "扣回欠款", ColumnType.MONEY, 12),
    Column("debt_added", "新增欠款", ColumnType.MONEY, 12),
    Column("payout", "划款金额", ColumnType.MONEY, 15),
    Column("payout_status", "划款状态", ColumnType.TEXT, 10),
    Column("expected_arrival", "预计到账", ColumnType.DATE, 12),
)
_BATCH_TOTALS: Final = {"items": "item_count", "gross": "gross_minor", "fee": "fee_minor",
                        "surcharge": "surcharge_minor",
                        "debt_recovered": "debt_recovered_minor",
                        "debt_added": "debt_added_minor", "payout": "payout_minor"}


def _settlement(ctx: ServiceContext, who: Principal, request: ReportRequest) -> Report:
    merchant_id = _scope(ctx, who, Area.SETTLEMENTS, request.merchant_id, required=False)
    date_from, date_to = _period(ctx, request)
    with ctx.db.unit_of_work() as uow:
        count, sums = uow.reports.batch_totals(date_from, date_to, merchant_id)
        by_date = uow.reports.payouts_by_date(date_from, date_to, merchant_id)

    def rows() -> Iterator[Row]:
        after: str | None = None
        while True:
            with ctx.db.unit_of_work() as uow:
                page = uow.reports.batches(date_from, date_to, merchant_id, after,
                                           BATCH_PAGE_ROWS)
            for b in page:
                yield (b.batch_id, b.merchant_id, b.cycle, b.settlement_date, b.item_count,
                       b.gross_minor, b.fee_minor, b.surcharge_minor, b.debt_recovered_minor,
                       b.debt_added_minor, b.payout_minor,
                       b.payout_status or ("无划款" if b.payout_minor == 0 else b.status),
                       b.expected_arrival)
            if len(page) < BATCH_PAGE_ROWS:
                return
            after = page[-1].batch_id

    totals = {key: sums[column] for key, column in _BATCH_TOTALS.items()}
    chart = Chart(ChartKind.BAR, "每日划款 Payouts by settlement date",
                  tuple(d.strftime("%m-%d") for d, _ in by_date),
                  (Series("划款 payout", tuple(v for _, v in by_date)),), ChartUnit.FEN)
    return Report(
        name=ReportName.SETTLEMENT, title=TITLES[ReportName.SETTLEMENT],
        header=_header(ctx, merchant_id),
        parameters=(("结算日 Settlement dates", f"{date_from} ~ {date_to}"),
                    _merchant_param(merchant_id)),
        columns=SETTLEMENT_COLUMNS, rows=rows(), row_count=count, totals=totals,
        figures=(Figure("batches", "批次 Batches", count, ColumnType.COUNT),
                 Figure("gross", "结算金额 Gross", totals["gross"]),
                 Figure("fee", "手续费 Fees", totals["fee"] + totals["surcharge"]),
                 Figure("payout", "划款 Payouts", totals["payout"])),
        charts=(chart,), generated_at=ctx.now())


# -- merchant statement -----------------------------------------------------------------------

STATEMENT_COLUMNS: Final = (
    Column("at", "时间", ColumnType.DATETIME, 19),
    Column("entry_id", "分录号", ColumnType.COUNT, 10),
    Column("description", "摘要", ColumnType.TEXT, 16),
    Column("reference", "凭证", ColumnType.TEXT, 34),
    Column("amount", "发生额", ColumnType.MONEY, 15),
    Column("balance", "余额", ColumnType.MONEY, 16),
)


class Movement(StrEnum):
    """How a statement groups journal entries (by the entry's kind)."""

    SALES = "sales"
    RETURNS = "returns"
    REVERSALS = "reversals"
    FEES = "fees"
    PAYOUTS = "payouts"
    OTHER = "other"


MOVEMENT_LABELS: Final[Mapping[Movement, str]] = {
    Movement.SALES: "消费 Sales", Movement.RETURNS: "撤销/退货 Voids and refunds",
    Movement.REVERSALS: "冲正 Reversals", Movement.FEES: "手续费 Fees",
    Movement.PAYOUTS: "划款 Payouts", Movement.OTHER: "其他 Other",
}
_EVENT_WORDS: Final = {"captured": "消费入账", "hold_captured": "预授权完成",
                       "voided": "撤销", "refunded": "退货", "reversed": "冲正",
                       "sent": "划款", "failed": "划款退回", "confirmed": "划款到账"}


def movement_of(kind: str) -> Movement:
    """The statement group of a journal entry kind (``sale.captured``, ``settlement``...)."""
    if kind == "settlement":
        return Movement.FEES
    family, _, event = kind.rpartition(".")
    if family == "payout":
        return Movement.PAYOUTS
    if event in ("captured", "hold_captured"):
        return Movement.SALES
    if event in ("voided", "refunded"):
        return Movement.RETURNS
    if event == "reversed":
        return Movement.REVERSALS
    return Movement.OTHER


def describe(kind: str) -> str:
    """A statement line's description: ``sale.captured`` → ``消费入账 sale``."""
    if kind == "settlement":
        return "结算手续费 settlement"
    family, _, event = kind.rpartition(".")
    word = _EVENT_WORDS.get(event)
    return f"{word} {family}" if word else kind


def _statement(ctx: ServiceContext, who: Principal, request: ReportRequest) -> Report:
    merchant_id = _scope(ctx, who, Area.BALANCES, request.merchant_id, required=True)
    if merchant_id is None:  # pragma: no cover - _scope refuses it (required=True)
        raise ValidationError("merchant_id is required for this report")
    date_from, date_to = _period(ctx, request)
    start = datetime.combine(date_from, time(0), SHANGHAI)
    end = datetime.combine(date_to + timedelta(days=1), time(0), SHANGHAI)
    with ctx.db.unit_of_work() as uow:
        names = uow.reports.merchant_names([merchant_id])
        cur = names[merchant_id].currency
        snapshot = uow.reports.last_entry_id()
        opening = uow.reports.merchant_position(merchant_id, cur, start, snapshot)
        kinds = uow.reports.movement_totals(merchant_id, cur, start, end, snapshot)
    groups = dict.fromkeys(Movement, 0)
    for k in kinds:
        groups[movement_of(k.kind)] += k.amount_minor
    count = sum(k.entries for k in kinds)
    moved = sum(groups.values())
    closing = opening + moved

    def rows() -> Iterator[Row]:
        balance, after = opening, 0
        while True:
            with ctx.db.unit_of_work() as uow:
                page = uow.reports.movements(merchant_id, cur, start, end, snapshot, after,
                                             STATEMENT_PAGE_ROWS)
            for m in page:
                balance += m.amount_minor
                yield (m.created_at, m.entry_id, describe(m.kind), m.reference or "",
                       m.amount_minor, balance)
            if len(page) < STATEMENT_PAGE_ROWS:
                return
            after = page[-1].entry_id

    figures = (Figure("opening", "期初余额 Opening balance", opening),
               *(Figure(g.value, MOVEMENT_LABELS[g], groups[g]) for g in Movement),
               Figure("closing", "期末余额 Closing balance", closing))
    chart = Chart(ChartKind.BAR, "本期变动 Movements in the period",
                  tuple(MOVEMENT_LABELS[g].split(" ")[0] for g in Movement),
                  (Series("增加 in", tuple(max(groups[g], 0) for g in Movement)),
                   Series("减少 out", tuple(max(-groups[g], 0) for g in Movement))),
                  ChartUnit.FEN)
    return Report(
        name=ReportName.STATEMENT, title=TITLES[ReportName.STATEMENT],
        header=_header(ctx, merchant_id),
        parameters=(("期间 Period", f"{date_from} ~ {date_to}"), _merchant_param(merchant_id),
                    ("币种 Currency", cur)),
        columns=STATEMENT_COLUMNS, rows=rows(), row_count=count, totals={"amount": moved},
        currency=cur, figures=figures, charts=(chart,), generated_at=ctx.now(),
        notes=("余额为平台应付商户的款项（待结算 + 待划款 - 欠款）。"
               "Balance: what the platform owes the merchant (unsettled + payable - debt).",))


# -- fee analysis -----------------------------------------------------------------------------

FEE_COLUMNS: Final = (
    Column("merchant_id", "商户号", ColumnType.TEXT, 17),
    Column("name", "商户名称", ColumnType.TEXT, 24),
    Column("cycle", "当前周期", ColumnType.TEXT, 8),
    Column("captures", "消费笔数", ColumnType.COUNT, 9),
    Column("captured", "消费金额", ColumnType.MONEY, 15),
    Column("fee", "交易手续费", ColumnType.MONEY, 12),
    Column("rate", "费率", ColumnType.TEXT, 8),
    *(Column(f"cost_{c.lower()}", f"{c} 成本", ColumnType.MONEY, 12) for c in CYCLES),
    Column("cheapest", "最省周期", ColumnType.TEXT, 8),
)


def _rate_bp(fee: int, amount: int) -> int:
    """Fees over amount in basis points, rounded half up once."""
    if amount <= 0:
        return 0
    return (fee * 10_000 * 2 + amount) // (2 * amount)


def _fee_analysis(ctx: ServiceContext, who: Principal, request: ReportRequest) -> Report:
    merchant_id = _scope(ctx, who, Area.FEES, request.merchant_id, required=False)
    date_from, date_to = _period(ctx, request)
    with ctx.db.unit_of_work() as uow:
        fee_rows = uow.reports.fee_totals(date_from, date_to, merchant_id)
        names = uow.reports.merchant_names(sorted({r.merchant_id for r in fee_rows}))
    table: list[Row] = []
    totals = dict.fromkeys(("captures", "captured", "fee",
                            *(f"cost_{c.lower()}" for c in CYCLES)), 0)
    chart_series: list[tuple[str, int, tuple[int, ...]]] = []
    for r in fee_rows:
        costs = fee_schedules.compare_cycles(ctx, who, r.merchant_id, date_from, date_to)
        per_cycle = tuple(costs.costs.get(c, 0) for c in CYCLES)
        name = names[r.merchant_id]
        cheapest = min(CYCLES, key=lambda c: (costs.costs.get(c, 0), CYCLES.index(c)))
        table.append((r.merchant_id, name.short_name, costs.current_cycle, r.captures,
                      r.capture_minor, r.fee_minor,
                      format_value(_rate_bp(r.fee_minor, r.capture_minor),
                                   ChartUnit.BASIS_POINTS), *per_cycle, cheapest))
        totals["captures"] += r.captures
        totals["captured"] += r.capture_minor
        totals["fee"] += r.fee_minor
        for c, v in zip(CYCLES, per_cycle, strict=True):
            totals[f"cost_{c.lower()}"] += v
        chart_series.append((r.merchant_id, r.fee_minor, per_cycle))
    chart_series.sort(key=lambda s: (-s[1], s[0]))
    chart = Chart(ChartKind.BAR, "各结算周期成本 Cost on each cycle", CYCLES,
                  tuple(Series(m[-6:], costs) for m, _, costs
                        in chart_series[:FEE_CHART_MERCHANTS_MAX]), ChartUnit.FEN)
    return Report(
        name=ReportName.FEE_ANALYSIS, title=TITLES[ReportName.FEE_ANALYSIS],
        header=_header(ctx, merchant_id),
        parameters=(("营业日 Business dates", f"{date_from} ~ {date_to}"),
                    _merchant_param(merchant_id)),
        columns=FEE_COLUMNS, rows=table, row_count=len(table), totals=totals,
        figures=(Figure("fee", "交易手续费 Transaction fees", totals["fee"]),
                 Figure("rate", "平均费率 Effective rate (bp)",
                        _rate_bp(totals["fee"], totals["captured"]), ColumnType.COUNT)),
        charts=(chart,), generated_at=ctx.now(),
        notes=("各周期成本 = 实收交易手续费 + 该周期每笔划款的加急费（T0/D0）。"
               "Cost on a cycle: the fees charged plus that cycle's same-day surcharges.",))


# -- terminal health --------------------------------------------------------------------------

TERMINAL_COLUMNS: Final = (
    Column("merchant_id", "商户号", ColumnType.TEXT, 17),
    Column("terminal_id", "终端号", ColumnType.TEXT, 10),
    Column("status", "状态", ColumnType.TEXT, 9),
    Column("key_status", "密钥", ColumnType.TEXT, 8),
    Column("signed_on", "已签到", ColumnType.TEXT, 7),
    Column("last_sign_on_at", "最后签到", ColumnType.DATETIME, 19),
    Column("last_message_at", "最后报文", ColumnType.DATETIME, 19),
    Column("open_batch", "当前批次", ColumnType.TEXT, 9),
    Column("software", "软件版本", ColumnType.TEXT, 10),
    Column("silent", "失联", ColumnType.TEXT, 6),
    Column("count", "今日笔数", ColumnType.COUNT, 9),
    Column("approved", "成功笔数", ColumnType.COUNT, 9),
    Column("approval_rate", "成功率", ColumnType.TEXT, 8),
    Column("net", "入账净额", ColumnType.MONEY, 15),
)


def _terminal_health(ctx: ServiceContext, who: Principal, request: ReportRequest) -> Report:
    merchant_id = _scope(ctx, who, Area.TERMINAL_STATUS, request.merchant_id, required=False)
    day = request.day or request.date_from or _today(ctx)
    with ctx.db.unit_of_work() as uow:
        activity = uow.reports.terminal_activity(day, merchant_id)
    table: list[Row] = []
    cursor: str | None = None
    silent = 0
    while True:
        page = terminal_status.terminal_status(ctx, who, merchant_id, cursor=cursor,
                                               limit=terminal_status.STATUS_PAGE_MAX)
        for v in page.items:
            act = activity.get((v.merchant_id, v.terminal_id))
            count, approved, net = ((act.txn_count, act.approved, act.net_minor) if act
                                    else (0, 0, 0))
            silent += v.silent
            table.append((v.merchant_id, v.terminal_id, v.terminal_status, v.key_status,
                          _yes_no(v.signed_on), v.last_sign_on_at, v.last_message_at,
                          v.open_batch_no or "", v.software_version or "", _yes_no(v.silent),
                          count, approved,
                          format_value(_rate_bp(approved, count), ChartUnit.BASIS_POINTS)
                          if count else "", net))
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    totals = {"count": sum(a.txn_count for a in activity.values()),
              "approved": sum(a.approved for a in activity.values()),
              "net": sum(a.net_minor for a in activity.values())}
    busiest = _top([(f"{m[-4:]}/{t}", a.txn_count) for (m, t), a in activity.items()])
    approved_of = {f"{m[-4:]}/{t}": a.approved for (m, t), a in activity.items()}
    chart = Chart(ChartKind.BAR, "终端交易笔数 Transactions per terminal",
                  tuple(label for label, _ in busiest),
                  (Series("笔数 count", tuple(v for _, v in busiest)),
                   Series("成功 approved", tuple(approved_of[label] for label, _ in busiest))),
                  ChartUnit.COUNT)
    return Report(
        name=ReportName.TERMINAL_HEALTH, title=TITLES[ReportName.TERMINAL_HEALTH],
        header=_header(ctx, merchant_id),
        parameters=(("营业日 Business date", day.isoformat()), _merchant_param(merchant_id)),
        columns=TERMINAL_COLUMNS, rows=table, row_count=len(table), totals=totals,
        figures=(Figure("terminals", "终端数 Terminals", len(table), ColumnType.COUNT),
                 Figure("silent", "失联终端 Silent", silent, ColumnType.COUNT),
                 Figure("count", "今日笔数 Transactions", totals["count"], ColumnType.COUNT),
                 Figure("net", "入账净额 Net", totals["net"])),
        charts=(chart,), generated_at=ctx.now())


_BUILDERS: Final[Mapping[ReportName, Callable[[ServiceContext, Principal, ReportRequest],
                                              Report]]] = {
    ReportName.DAILY_SUMMARY: _daily_summary,
    ReportName.SETTLEMENT: _settlement,
    ReportName.STATEMENT: _statement,
    ReportName.FEE_ANALYSIS: _fee_analysis,
    ReportName.TERMINAL_HEALTH: _terminal_health,
}
