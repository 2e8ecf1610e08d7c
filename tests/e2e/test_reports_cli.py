"""``autosettle reports NAME`` end to end on an embedded SQLite file (Typer's CliRunner)."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
from jobtools import add_merchant, add_sales, cli_invoker, mid
from openpyxl import load_workbook
from reporttools import parse_csv, pdf_text
from typer.testing import Result

from autosettle.cli import reports as cli_reports
from autosettle.cli.wiring import channel_for
from autosettle.config import get_settings
from autosettle.services.context import ServiceContext, build_context

Invoke = Callable[..., Result]
A = mid(1)
DAY = "2026-09-18"


@pytest.fixture
def cli(cli_data_dir: Path) -> Invoke:
    return cli_invoker()


@pytest.fixture
def ctx(cli: Invoke) -> Iterator[ServiceContext]:
    cli("db", "upgrade")
    settings = get_settings()
    context = build_context(settings, channel=channel_for(settings))
    add_merchant(context, A, "T1")
    add_sales(context, A, date(2026, 9, 18), [100_000, 7_777, 55])
    yield context
    context.db.dispose()


def test_every_format_to_a_private_file(cli: Invoke, ctx: ServiceContext,
                                        tmp_path: Path) -> None:
    for fmt in ("csv", "xlsx", "pdf", "json"):
        out = tmp_path / f"statement.{fmt}"
        done = cli("reports", "statement", "--merchant", A, "--from", DAY, "--to", DAY,
                   "--format", fmt, "--out", str(out))
        assert "商户对账单" in done.stderr and "3 rows" in done.stderr
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
    table = parse_csv((tmp_path / "statement.csv").read_bytes())
    assert table.totals[table.header.index("发生额")] == "1078.32"
    sheet = load_workbook(tmp_path / "statement.xlsx").worksheets[0]
    assert sheet.freeze_panes == "A2" and sheet.max_row == 5
    texts, embedded = pdf_text((tmp_path / "statement.pdf").read_bytes())
    assert "商户对账单" in texts[0] and all(embedded)
    body = json.loads((tmp_path / "statement.json").read_text(encoding="utf-8"))
    assert body["figures"]["closing"] == 107_832


def test_progress_bar_on_long_reports(cli: Invoke, ctx: ServiceContext, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_reports, "PROGRESS_ROWS_MIN", 1)
    done = cli("reports", "daily-summary", "--date", DAY, "--format", "xlsx", "--out",
               str(tmp_path / "day.xlsx"))
    assert "daily-summary → day.xlsx" in done.stderr  # the bar's description
    assert "1/1" in done.stderr


def test_standard_output_and_default_names(cli: Invoke, ctx: ServiceContext,
                                           monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    shown = cli("reports", "fee-analysis", "--from", DAY, "--to", DAY, "--format", "json",
                "--out", "-")
    assert json.loads(shown.stdout)["totals"]["captures"] == 3
    monkeypatch.chdir(tmp_path)
    cli("reports", "settlement", "--from", DAY, "--to", DAY, "--format", "csv")
    assert (tmp_path / f"settlement-all-{DAY}_{DAY}.csv").exists()


def test_refusals_are_one_line_and_exit_2(cli: Invoke, ctx: ServiceContext) -> None:
    assert "validation_failed" in cli("reports", "statement", "--format", "csv", "--out",
                                      "-", code=2).stderr  # which merchant?
    assert "not_found" in cli("reports", "statement", "--merchant", mid(9), code=2).stderr
    assert "validation_failed" in cli("reports", "settlement", "--from", "18/09/2026",
                                      code=2).stderr
    assert "validation_failed" in cli("reports", "settlement", "--format", "pdf", "--out",
                                      "-", code=2).stderr
    assert cli("reports", "nonsense", code=2).exit_code == 2
