"""``GET /v1/reports/{name}`` end to end: formats, headers, isolation and typed refusals."""

from __future__ import annotations

import io
from datetime import date

import pytest
from apitools import MID_A, MID_B, TID_A1, World, assert_error, row_counts
from fastapi.testclient import TestClient
from jobtools import clock_at, shanghai
from openpyxl import load_workbook
from reporttools import parse_csv, pdf_text

from autosettle.domain.money import Money
from autosettle.domain.transactions import TxnType
from autosettle.services import payments
from autosettle.services.context import ServiceContext
from autosettle.services.payments import CardInput, PaymentRequest
from autosettle.simulators.issuer import IssuerSimulator

DAY = date(2026, 9, 18)
PAN = "6222020200112345679"


@pytest.fixture
def sales(ctx: ServiceContext, world: World, sim: IssuerSimulator) -> World:
    sim.add_card(PAN, balance_minor=10**9, pin=None)
    with clock_at(ctx, shanghai(2026, 9, 18, 11)):
        for amount in (12_345, 67_890):
            result = payments.authorize(ctx, PaymentRequest(
                TxnType.SALE, MID_A, TID_A1, Money(amount), CardInput(PAN), None))
            assert result.approved
    return world


def test_every_format_of_the_daily_summary(client: TestClient, sales: World) -> None:
    base = f"/v1/reports/daily-summary?date={DAY}&merchant_id={MID_A}"
    answer = client.get(f"{base}&format=csv", headers=sales.merchant_a)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    table = parse_csv(answer.content)
    assert table.totals[table.header.index("交易金额")] == "802.35"
    xlsx = client.get(f"{base}&format=xlsx", headers=sales.merchant_a)
    assert xlsx.status_code == 200
    sheet = load_workbook(io.BytesIO(xlsx.content)).worksheets[0]
    assert sheet.freeze_panes == "A2"
    pdf = client.get(f"{base}&format=pdf", headers=sales.merchant_a)
    assert pdf.headers["content-type"] == "application/pdf"
    texts, embedded = pdf_text(pdf.content)
    assert "交易日汇总" in texts[0] and all(embedded)
    body = client.get(f"{base}&format=json", headers=sales.merchant_a).json()
    assert body["totals"]["amount"] == 80_235 and body["merchant"]["merchant_id"] == MID_A


def test_a_merchant_key_defaults_to_its_own_merchant(client: TestClient,
                                                     sales: World) -> None:
    body = client.get(f"/v1/reports/statement?date_from={DAY}&date_to={DAY}",
                      headers=sales.merchant_a).json()
    assert body["merchant"]["merchant_id"] == MID_A
    assert body["figures"]["closing"] == 80_235 and body["row_count"] == 2


@pytest.mark.parametrize("name", ["daily-summary", "settlement", "statement", "fee-analysis",
                                  "terminal-health"])
def test_another_merchants_report_is_not_found(client: TestClient, sales: World,
                                               name: str) -> None:
    before = row_counts(client.app.state.ctx)  # type: ignore[attr-defined]
    for fmt in ("csv", "pdf"):
        answer = client.get(f"/v1/reports/{name}?merchant_id={MID_A}&format={fmt}",
                            headers=sales.merchant_b)
        assert_error(answer, 404, "not_found")
    assert_error(client.get(f"/v1/reports/{name}", headers=sales.terminal_a1), 404,
                 "not_found")
    assert row_counts(client.app.state.ctx) == before  # type: ignore[attr-defined]


@pytest.mark.parametrize(("query", "status", "code"), [
    ("/v1/reports/nonsense", 422, "validation_failed"),
    ("/v1/reports/settlement?format=doc", 422, "validation_failed"),
    ("/v1/reports/settlement?date_from=2026-13-01", 422, "validation_failed"),
    ("/v1/reports/settlement?date_from=2026-09-20&date_to=2026-09-18", 422,
     "validation_failed"),
    ("/v1/reports/settlement?date_from=2024-01-01&date_to=2026-01-01", 422,
     "validation_failed"),
    ("/v1/reports/statement?date_from=2026-09-18", 422, "validation_failed"),
    (f"/v1/reports/statement?merchant_id={MID_B[:-1]}", 422, "validation_failed"),
    ("/v1/reports/statement?merchant_id=898310099999999", 404, "not_found"),
    ("/v1/reports/settlement?date_to=9999-12-31", 422, "date_out_of_range"),
    ("/v1/reports/daily-summary?date=0001-01-01", 422, "date_out_of_range"),
])
def test_bad_parameters_are_typed_refusals(client: TestClient, world: World, query: str,
                                           status: int, code: str) -> None:
    assert_error(client.get(query, headers=world.operator), status, code)


def test_declared_in_openapi(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/v1/reports/{name}"]["get"]
    content = operation["responses"]["200"]["content"]
    assert {"text/csv", "application/pdf", "application/json"} <= set(content)
    assert {"401", "404", "422"} <= set(operation["responses"])
