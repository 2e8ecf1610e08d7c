"""Every console page renders for an operator and a merchant user; the transaction search
filters as the API does and exports CSV; a transaction shows its chain and its response
code in both languages; money is ¥1,234.56 and times are Asia/Shanghai."""

from __future__ import annotations

import csv
import io
import re

import pytest
from consoletools import ConsoleWorld, login, settle_and_send
from fastapi.testclient import TestClient
from jobtools import SALES_PAN, TxnType, pay

from autosettle.domain.money import Money
from autosettle.domain.transactions import TxnType as Kind
from autosettle.services import alerts, merchants, transactions
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.services.payments import CardInput, PaymentRequest, authorize

PAGES = ["/console/", "/console/merchants", "/console/terminals", "/console/transactions",
         "/console/settlements", "/console/payouts", "/console/alerts",
         "/console/maintenance", "/console/notices", "/console/reports"]
OPERATOR_PAGES = ["/console/calendar", "/console/jobs", "/console/audit"]


def _ids(html: str) -> list[str]:
    return re.findall(r'data-testid="txn-row" data-txn-id="([^"]+)"', html)


@pytest.mark.parametrize("username", ["ops", "shop1"])
def test_every_page_renders(console: TestClient, world: ConsoleWorld, ctx: ServiceContext,
                            username: str) -> None:
    settle_and_send(ctx, [world.m1, world.m2], 1_234_56)
    alerts.raise_alert(ctx, "warning", "test", "look at this", world.m1)
    login(console, username)
    for path in PAGES + (OPERATOR_PAGES if username == "ops" else []):
        answer = console.get(path)
        assert answer.status_code == 200, (path, answer.text[-500:])
        assert 'data-testid="error-banner"' not in answer.text, path
    detail = console.get(f"/console/merchants/{world.m1}")
    assert 'data-testid="accounts"' in detail.text
    masked = merchants.list_settlement_accounts(ctx, SYSTEM, world.m1)[0]
    assert masked.account_number_masked in detail.text  # masked, never in full
    assert f"62122602{world.m1[-8:]}7" not in detail.text
    for testid in ("fee-schedule", "cycle-costs", "balances", "merchant-terminals"):
        assert f'data-testid="{testid}"' in detail.text


def test_dashboard_shows_todays_figures(console: TestClient, world: ConsoleWorld,
                                        ctx: ServiceContext) -> None:
    pay(ctx, world.m1, TxnType.SALE, 1_234_56)
    pay(ctx, world.m2, TxnType.SALE, 10_00)
    login(console, "ops")
    page = console.get("/console/").text
    assert 'data-testid="chart-volume"' in page and "<svg" in page
    assert "10 ¥: ¥1,244.56" in page  # 10:00 Shanghai (02:00 UTC): both sales in one bar
    assert "¥1,244.56" in page and "100.00%" in page
    login(console, "shop1")
    page = console.get("/console/").text
    assert "10 ¥: ¥1,234.56" in page and "¥1,244.56" not in page


def test_search_filters_like_the_api(console: TestClient, world: ConsoleWorld,
                                     ctx: ServiceContext) -> None:
    first = pay(ctx, world.m1, TxnType.SALE, 12_34)
    pay(ctx, world.m1, TxnType.SALE, 56_78)
    other_card = pay(ctx, world.m1, TxnType.SALE, 12_34, pan="6222020200112340001")
    record = transactions.get(ctx, SYSTEM, first).record
    login(console, "ops")

    def found(query: str) -> set[str]:
        answer = console.get(f"/console/transactions?{query}")
        assert answer.status_code == 200, answer.text
        return set(_ids(answer.text))

    assert found("last4=5679&amount=12.34") == {first}
    assert found("amount=12.34") == {first, other_card}
    assert found(f"rrn={record.rrn}") == {first}
    assert found(f"auth_code={record.auth_code}") == {first}
    assert found(f"trace={int(record.stan)}&batch={int(record.batch_no)}") == {first}
    assert found("date_from=2026-09-18&date_to=2026-09-18&type=sale&status=approved") \
        == found("") and len(found("")) == 3
    assert found("date_from=2026-09-19") == set()
    assert found(f"merchant_id={world.m2}") == set()
    for bad in ("last4=12", "amount=abc", "amount=-1", "type=gift", "status=odd",
                "date_from=18.09.2026", "trace=1234567"):
        answer = console.get(f"/console/transactions?{bad}")
        assert answer.status_code == 400, bad
        assert 'data-testid="error-banner"' in answer.text


def test_search_pages_with_a_cursor(console: TestClient, world: ConsoleWorld,
                                    ctx: ServiceContext) -> None:
    made = {pay(ctx, world.m1, TxnType.SALE, 100 + n) for n in range(55)}
    login(console, "shop1")
    first = console.get("/console/transactions").text
    link = re.search(r'data-testid="next-page" href="([^"]+)"', first)
    assert link is not None
    second = console.get(link.group(1).replace("&amp;", "&")).text
    assert len(_ids(first)) == 50 and len(_ids(second)) == 5
    assert set(_ids(first)) | set(_ids(second)) == made


