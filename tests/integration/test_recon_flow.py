"""Reconciliation end to end on both databases: a day of real payments through the payment
service, the issuer simulator's own clearing file with planted faults, import, match,
resolve, close; the ledger after (docs/reconciliation.md)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from jobtools import (
    CHANNEL_RECEIVABLE,
    add_merchant,
    assert_balances,
    balances,
    clock_at,
    ledger_balanced,
    mid,
)
from jobtools import pay as jt_pay

from autosettle.domain.calendar import SHANGHAI
from autosettle.domain.errors import AlreadyExists, ConflictError
from autosettle.domain.transactions import TxnType
from autosettle.services import recon, reversals
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.services.payments import OriginalRef
from autosettle.simulators.issuer import ClearingFault, IssuerSimulator, write_clearing_file

DAY = date(2026, 9, 18)
CHANNEL = "issuer-sim"
CLASS_OF = {ClearingFault.MISSING: "ours_only", ClearingFault.EXTRA: "theirs_only",
            ClearingFault.AMOUNT: "amount_mismatch",
            ClearingFault.UNSEEN_REVERSAL: "status_mismatch",
            ClearingFault.NEXT_DAY: "date_mismatch", ClearingFault.FEE: "fee_mismatch",
            ClearingFault.REVERSAL_NEXT_DAY: "status_mismatch"}


def pay(ctx: ServiceContext, merchant_id: str, txn_type: TxnType, fen: int | None = None,
        original: str | None = None) -> str:
    return jt_pay(ctx, merchant_id, txn_type, fen, original=original)


def make_day(ctx: ServiceContext, sim: IssuerSimulator, sales: int = 12) -> dict[str, list[str]]:
    """Two merchants' sales on DAY, a void, a refund and two reversed sales."""
    sim.clock = lambda: ctx.clock()
    made: dict[str, list[str]] = {"sale": [], "void": [], "refund": [], "reversed": []}
    merchants = [mid(1), mid(2)]
    for m in merchants:
        add_merchant(ctx, m)
    start = datetime(2026, 9, 18, 10, 0, tzinfo=SHANGHAI)
    for i in range(sales):
        with clock_at(ctx, start + timedelta(minutes=3 * i)):
            made["sale"].append(pay(ctx, merchants[i % 2], TxnType.SALE, 1_000 + 137 * i))
    with clock_at(ctx, start + timedelta(hours=2)):
        made["void"].append(pay(ctx, merchants[0], TxnType.VOID,
                                original=made["sale"][0]))
        made["refund"].append(pay(ctx, merchants[1], TxnType.REFUND, 500,
                                  original=made["sale"][1]))
        for n in range(2):
            txn = pay(ctx, merchants[n], TxnType.SALE, 7_777 + n)
            result = reversals.reverse(ctx, merchants[n], f"ST{merchants[n][-6:]}",
                                       OriginalRef(txn_id=txn))
            assert result.approved
            sim.reverse(txn, "06")  # the reversal reached the issuer
            made["reversed"].append(txn)
    return made


@pytest.fixture
def day(ctx: ServiceContext, sim: IssuerSimulator) -> dict[str, list[str]]:
    with clock_at(ctx, datetime(2026, 9, 18, 10, 0, tzinfo=SHANGHAI)):
        return make_day(ctx, sim)


def _found(ctx: ServiceContext) -> set[tuple[str, str]]:
    """(class, our txn id or the line's order reference) of every discrepancy."""
    out = set()
    for d in recon.list_discrepancies(ctx, SYSTEM, channel=CHANNEL, on=DAY):
        ref = d.txn_id
        if ref is None:
            line = recon.get_discrepancy(ctx, SYSTEM, d.discrepancy_id).line
            assert line is not None
            ref = line["order_ref"]
        out.add((d.klass, ref))
    return out


