"""``autosettle settle | payouts export | calendar next | maintenance announce | jobs runs``
end to end on an embedded SQLite file (Typer's CliRunner)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from jobtools import (
    CHANNEL_RECEIVABLE,
    FEE_INCOME,
    PAYOUT_CLEARING,
    add_merchant,
    add_sales,
    assert_balances,
    cli_invoker,
    merchant_payable,
    mid,
)
from typer.testing import Result

from autosettle.cli.wiring import channel_for
from autosettle.config import get_settings
from autosettle.domain.calendar import SHANGHAI, business_date
from autosettle.services.context import ServiceContext, build_context

Invoke = Callable[..., Result]
A = mid(1)


@pytest.fixture
def data_dir(cli_data_dir: Path) -> Path:
    return cli_data_dir


@pytest.fixture
def cli(data_dir: Path) -> Invoke:
    return cli_invoker()


@pytest.fixture
def ctx(cli: Invoke) -> Iterator[ServiceContext]:
    cli("db", "upgrade")
    settings = get_settings()
    context = build_context(settings, channel=channel_for(settings))  # as the CLI wires it
    yield context
    context.db.dispose()


def test_calendar_next_prints_the_settlement_date(cli: Invoke) -> None:
    # works before any database exists: the holiday data alone
    assert cli("calendar", "next", "--cycle", "T1", "--date", "2026-09-18").stdout == \
        "2026-09-20\n"  # Friday → the in-lieu Sunday workday
    shown = json.loads(cli("calendar", "next", "--cycle", "T+1", "--date", "2026-09-30",
                           "--json").stdout)
    assert shown == {"business_date": "2026-09-30", "cycle": "T1",
                     "settlement_date": "2026-10-08", "business_date_is_workday": True,
                     "settlement_date_is_workday": True}
    assert cli("calendar", "next", "--cycle", "D1", "--date", "2026-09-30").stdout == \
        "2026-10-01\n"
    bad = cli("calendar", "next", "--cycle", "T9", "--date", "2026-09-30", code=2)
    assert "validation_failed" in bad.stderr
    assert "validation_failed" in cli("calendar", "next", "--cycle", "T1", "--date",
                                      "30/09/2026", code=2).stderr


def test_settle_export_announce_and_list_runs(cli: Invoke, ctx: ServiceContext,
                                              data_dir: Path) -> None:
    add_merchant(ctx, A, "T1")
    net = add_sales(ctx, A, date(2026, 9, 18), [100_000, 7_777])

    gross = 107_777
    first = json.loads(cli("settle", "--date", "2026-09-20", "--json").stdout)
    assert (first["status"], first["batches"], first["payout_minor"]) == ("done", 1, net)
    settled = assert_balances(ctx, {CHANNEL_RECEIVABLE: gross, FEE_INCOME: -(gross - net),
                                    merchant_payable(A): -net})
    again = cli("settle", "--date", "2026-09-20", "--cycles", "T1,D1")  # table + progress
    assert "2026-09-20:T1+D1" in again.stdout
    assert "settling" in again.stderr  # the progress bar goes to stderr

    exported = json.loads(cli("payouts", "export", "--date", "2026-09-20", "--json").stdout)
    assert (exported["count"], exported["total_minor"]) == (1, net)
    assert Path(exported["csv"]).exists() and Path(exported["fixed_width"]).exists()
    assert Path(exported["csv"]).parent == data_dir / "payouts"
    assert_balances(ctx, {merchant_payable(A): net, PAYOUT_CLEARING: -net}, since=settled)

    runs = json.loads(cli("jobs", "runs", "--json").stdout)
    assert [r["job"] for r in runs] == ["settle-manual", "settle-manual"]
    assert sorted(r["counts"]["batches"] for r in runs) == [0, 1]

    now = datetime.now(SHANGHAI).replace(microsecond=0, tzinfo=None)
    start, end = now - timedelta(hours=1), now + timedelta(hours=2)
    announced = json.loads(cli("maintenance", "announce", "--start", start.isoformat(),
                               "--end", end.isoformat(), "--note", "bank upgrade",
                               "--json").stdout)
    assert announced["note"] == "bank upgrade"
    assert datetime.fromisoformat(announced["ends_at"]) == end.replace(tzinfo=SHANGHAI)
    refused = cli("settle", "--date", "2026-09-21", code=2)
    assert "invalid_state" in refused.stderr and "maintenance" in refused.stderr
    assert "validation_failed" in cli("maintenance", "announce", "--start", end.isoformat(),
                                      "--end", start.isoformat(), "--note", "x",
                                      code=2).stderr


def test_far_future_and_ancient_dates_are_clean_errors(cli: Invoke, ctx: ServiceContext,
                                                       data_dir: Path) -> None:
    add_merchant(ctx, A, "T1")
    add_sales(ctx, A, date(2026, 9, 18), [100_000])
    today = business_date(datetime.now(SHANGHAI))
    ahead = (today + timedelta(days=2)).isoformat()  # two days: never today, whatever the hour
    for args in (("settle", "--date", "9999-12-31"), ("settle", "--date", ahead, "--json"),
                 ("settle", "--date", "1999-12-31"),
                 ("payouts", "export", "--date", "9999-12-31"),
                 ("payouts", "export", "--date", ahead, "--json"),
                 ("calendar", "next", "--cycle", "T1", "--date", "9999-12-31"),
                 ("calendar", "next", "--cycle", "D1", "--date", "9999-12-31", "--json")):
        refused = cli(*args, code=2)
        assert "date_out_of_range" in refused.stderr, (args, refused.stderr)
        assert "Traceback" not in refused.stderr and "settling" not in refused.stderr
        assert refused.exception is None or isinstance(refused.exception, SystemExit), args
    assert json.loads(cli("jobs", "runs", "--json").stdout) == []
    assert not (data_dir / "payouts").exists()
    assert cli("calendar", "next", "--cycle", "D0", "--date", "9999-12-31").stdout == \
        "9999-12-31\n"
    settled = json.loads(cli("settle", "--date", "2026-09-20", "--json").stdout)
    assert (settled["status"], settled["batches"]) == ("done", 1)
    with ctx.db.unit_of_work() as uow:
        [batch] = uow.settlement.batches(A, None, None, 10)
        assert batch.settlement_date == date(2026, 9, 20)
        assert uow.ledger.balance(f"merchant_unsettled:{A}", "CNY") == 0
        assert uow.ledger.balance(f"merchant_payable:{A}", "CNY") == -batch.payout_minor
