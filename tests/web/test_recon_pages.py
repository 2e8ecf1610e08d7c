"""The reconciliation pages of the console on both databases: a day of real payments, the
issuer simulator's clearing file with planted faults, imported and matched; then the
summary, the queue, a discrepancy resolved through its form (ledger balances asserted),
closing the date, and who may do what (docs/console.md, docs/reconciliation.md)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from consoletools import ConsoleWorld, login
from fastapi.testclient import TestClient
from jobtools import (
    BANK,
    CHANNEL_RECEIVABLE,
    assert_balances,
    balances,
    clock_at,
    ledger_balanced,
    pay,
)

from autosettle.domain.calendar import SHANGHAI
from autosettle.domain.ledger import Account, AccountType
from autosettle.domain.transactions import TxnType
from autosettle.services import recon
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.simulators.issuer import ClearingFault, IssuerSimulator, write_clearing_file

DAY = date(2026, 9, 18)
CHANNEL = "issuer-sim"
ADJUSTMENTS = Account(AccountType.ADJUSTMENTS).code
FAULTS = {ClearingFault.MISSING: 1, ClearingFault.AMOUNT: 1, ClearingFault.FEE: 1}
ROW = re.compile(r'data-testid="recon-queue-row" data-discrepancy-id="(\d+)" '
                 r'data-klass="([a-z_]+)"')


@pytest.fixture
def reconciled(ctx: ServiceContext, sim: IssuerSimulator, world: ConsoleWorld,
               tmp_path: Path) -> None:
    """Six sales at the world's two merchants on DAY; the channel's file misses one, changes
    the amount of another and the fee of a third; imported and matched."""
    sim.clock = lambda: ctx.clock()
    start = datetime(2026, 9, 18, 10, 0, tzinfo=SHANGHAI)
    for i in range(6):
        with clock_at(ctx, start + timedelta(minutes=3 * i)):
            pay(ctx, (world.m1, world.m2)[i % 2], TxnType.SALE, 1_000 + 137 * i)
    path = tmp_path / f"INN{DAY:%y%m%d}01ZM"
    planted = write_clearing_file(sim, path, DAY, faults=FAULTS, seed=7,
                                  fee_for=recon.fee_function(ctx))
    assert len(planted) == 3
    assert recon.import_file(ctx, SYSTEM, path, "acp").accepted
    recon.run_day(ctx, SYSTEM, DAY, CHANNEL)


def _ops(console: TestClient) -> str:
    status, csrf = login(console, "ops")
    assert status == 303
    return csrf


def _of_class(ctx: ServiceContext, klass: str) -> recon.Discrepancy:
    """The one discrepancy of ``klass``, with its line (as the detail page reads it)."""
    (found,) = recon.list_discrepancies(ctx, SYSTEM, channel=CHANNEL, on=DAY, klass=klass)
    return recon.get_discrepancy(ctx, SYSTEM, found.discrepancy_id)


def _day_state(ctx: ServiceContext) -> str:
    (day,) = [d for d in recon.day_states(ctx, SYSTEM) if d["channel"] == CHANNEL]
    return str(day["state"])


def _count(html: str, klass: str, state: str) -> int:
    found = re.search(rf'data-testid="recon-count-{CHANNEL}-{klass}-{state}" '
                      rf'href="[^"]*">(\d+)</a>', html)
    assert found, f"no count for {klass} {state}"
    return int(found.group(1))


def test_summary_shows_counts_per_class_and_downloads(
        console: TestClient, ctx: ServiceContext, reconciled: None) -> None:
    _ops(console)
    page = console.get(f"/console/recon?date={DAY}")
    assert page.status_code == 200, page.text
    expected = {"ours_only": 1, "amount_mismatch": 1, "fee_mismatch": 1, "theirs_only": 0,
                "status_mismatch": 0, "date_mismatch": 0}
    for klass, n in expected.items():
        assert _count(page.text, klass, "open") == n
        assert _count(page.text, klass, "resolved") == 0
    assert "我方有/对方无" in page.text and "ours only" in page.text
    (day,) = recon.day_states(ctx, SYSTEM)
    assert f'data-testid="recon-matched">{day["matched"]}<' in page.text
    assert 'data-testid="recon-close-form"' in page.text
    assert 'data-testid="nav-recon"' in page.text
    # each count links to the filtered queue
    assert (f"/console/recon/discrepancies?date={DAY}&amp;channel={CHANNEL}"
            "&amp;klass=ours_only&amp;state=open") in page.text
    csv = console.get(f"/console/recon/summary.csv?date={DAY}")
    assert csv.status_code == 200
    assert csv.headers["content-disposition"].endswith('recon-summary-20260918.csv"')
    header, row = csv.text.splitlines()[:2]
    values = dict(zip(header.split(","), row.split(","), strict=True))
    assert values["channel"] == CHANNEL and values["ours_only_open"] == "1"
    xlsx = console.get(f"/console/recon/summary.xlsx?date={DAY}")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    assert console.get(f"/console/recon/summary.pdf?date={DAY}").status_code == 404
    # a channel filter that matches nothing
    other = console.get(f"/console/recon?date={DAY}&channel=bank")
    assert other.status_code == 200 and 'data-testid="recon-none"' in other.text


def test_queue_filters(console: TestClient, ctx: ServiceContext, reconciled: None) -> None:
    _ops(console)
    every = console.get(f"/console/recon/discrepancies?date={DAY}&channel={CHANNEL}")
    assert every.status_code == 200
    assert sorted(k for _, k in ROW.findall(every.text)) == \
        ["amount_mismatch", "fee_mismatch", "ours_only"]
    amount = console.get(f"/console/recon/discrepancies?date={DAY}&klass=amount_mismatch")
    assert [k for _, k in ROW.findall(amount.text)] == ["amount_mismatch"]
    assert "金额不符" in amount.text
    assert ROW.findall(console.get("/console/recon/discrepancies?state=resolved").text) == []
    assert ROW.findall(console.get("/console/recon/discrepancies?date=2026-09-19").text) == []
    fee = _of_class(ctx, "fee_mismatch")
    recon.assign(ctx, SYSTEM, fee.discrepancy_id, "alice")
    owned = console.get("/console/recon/discrepancies?owner=alice")
    assert ROW.findall(owned.text) == [(str(fee.discrepancy_id), "fee_mismatch")]
    assert console.get("/console/recon/discrepancies?klass=nonsense").status_code == 400
    assert console.get("/console/recon/discrepancies?date=18.09.2026").status_code == 400


def test_an_adjustment_through_the_form(console: TestClient, ctx: ServiceContext,
                                         reconciled: None) -> None:
    csrf = _ops(console)
    d = _of_class(ctx, "ours_only")
    page = console.get(f"/console/recon/discrepancies/{d.discrepancy_id}")
    assert page.status_code == 200
    assert 'data-testid="recon-adjust-entry"' in page.text
    assert "recon.adjustment.channel_short" in page.text
    assert f'href="/console/transactions/{d.txn_id}"' in page.text
    assert 'data-testid="recon-refund-form"' not in page.text  # not allowed for ours only
    assigned = console.post(f"/console/recon/discrepancies/{d.discrepancy_id}/assign",
                            data={"csrf_token": csrf, "owner": "alice"},
                            follow_redirects=False)
    assert assigned.status_code == 303
    before = balances(ctx)
    answer = console.post(f"/console/recon/discrepancies/{d.discrepancy_id}/resolve",
                          data={"csrf_token": csrf, "action": "adjust",
                                "reason": "channel confirmed it never cleared"},
                          follow_redirects=False)
    assert answer.status_code == 303, answer.text
    after = recon.get_discrepancy(ctx, SYSTEM, d.discrepancy_id)
    assert (after.state, after.resolution, after.owner) == ("resolved", "adjusted", "alice")
    assert after.entry_key is not None
    assert d.our_amount_minor is not None
    # the receivable gives up our amount, adjustments take it (the channel paid nothing)
    assert_balances(ctx, {CHANNEL_RECEIVABLE: -d.our_amount_minor,
                          ADJUSTMENTS: d.our_amount_minor}, since=before)
    assert BANK not in {k for k, v in balances(ctx).items() if v != before.get(k, 0)}
    assert ledger_balanced(ctx)
    shown = console.get(f"/console/recon/discrepancies/{d.discrepancy_id}").text
    assert "recon.discrepancy.assign" in shown and "recon.discrepancy.adjust" in shown
    assert 'data-testid="recon-actions"' not in shown
    # resolving it again is a conflict that changes nothing
    again = console.post(f"/console/recon/discrepancies/{d.discrepancy_id}/resolve",
                         data={"csrf_token": csrf, "action": "accept", "reason": "twice"})
    assert again.status_code == 409
    assert_balances(ctx, {CHANNEL_RECEIVABLE: -d.our_amount_minor,
                          ADJUSTMENTS: d.our_amount_minor}, since=before)


def test_close_refused_while_open_then_accepted(console: TestClient, ctx: ServiceContext,
                                                reconciled: None) -> None:
    csrf = _ops(console)
    form = {"csrf_token": csrf, "channel": CHANNEL, "business_date": DAY.isoformat()}
    refused = console.post("/console/recon/close", data=form, follow_redirects=False)
    assert refused.status_code == 409
    assert 'data-testid="recon-close-refused"' in refused.text
    assert "3 open discrepancies" in refused.text
    assert _day_state(ctx) != "closed"
    for d in recon.list_discrepancies(ctx, SYSTEM, channel=CHANNEL, on=DAY, state="open"):
        answer = console.post(f"/console/recon/discrepancies/{d.discrepancy_id}/resolve",
                              data={"csrf_token": csrf, "action": "accept",
                                    "reason": "accepted after review"},
                              follow_redirects=False)
        assert answer.status_code == 303
    closed = console.post("/console/recon/close", data=form, follow_redirects=False)
    assert closed.status_code == 303
    assert _day_state(ctx) == "closed"
    page = console.get(closed.headers["location"])
    assert 'data-testid="recon-close-form"' not in page.text
    assert ledger_balanced(ctx)


def test_merchant_users_get_404(console: TestClient, ctx: ServiceContext,
                                reconciled: None) -> None:
    status, csrf = login(console, "shop1")
    assert status == 303
    d = _of_class(ctx, "ours_only")
    assert 'data-testid="nav-recon"' not in console.get("/console/").text
    for path in ("/console/recon", f"/console/recon?date={DAY}",
                 f"/console/recon/summary.csv?date={DAY}", "/console/recon/discrepancies",
                 f"/console/recon/discrepancies/{d.discrepancy_id}"):
        assert console.get(path).status_code == 404, path
    before = balances(ctx)
    for path, data in ((f"/console/recon/discrepancies/{d.discrepancy_id}/assign",
                        {"owner": "me"}),
                       (f"/console/recon/discrepancies/{d.discrepancy_id}/resolve",
                        {"action": "adjust", "reason": "mine"}),
                       ("/console/recon/close",
                        {"channel": CHANNEL, "business_date": DAY.isoformat()})):
        assert console.post(path, data={"csrf_token": csrf, **data}).status_code == 404
    assert recon.get_discrepancy(ctx, SYSTEM, d.discrepancy_id) == d
    assert balances(ctx) == before


def test_posts_without_csrf_are_refused(console: TestClient, ctx: ServiceContext,
                                        reconciled: None) -> None:
    _ops(console)
    d = _of_class(ctx, "amount_mismatch")
    before = balances(ctx)
    for path, data in ((f"/console/recon/discrepancies/{d.discrepancy_id}/assign",
                        {"owner": "mallory"}),
                       (f"/console/recon/discrepancies/{d.discrepancy_id}/resolve",
                        {"action": "adjust", "reason": "forged"}),
                       ("/console/recon/close",
                        {"channel": CHANNEL, "business_date": DAY.isoformat()})):
        for token in (None, "not-the-token"):
            form = data if token is None else {"csrf_token": token, **data}
            assert console.post(path, data=form).status_code == 403, path
    assert recon.get_discrepancy(ctx, SYSTEM, d.discrepancy_id) == d
    assert balances(ctx) == before
    assert _day_state(ctx) != "closed"
