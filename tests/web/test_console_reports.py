"""The console's report downloads are the report service's reports (the ones the API and
the command line give), in CSV, XLSX and PDF, scoped like every other page."""

from __future__ import annotations

import pytest
from consoletools import ConsoleWorld, login, settle_and_send
from fastapi.testclient import TestClient

from autosettle.services.context import ServiceContext

PERIOD = "date_from=2026-09-01&date_to=2026-09-18"


@pytest.mark.parametrize(("fmt", "magic"), [("csv", b"\xef\xbb\xbf"), ("xlsx", b"PK"),
                                        ("pdf", b"%PDF")])
def test_statement_downloads(console: TestClient, world: ConsoleWorld, ctx: ServiceContext,
                             fmt: str, magic: bytes) -> None:
    settle_and_send(ctx, [world.m1, world.m2], 300_00)
    login(console, "shop1")
    page = console.get("/console/reports").text
    assert f'data-testid="report-statement-{fmt}"' in page
    mine = console.get(f"/console/reports/statement.{fmt}?{PERIOD}")
    assert mine.status_code == 200, mine.text[:500]
    assert mine.content.startswith(magic)
    assert world.m1 in mine.headers["content-disposition"]
    theirs = console.get(f"/console/reports/statement.{fmt}?{PERIOD}&merchant_id={world.m2}")
    assert theirs.status_code == 404


def test_unknown_reports_and_formats_are_404(console: TestClient, world: ConsoleWorld) -> None:
    login(console, "ops")
    for path in ("/console/reports/nothing.csv", "/console/reports/statement.doc",
                 "/console/reports/statement.json", "/console/reports/statement"):
        assert console.get(path).status_code == 404, path
    daily = console.get("/console/reports/daily-summary.csv?date=2026-09-18")
    assert daily.status_code == 200 and daily.text.startswith("\ufeff")