def _import_and_run(ctx: ServiceContext, sim: IssuerSimulator, tmp_path: Path,
                    faults: dict[ClearingFault, int], seed: int) -> list[tuple[ClearingFault, str]]:
    path = tmp_path / f"INN{DAY:%y%m%d}01ZM_{seed}"
    planted = write_clearing_file(sim, path, DAY, faults=faults, seed=seed,
                                  fee_for=recon.fee_function(ctx))
    result = recon.import_file(ctx, SYSTEM, path, "acp")
    assert result.accepted and result.bad == []
    recon.run_day(ctx, SYSTEM, DAY, CHANNEL)
    return planted


def test_a_clean_day_matches_everything(ctx: ServiceContext, sim: IssuerSimulator,
                                        day: dict[str, list[str]], tmp_path: Path) -> None:
    _import_and_run(ctx, sim, tmp_path, {}, seed=1)
    assert _found(ctx) == set()
    states = recon.day_states(ctx, SYSTEM)
    # 12 sales, a void, a refund: every one matched; the reversed sales are agreement
    assert states[0]["matched"] == 14
    total = sum(b for k, b in balances(ctx).items() if k == CHANNEL_RECEIVABLE)
    assert total == 0, "a clean day's receivable is cleared in full by the matched lines"
    recon.close_day(ctx, SYSTEM, DAY, CHANNEL)


def _match_rows(ctx: ServiceContext) -> list[tuple[str, str]]:
    with ctx.db.unit_of_work() as uow:
        rows = uow.recon.read_frame_sql(
            "SELECT business_date, txn_id FROM recon_matches ORDER BY match_id",
            ("business_date", "txn_id"))
    return [(str(d), str(t)) for d, t in rows.iter_rows()]


def test_a_run_again_replaces_the_days_matches_and_only_them(
        ctx: ServiceContext, sim: IssuerSimulator, day: dict[str, list[str]],
        tmp_path: Path) -> None:
    """The day's matches are found again by the id range its row keeps (no index by day):
    a second run replaces them, another day's stay."""
    planted = _import_and_run(ctx, sim, tmp_path, {ClearingFault.MISSING: 1}, seed=5)
    first = _match_rows(ctx)
    assert len(first) == 13
    from autosettle.simulators.issuer import clearing_lines, write_acp_file
    lines, _ = clearing_lines(sim, DAY, recon.fee_function(ctx))
    path = tmp_path / "day2"
    write_acp_file(path, DAY + timedelta(days=1),
                   [line for line in lines if line.reference == planted[0][1]])
    recon.import_file(ctx, SYSTEM, path, "acp")
    recon.run_day(ctx, SYSTEM, DAY + timedelta(days=1), CHANNEL)
    both = _match_rows(ctx)
    assert both[:13] == first and [t for _, t in both[13:]] == [planted[0][1]]
    recon.run_day(ctx, SYSTEM, DAY, CHANNEL)
    again = _match_rows(ctx)
    assert sorted(again) == sorted(both) and len(again) == 14
    states = {s["business_date"]: s["matched"] for s in recon.day_states(ctx, SYSTEM)}
    assert states == {DAY.isoformat(): 13, (DAY + timedelta(days=1)).isoformat(): 1}


@pytest.mark.parametrize("fault", list(ClearingFault))
def test_each_planted_fault_is_found_and_nothing_else(
        ctx: ServiceContext, sim: IssuerSimulator, day: dict[str, list[str]], tmp_path: Path,
        fault: ClearingFault) -> None:
    planted = _import_and_run(ctx, sim, tmp_path, {fault: 1}, seed=7)
    assert len(planted) == 1
    assert _found(ctx) == {(CLASS_OF[f], ref) for f, ref in planted}


