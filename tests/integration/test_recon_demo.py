"""The demo day's reconciliation (``make run``): both files, a few discrepancies."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from jobtools import add_merchant, mid, pay

from autosettle.domain.transactions import TxnType
from autosettle.services import payouts, recon, settlement
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.simulators.demo_recon import reconcile_demo_day
from autosettle.simulators.issuer import IssuerSimulator

DAY = date(2026, 9, 18)


def test_the_demo_day_has_both_files_and_a_few_discrepancies(
        ctx: ServiceContext, sim: IssuerSimulator, tmp_path: Path) -> None:
    sim.clock = lambda: ctx.clock()
    for n in (1, 2):
        add_merchant(ctx, mid(n), cycle="D0")
        for amount in (1_000, 2_500, 4_200):
            pay(ctx, mid(n), TxnType.SALE, amount * n)
    settlement.settle(ctx, DAY, settlement.SAME_DAY)
    payouts.export_payouts(ctx, DAY)
    done = reconcile_demo_day(ctx, DAY, tmp_path / "inbox")
    assert len(done) == 2
    assert sorted(p.name for p in (tmp_path / "inbox").iterdir()) == [
        "INN26091801ZM", "RET20260918.txt"]
    found = {(d.channel, d.klass) for d in recon.list_discrepancies(ctx, SYSTEM)}
    assert found == {("issuer-sim", "ours_only"), ("issuer-sim", "theirs_only"),
                     ("issuer-sim", "fee_mismatch"), ("bank", "status_mismatch")}
    assert reconcile_demo_day(ctx, DAY, tmp_path / "inbox") == []   # once per date


def test_a_demo_day_without_payments_writes_nothing_yet(ctx: ServiceContext,
                                                        tmp_path: Path) -> None:
    assert reconcile_demo_day(ctx, DAY, tmp_path / "inbox") == []
    assert list((tmp_path / "inbox").iterdir()) == []
