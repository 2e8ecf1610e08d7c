"""Operators and merchants working the console in Chromium (fixtures: conftest.py here)."""

from __future__ import annotations

import re

from browsertools import (
    DEBIT,
    HUALIAN,
    KANGJIAN,
    LAOWANG,
    MERCHANT_USER,
    OPERATOR,
    Site,
    login,
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
    page.get_by_test_id("settlement-payout-link").click()
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