def test_several_faults_at_once(ctx: ServiceContext, sim: IssuerSimulator,
                                day: dict[str, list[str]], tmp_path: Path) -> None:
    faults = {ClearingFault.MISSING: 2, ClearingFault.EXTRA: 2, ClearingFault.AMOUNT: 1,
              ClearingFault.UNSEEN_REVERSAL: 2, ClearingFault.NEXT_DAY: 1,
              ClearingFault.FEE: 2}
    planted = _import_and_run(ctx, sim, tmp_path, faults, seed=11)
    assert _found(ctx) == {(CLASS_OF[f], ref) for f, ref in planted}
    # the summary's money per class is what is in question: the fee difference for a fee
    # mismatch, the amount cleared for a status or date mismatch (the amounts agree
    # there), the amount difference for the rest
    [row] = recon.summary(ctx, SYSTEM, DAY)
    for klass in {CLASS_OF[f] for f, _ in planted}:
        expected = 0
        for d in recon.list_discrepancies(ctx, SYSTEM, channel=CHANNEL, on=DAY):
            if d.klass != klass:
                continue
            if klass == "fee_mismatch":
                assert d.our_amount_minor == d.their_amount_minor
                expected += abs((d.their_fee_minor or 0) - (d.our_fee_minor or 0))
            elif klass in ("status_mismatch", "date_mismatch"):
                expected += abs(d.their_amount_minor or d.our_amount_minor or 0)
            else:
                expected += abs((d.their_amount_minor or 0) - (d.our_amount_minor or 0))
        in_summary = sum(row[f"{klass}_{state}_minor"] for state in ("open", "resolved"))
        assert in_summary == expected > 0, klass


def test_resolved_day_balances_explains_the_receivable_and_closes(
        ctx: ServiceContext, sim: IssuerSimulator, day: dict[str, list[str]],
        tmp_path: Path) -> None:
    faults = {ClearingFault.MISSING: 1, ClearingFault.EXTRA: 1, ClearingFault.AMOUNT: 1,
              ClearingFault.UNSEEN_REVERSAL: 1, ClearingFault.NEXT_DAY: 1,
              ClearingFault.FEE: 1}
    _import_and_run(ctx, sim, tmp_path, faults, seed=3)
    before = balances(ctx)
    assert before.get(CHANNEL_RECEIVABLE, 0) != 0
    with pytest.raises(ConflictError, match="open discrepancies"):
        recon.close_day(ctx, SYSTEM, DAY, CHANNEL)
    opened = recon.list_discrepancies(ctx, SYSTEM, on=DAY, state="open")
    # the date mismatch is benign (the money agrees): resolved by the run
    assert {d.klass for d in opened} == {"ours_only", "theirs_only", "amount_mismatch",
                                         "status_mismatch", "fee_mismatch"}
    for d in opened:
        recon.assign(ctx, SYSTEM, d.discrepancy_id, "ops-lee")
        done = recon.resolve(ctx, SYSTEM, d.discrepancy_id, "adjust", f"adjusted {d.klass}")
        assert done.state == "resolved" and done.entry_key is not None
        assert done.owner == "ops-lee"
    after = balances(ctx)
    assert after.get(CHANNEL_RECEIVABLE, 0) == 0, "every fen explained"
    assert ledger_balanced(ctx)
    # the money: the bank got what the channel paid, adjustments took the differences
    with ctx.db.unit_of_work() as uow:
        lines = uow.recon.lines(CHANNEL, DAY)
    paid = sum(a * (1 if t in ("sale", "completion") else -1)
               for a, t in zip(lines["amount_minor"], lines["txn_type"], strict=True))
    assert after.get("bank", 0) == paid
    recon.close_day(ctx, SYSTEM, DAY, CHANNEL)
    assert recon.close_day(ctx, SYSTEM, DAY, CHANNEL)["state"] == "closed"
    # a closed date cannot change
    with pytest.raises(ConflictError, match="closed"):
        recon.run_day(ctx, SYSTEM, DAY, CHANNEL)
    extra = tmp_path / "again"
    write_clearing_file(sim, extra, DAY, faults={ClearingFault.EXTRA: 1}, seed=99)
    with pytest.raises(ConflictError, match="closed"):
        recon.import_file(ctx, SYSTEM, extra, "acp")
    with ctx.db.unit_of_work() as uow:
        actions = [e.action for e in uow.audit.recent(500)]
    assert actions.count("recon.discrepancy.adjust") == len(opened)
    assert {"recon.import", "recon.run", "recon.close", "recon.discrepancy.assign"} <= set(
        actions)