def test_csv_export(console: TestClient, world: ConsoleWorld, ctx: ServiceContext) -> None:
    mine = pay(ctx, world.m1, TxnType.SALE, 1_234_56)
    pay(ctx, world.m1, TxnType.SALE, 99)
    pay(ctx, world.m2, TxnType.SALE, 1_234_56)
    login(console, "shop1")
    answer = console.get("/console/transactions.csv?amount=1234.56")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(answer.text.lstrip("\ufeff"))))
    assert [(r["txn_id"], r["amount"], r["merchant_id"]) for r in rows] == [
        (mine, "1234.56", world.m1)]
    assert SALES_PAN not in answer.text


def test_transaction_chain_and_response_code(console: TestClient, world: ConsoleWorld,
                                             ctx: ServiceContext) -> None:
    sale = pay(ctx, world.m1, TxnType.SALE, 100_00)
    refund = pay(ctx, world.m1, TxnType.REFUND, 30_00, original=sale)
    void_sale = pay(ctx, world.m1, TxnType.SALE, 20_00)
    void = pay(ctx, world.m1, TxnType.VOID, original=void_sale)
    login(console, "shop1")
    for shown, chain in ((sale, [sale, refund]), (refund, [sale, refund]),
                         (void, [void_sale, void])):
        page = console.get(f"/console/transactions/{shown}").text
        assert re.findall(r'data-testid="chain-entry" data-txn-id="([^"]+)"', page) == chain
    page = console.get(f"/console/transactions/{sale}").text
    assert 'data-testid="response-zh">' in page and "data-testid=\"cashier-action\"" in page
    assert "¥100.00" in page and "2026-09-18 10:00:00" in page  # Asia/Shanghai
    declined = authorize(ctx, PaymentRequest(Kind.SALE, world.m1, f"ST{world.m1[-6:]}",
                                             Money(5_00), CardInput("6222020200112999905")))
    assert not declined.approved and declined.record is not None
    page = console.get(f"/console/transactions/{declined.record.txn_id}").text
    code = declined.response_code.value
    assert f"{code}</h2>" in page
    en = re.search(r'data-testid="response-en">([^<]+)<', page)
    zh = re.search(r'data-testid="response-zh">([^<]+)<', page)
    assert en and zh and en.group(1) != zh.group(1)


def test_language_switch_is_remembered(console: TestClient, world: ConsoleWorld) -> None:
    login(console, "shop1")
    assert "交易" in console.get("/console/transactions").text  # Chinese for merchants
    answer = console.get("/console/lang/en", headers={
        "referer": "http://testserver/console/transactions?last4=1234"},
        follow_redirects=False)
    assert answer.headers["location"] == "/console/transactions?last4=1234"
    assert ">Transactions<" in console.get("/console/transactions").text
    elsewhere = console.get("/console/lang/zh", headers={"referer": "https://evil.example/"},
                            follow_redirects=False)
    assert elsewhere.headers["location"] == "/console/"
    assert console.get("/console/lang/fr").status_code == 404
    login(console, "ops")
    assert "概览" in console.get("/console/").text  # the cookie wins over the role


def test_static_assets_ship_in_the_package(console: TestClient) -> None:
    htmx = console.get("/console/static/htmx.min.js")
    assert htmx.status_code == 200 and "htmx" in htmx.text[:200]
    assert console.get("/console/static/console.css").status_code == 200
    page = console.get("/console/login").text
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page


def test_htmx_search_answers_the_results_only(console: TestClient, world: ConsoleWorld,
                                              ctx: ServiceContext) -> None:
    sale = pay(ctx, world.m1, TxnType.SALE, 12_34)
    login(console, "shop1")
    page = console.get("/console/transactions?amount=12.34").text
    assert 'hx-get="/console/transactions"' in page and "<html" in page
    part = console.get("/console/transactions?amount=12.34", headers={"HX-Request": "true"})
    assert part.status_code == 200 and "<html" not in part.text
    assert _ids(part.text) == [sale]
    bad = console.get("/console/transactions?amount=abc", headers={"HX-Request": "true"})
    assert bad.status_code == 400 and "<html" not in bad.text
    assert 'data-testid="error-banner"' in bad.text  # swapped in place (htmx-config)


def test_statuses_and_types_read_in_the_users_language(
        console: TestClient, world: ConsoleWorld, ctx: ServiceContext) -> None:
    pay(ctx, world.m1, TxnType.SALE, 12_00)
    login(console, "shop1")  # merchant users read Chinese by default
    zh = console.get("/console/transactions").text
    row = zh[zh.index('data-testid="txn-row"'):]
    row = row[:row.index("</tr>")]
    assert "<td>消费</td>" in row and ">成功</span>" in row
    assert ">approved<" not in row and "<td>sale</td>" not in row
    console.get("/console/lang/en")
    en = console.get("/console/transactions").text
    assert "<td>sale</td>" in en and ">approved</span>" in en
