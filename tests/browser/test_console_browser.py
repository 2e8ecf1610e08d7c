"""Operators and merchants working the console in Chromium (fixtures: conftest.py here)."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from browsertools import (
    ARTIFACTS,
    DEBIT,
    HUALIAN,
    KANGJIAN,
    LAOWANG,
    MERCHANT_USER,
    OPERATOR,
    Site,
    login,
    publish,
    screenshot,
)
from playwright.sync_api import Page, expect

from autosettle.domain.ledger import Account, AccountType
from autosettle.domain.payouts import PayoutStatus


def _payout_status(site: Site, payout_id: str) -> PayoutStatus:
    with site.ctx.db.unit_of_work() as uow:
        payout = uow.settlement.payout(payout_id)
    assert payout is not None
    return payout.status


def _balances(site: Site, merchant_id: str) -> dict[str, int]:
    """The accounts a payout moves: the merchant's payable, clearing and the bank."""
    codes = (Account(AccountType.MERCHANT_PAYABLE, merchant_id).code,
             Account(AccountType.PAYOUT_CLEARING).code, Account(AccountType.BANK).code)
    with site.ctx.db.unit_of_work() as uow:
        return {code: uow.ledger.balance(code, "CNY") for code in codes}


def test_operator_logs_in_to_the_dashboard(page: Page, site: Site) -> None:
    login(page, site, OPERATOR)
    expect(page.get_by_test_id("chart-volume").locator("svg")).to_be_visible()
    expect(page.get_by_test_id("chart-count").locator("svg")).to_be_visible()
    expect(page.get_by_test_id("kpi-captured")).to_contain_text("¥")
    expect(page.get_by_test_id("top-declines")).to_be_visible()
    screenshot(page, site, "dashboard")
    page.get_by_test_id("logout").click()
    page.wait_for_url(re.compile(r".*/console/login.*"))
    page.goto(site.url("/console/"))
    page.wait_for_url(re.compile(r".*/console/login.*"))


def test_merchant_finds_a_sale_by_last4_and_amount_and_opens_its_chain(
        page: Page, site: Site) -> None:
    login(page, site, MERCHANT_USER[HUALIAN])
    expect(page.get_by_test_id("chart-volume").locator("svg")).to_be_visible()
    screenshot(page, site, "dashboard-merchant")
    page.goto(site.url("/console/transactions"))
    page.get_by_test_id("search-last4").fill(DEBIT[-4:])
    page.get_by_test_id("search-amount").fill(f"{site.sale_amount_minor / 100:.2f}")
    page.get_by_test_id("search-submit").click()
    rows = page.get_by_test_id("txn-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-txn-id", site.sale_id)
    expect(rows.first).to_contain_text("123.45")
    rows.first.get_by_role("link").first.click()
    page.wait_for_url(site.url(f"/console/transactions/{site.sale_id}"))
    expect(page.get_by_test_id("txn-amount")).to_contain_text("¥123.45")
    chain = page.get_by_test_id("chain-entry")
    expect(chain).to_have_count(2)  # the sale and its refund
    expect(page.get_by_test_id("txn-chain")).to_contain_text("23.45")
    expect(page.get_by_test_id("response-zh")).to_contain_text("成功")
    expect(page.get_by_test_id("response-en")).not_to_be_empty()
    screenshot(page, site, "transaction")


def test_operator_opens_a_settlement_and_confirms_its_payout(page: Page, site: Site) -> None:
    payout_id, batch_id = site.payouts[LAOWANG], site.batches[LAOWANG]
    before = _balances(site, LAOWANG)
    login(page, site, OPERATOR)
    page.goto(site.url("/console/settlements"))
    page.locator(f'[data-testid="settlement-row"] a[href$="/settlements/{batch_id}"]') \
        .first.click()
    page.wait_for_url(site.url(f"/console/settlements/{batch_id}"))
    expect(page.get_by_test_id("settlement-item")).to_have_count(3)  # Lao Wang's 3 sales
    expect(page.get_by_test_id("settlement-gross")).to_contain_text("¥76.00")
    screenshot(page, site, "settlement")
    page.get_by_test_id("settlement-payout-link").get_by_role("link").click()
    page.wait_for_url(site.url(f"/console/payouts/{payout_id}"))
    amount_text = page.get_by_test_id("payout-amount").inner_text()
    expect(page.get_by_test_id("payout-status")).to_contain_text("sent")
    page.get_by_test_id("payout-confirm").click()
    page.wait_for_url(site.url(f"/console/payouts/{payout_id}"))
    expect(page.get_by_test_id("payout-status")).to_contain_text("confirmed")
    expect(page.get_by_test_id("payout-confirm")).to_have_count(0)
    assert _payout_status(site, payout_id) is PayoutStatus.CONFIRMED
    with site.ctx.db.unit_of_work() as uow:
        payout = uow.settlement.payout(payout_id)
    assert payout is not None
    amount = payout.amount_minor
    assert f"{amount / 100:,.2f}" in amount_text
    after = _balances(site, LAOWANG)
    payable, clearing, bank = before  # the account codes
    assert after[clearing] == before[clearing] + amount  # clearing debited: released
    assert after[bank] == before[bank] - amount          # the bank credited: money left
    assert after[payable] == before[payable]