def test_the_same_file_twice_is_refused(ctx: ServiceContext, sim: IssuerSimulator,
                                        day: dict[str, list[str]], tmp_path: Path) -> None:
    path = tmp_path / "acp"
    write_clearing_file(sim, path, DAY)
    recon.import_file(ctx, SYSTEM, path, "acp")
    copy = tmp_path / "acp-copy"
    copy.write_bytes(path.read_bytes())
    with pytest.raises(AlreadyExists, match="imported already"):
        recon.import_file(ctx, SYSTEM, copy, "acp")


def test_a_line_a_day_late_clears_the_earlier_ours_only(
        ctx: ServiceContext, sim: IssuerSimulator, day: dict[str, list[str]],
        tmp_path: Path) -> None:
    """Day 1's file lacks a sale; day 2's file carries it (dated day 1): the ours-only of
    day 1 is auto-resolved, day 2 matches it and clears its money."""
    planted = _import_and_run(ctx, sim, tmp_path, {ClearingFault.MISSING: 1}, seed=5)
    late = planted[0][1]
    from autosettle.simulators.issuer import clearing_lines, write_acp_file
    lines, _ = clearing_lines(sim, DAY, recon.fee_function(ctx))
    moved = [line for line in lines if line.reference == late]
    path = tmp_path / "day2"
    write_acp_file(path, DAY + timedelta(days=1), moved)
    recon.import_file(ctx, SYSTEM, path, "acp")
    recon.run_day(ctx, SYSTEM, DAY + timedelta(days=1), CHANNEL)
    first = recon.list_discrepancies(ctx, SYSTEM, on=DAY)
    assert [(d.klass, d.state, d.resolution) for d in first] == [
        ("ours_only", "resolved", "auto")]
    assert recon.list_discrepancies(ctx, SYSTEM, on=DAY + timedelta(days=1)) == []
    states = {s["business_date"]: s for s in recon.day_states(ctx, SYSTEM)}
    assert states[(DAY + timedelta(days=1)).isoformat()]["matched"] == 1
    assert balances(ctx).get(CHANNEL_RECEIVABLE, 0) == 0
    recon.close_day(ctx, SYSTEM, DAY, CHANNEL)


def test_a_reversal_the_channel_clears_the_next_day_resolves_both_days(
        ctx: ServiceContext, sim: IssuerSimulator, day: dict[str, list[str]],
        tmp_path: Path) -> None:
    """We reversed a sale on day 1, the channel cleared it on day 1 (status mismatch) and
    takes it back in day 2's file: day 2's run pairs the reversal line with the open
    status mismatch of day 1 and resolves both (system, auto, audited); the money agrees,
    so the receivable stays explained by the matched lines and nothing else moves."""
    start = balances(ctx)
    planted = _import_and_run(ctx, sim, tmp_path, {ClearingFault.REVERSAL_NEXT_DAY: 1},
                              seed=13)
    assert [f for f, _ in planted] == [ClearingFault.REVERSAL_NEXT_DAY]
    ref = planted[0][1]
    assert ref in day["reversed"]
    [first] = recon.list_discrepancies(ctx, SYSTEM, on=DAY)
    assert (first.klass, first.state, first.txn_id) == ("status_mismatch", "open", ref)
    with ctx.db.unit_of_work() as uow:
        lines = uow.recon.lines(CHANNEL, DAY)
    matched = lines.filter(pl.col("order_ref") != ref)
    paid = sum(a * (1 if t in ("sale", "completion") else -1) for a, t in
               zip(matched["amount_minor"], matched["txn_type"], strict=True))
    # day 1: the matched lines clear the receivable in full; the reversed sale's line
    # (the status mismatch) moves no money
    after_day1 = assert_balances(ctx, {"bank": paid, CHANNEL_RECEIVABLE: -paid}, since=start)
    assert after_day1.get(CHANNEL_RECEIVABLE, 0) == 0
    with pytest.raises(ConflictError, match="open discrepancies"):
        recon.close_day(ctx, SYSTEM, DAY, CHANNEL)
    # day 2: the channel's file carries the reversal line (and nothing else)
    from autosettle.simulators.issuer import next_day_reversals, write_acp_file
    day2 = DAY + timedelta(days=1)
    reversal = next_day_reversals(sim, DAY, planted, recon.fee_function(ctx))
    assert [(r.txn_type, r.reference) for r in reversal] == [("void", ref)]
    path = tmp_path / "day2"
    write_acp_file(path, day2, reversal)
    recon.import_file(ctx, SYSTEM, path, "acp")
    run = recon.run_day(ctx, SYSTEM, day2, CHANNEL)
    assert run.auto_resolved == 2 and run.cleared_minor == 0
    [first] = recon.list_discrepancies(ctx, SYSTEM, on=DAY)
    assert (first.klass, first.state, first.owner, first.resolution) == (
        "status_mismatch", "resolved", "system", "auto")
    [second] = recon.list_discrepancies(ctx, SYSTEM, on=day2)
    assert (second.klass, second.state, second.owner, second.resolution, second.txn_id) == (
        "status_mismatch", "resolved", "system", "auto", ref)
    # the money agrees: what the channel cleared on day 1 it takes back on day 2
    assert (first.their_amount_minor or 0) + (second.their_amount_minor or 0) == 0
    assert_balances(ctx, {}, since=after_day1)
    assert ledger_balanced(ctx)
    with ctx.db.unit_of_work() as uow:
        runs = [e for e in uow.audit.recent(100) if e.action == "recon.run"]
    assert runs[0].detail["auto_resolved_earlier"] == [first.discrepancy_id]
    assert runs[0].detail["auto_resolved_new"] == 1
    # running day 2 again finds the same and changes nothing
    again = recon.run_day(ctx, SYSTEM, day2, CHANNEL)
    assert again.counts["theirs_only"] == 0
    assert len(recon.list_discrepancies(ctx, SYSTEM, on=day2)) == 1
    assert_balances(ctx, {}, since=after_day1)
    recon.close_day(ctx, SYSTEM, DAY, CHANNEL)
    recon.close_day(ctx, SYSTEM, day2, CHANNEL)


def test_a_next_day_line_that_does_not_take_the_money_back_stays_open(
        ctx: ServiceContext, sim: IssuerSimulator, day: dict[str, list[str]],
        tmp_path: Path) -> None:
    """The same, but day 2's line takes back less than day 1 cleared: not benign, both
    stay open for an operator."""
    planted = _import_and_run(ctx, sim, tmp_path, {ClearingFault.REVERSAL_NEXT_DAY: 1},
                              seed=13)
    from dataclasses import replace

    from autosettle.simulators.issuer import next_day_reversals, write_acp_file
    day2 = DAY + timedelta(days=1)
    [reversal] = next_day_reversals(sim, DAY, planted)
    path = tmp_path / "day2"
    write_acp_file(path, day2, [replace(reversal, amount_minor=reversal.amount_minor - 1)])
    recon.import_file(ctx, SYSTEM, path, "acp")
    before = balances(ctx)
    r2 = recon.run_day(ctx, SYSTEM, day2, CHANNEL)
    assert r2.auto_resolved == 0
    assert [(d.klass, d.state) for d in recon.list_discrepancies(ctx, SYSTEM, on=DAY)] == [
        ("status_mismatch", "open")]
    assert [(d.klass, d.state) for d in recon.list_discrepancies(ctx, SYSTEM, on=day2)] == [
        ("status_mismatch", "open")]
    assert_balances(ctx, {}, since=before)


CSV_NAMES = {"sale": "消费", "void": "撤销", "refund": "退货", "completion": "预授权完成"}