def test_another_merchants_pages_are_404(page: Page, site: Site) -> None:
    login(page, site, MERCHANT_USER[HUALIAN])
    for path in (f"/console/transactions/{site.other_merchant_txn}",
                 f"/console/merchants/{KANGJIAN}",
                 f"/console/payouts/{site.payouts[KANGJIAN]}",
                 f"/console/settlements/{site.batches[KANGJIAN]}"):
        response = page.goto(site.url(path))
        assert response is not None and response.status == 404, path
        expect(page.get_by_test_id("error-banner")).to_be_visible()
    response = page.goto(site.url(f"/console/transactions/{site.sale_id}"))
    assert response is not None and response.status == 200


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
        page: Page, site: Site) -> None:
    payout_id = site.payouts[KANGJIAN]
    before = _balances(site, KANGJIAN)
    login(page, site, OPERATOR)
    for form in ({}, {"csrf_token": "forged"}):
        response = page.request.post(site.url(f"/console/payouts/{payout_id}/confirm"),
                                     form=form, max_redirects=0)
        assert response.status == 403, form
    assert _payout_status(site, payout_id) is PayoutStatus.SENT
    assert _balances(site, KANGJIAN) == before
    page.goto(site.url(f"/console/payouts/{payout_id}"))
    expect(page.get_by_test_id("payout-status")).to_contain_text("sent")


def _owed(site: Site, merchant_id: str) -> int:
    """What the platform owes the merchant, from its ledger accounts (liabilities credit:
    unsettled + payable, less its debt): the statement's closing balance."""
    with site.ctx.db.unit_of_work() as uow:
        rows = uow.ledger.balances_for_merchant(merchant_id)
    kept = {AccountType.MERCHANT_UNSETTLED, AccountType.MERCHANT_PAYABLE,
            AccountType.MERCHANT_RECEIVABLE}
    return -sum(r.balance_minor for r in rows
                if Account.parse(r.account_code).type in kept and r.currency == "CNY")


def _fen(value: object) -> int:
    """A money cell or text (``774.40``, ``¥1,118.27``, ``-¥5.63``, 774.4) in fen."""
    text = str(value).replace("¥", "").replace(",", "").strip()
    return int((Decimal(text) * 100).to_integral_value())


def _csv_totals(path: Path) -> tuple[int, int, int]:
    """(sum of the movement rows, the total row, the closing balance) of a CSV statement."""
    rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    header = rows[0]
    amount_at = len(header) - 2  # 发生额, then 余额
    body = [r for r in rows[1:] if r and r[0][:2].isdigit()]
    total = next(r for r in rows if r and r[0] == "合计")
    closing = next(r for r in rows if r and "Closing balance" in r[0])
    return (sum(_fen(r[amount_at]) for r in body), _fen(total[amount_at]), _fen(closing[1]))


def _xlsx_totals(path: Path) -> tuple[int, int, int]:
    workbook = openpyxl.load_workbook(path)
    report = workbook.worksheets[0]
    assert report.freeze_panes == "A2"  # the header row stays
    rows = list(report.iter_rows(values_only=True))
    amount_at = len(rows[0]) - 2
    body = [r for r in rows[1:] if isinstance(r[0], datetime)]
    total = next(r for r in rows if r[0] == "合计")
    closing = next(r for ws in workbook.worksheets for r in ws.iter_rows(values_only=True)
                   if isinstance(r[0], str) and "Closing balance" in r[0])
    assert all(isinstance(r[amount_at], int | float) for r in body)  # typed cells
    return (sum(_fen(r[amount_at]) for r in body), _fen(total[amount_at]), _fen(closing[1]))


def _pdf_closing(path: Path) -> tuple[int, str]:
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout
    found = re.search(r"Closing balance:\s*(-?¥[\d,]+\.\d\d)", text)
    assert found is not None, text[:2000]
    return _fen(found.group(1).replace("¥", "")), text


def test_merchant_downloads_its_statement_in_each_format_and_the_totals_tie_to_the_ledger(
        page: Page, site: Site) -> None:
    if shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None:
        pytest.fail("poppler-utils is missing: .ci/run installs it")
    owed = _owed(site, HUALIAN)
    assert owed > 0
    login(page, site, MERCHANT_USER[HUALIAN])
    page.goto(site.url("/console/reports"))
    form = page.get_by_test_id("report-form-statement")
    form.locator('input[name="date_from"]').fill("2026-09-01")
    form.locator('input[name="date_to"]').fill("2026-09-15")
    saved: dict[str, Path] = {}
    for fmt in ("csv", "xlsx", "pdf"):
        with page.expect_download() as download:
            page.get_by_test_id(f"report-statement-{fmt}").click()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        saved[fmt] = ARTIFACTS / f"statement-{site.backend}.{fmt}"
        download.value.save_as(saved[fmt])
        assert download.value.suggested_filename.endswith(f".{fmt}")
    # Opening balance is zero (the first sale was on the 14th): every movement adds up to the
    # closing balance, which is what the ledger says the platform owes the merchant.
    for movements, total, closing in (_csv_totals(saved["csv"]), _xlsx_totals(saved["xlsx"])):
        assert movements == total == closing == owed
    closing, text = _pdf_closing(saved["pdf"])
    assert closing == owed
    assert "商户对账单" in text and HUALIAN in text
    assert re.search(r"1\s*/\s*\d", text)  # page numbers
    stem = ARTIFACTS / f"statement-pdf-{site.backend}"
    subprocess.run(["pdftoppm", "-r", "90", "-png", "-f", "1", "-l", "1",
                    "-singlefile", str(saved["pdf"]), str(stem)], check=True)
    publish(stem.with_suffix(".png"), site, "statement-pdf.png")