def _statement(ctx: ServiceContext, path: Path, *, lose_rrn: str | None = None,
               net: tuple[str, str] | None = None) -> Path:
    """An acquirer's CSV statement of DAY made from our records: keyed by RRN; the record
    ``lose_rrn`` comes with a wrong RRN and trace (left to the tolerant rules); ``net`` =
    (sale, child) comes as one net line under the sale's RRN."""
    from zoneinfo import ZoneInfo

    with ctx.db.unit_of_work() as uow:
        ours = uow.recon.our_records(CHANNEL, DAY).filter(pl.col("status") != "reversed")
    rows = {r["txn_id"]: r for r in ours.iter_rows(named=True)}
    if net is not None:
        sale, child = rows[net[0]], rows.pop(net[1])
        sale["amount_minor"] -= child["amount_minor"]
    out = ["交易日期,交易时间,商户号,终端号,参考号,凭证号,批次号,卡号,交易类型,交易金额,手续费"]
    total = 0
    for r in rows.values():
        at = datetime.fromtimestamp(r["at_s"], ZoneInfo("Asia/Shanghai"))
        lost = r["txn_id"] == lose_rrn
        rrn, trace = ("999999999999", "999999") if lost else (r["rrn"], r["trace"])
        amount = r["amount_minor"]
        total += amount
        out.append(f"{at:%Y-%m-%d},{at:%H:%M:%S},{r['merchant_id']},{r['terminal_id']},{rrn},"
                   f"{trace},{r['batch_no']},622202******{r['pan_last4']},"
                   f"{CSV_NAMES[r['txn_type']]},{amount // 100}.{amount % 100:02d},")
    out.append(f"合计,{len(rows)},{total // 100}.{total % 100:02d}")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def test_a_csv_statement_keyed_by_rrn_with_tolerant_and_net_lines(
        ctx: ServiceContext, sim: IssuerSimulator, day: dict[str, list[str]],
        tmp_path: Path) -> None:
    path = _statement(ctx, tmp_path / "stmt.csv", lose_rrn=day["sale"][3],
                      net=(day["sale"][1], day["refund"][0]))
    done = recon.import_file(ctx, SYSTEM, path, "statement-csv")
    assert done.accepted and done.imported == 13
    run = recon.run_day(ctx, SYSTEM, DAY, CHANNEL)
    assert run.counts["matched"] == 14 and _found(ctx) == set()
    with ctx.db.unit_of_work() as uow:
        rules = dict(uow.connection.exec_driver_sql(
            "SELECT txn_id, rule FROM recon_matches").fetchall())
    assert rules[day["sale"][3]] == "tolerant"
    assert rules[day["sale"][1]] == rules[day["refund"][0]] == "net"
    assert balances(ctx).get(CHANNEL_RECEIVABLE, 0) == 0


def test_terminal_batch_totals_against_our_transactions(
        ctx: ServiceContext, sim: IssuerSimulator, day: dict[str, list[str]]) -> None:
    from dataclasses import replace

    from autosettle.services import terminal_batches

    with ctx.db.unit_of_work() as uow:
        batches = uow.recon.terminal_batches_of_day(DAY)
        totals = [terminal_batches.host_totals(uow.terminal_host.batch_lines(m, t, b, 10_000))
                  for m, t, b in batches]
    assert len(batches) == 2
    (m0, t0, b0), (m1, t1, b1) = batches
    terminal_batches.settle(ctx, m0, t0, b0, totals[0])   # balanced
    wrong = replace(totals[1], domestic=replace(
        totals[1].domestic, debit_amount_minor=totals[1].domestic.debit_amount_minor + 100))
    terminal_batches.settle(ctx, m1, t1, b1, wrong)
    run = recon.run_day(ctx, SYSTEM, DAY, "terminal")
    assert (run.counts["matched"], run.counts["amount_mismatch"]) == (1, 1)
    [d] = recon.list_discrepancies(ctx, SYSTEM, channel="terminal")
    assert (d.klass, d.merchant_id) == ("amount_mismatch", m1)
    assert d.their_amount_minor is not None and d.our_amount_minor is not None
    assert d.their_amount_minor - d.our_amount_minor == 100
    with pytest.raises(ConflictError, match="cannot be closed by adjust"):
        recon.resolve(ctx, SYSTEM, d.discrepancy_id, "adjust", "no")
    recon.resolve(ctx, SYSTEM, d.discrepancy_id, "accept", "the terminal miscounted")
    recon.close_day(ctx, SYSTEM, DAY, "terminal")
