"""An operator works a day's reconciliation in Chromium (fixtures: conftest.py here): the
demo's files for the site's Monday (the issuer simulator's clearing file with planted faults)
and Tuesday (its clearing file and the bank's answer to the payout file), imported and
reconciled through the service as ``make run`` does; then the summary, the queue and its
owner filter, a discrepancy assigned and resolved by an adjustment (each ledger balance
asserted), its history, closing the date (refused while items are open), and merchant users
kept out (docs/console.md, "Reconciliation")."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from browsertools import MERCHANT_USER, OPERATOR, RUN_DATE, Site, login, screenshot
from jobtools import assert_balances, balances, ledger_balanced
from playwright.sync_api import Page, expect

from autosettle.domain.ledger import Account, AccountType
from autosettle.services import recon
from autosettle.services.context import SYSTEM
from autosettle.simulators.demo_recon import reconcile_demo_day

CHANNEL = "issuer-sim"
MONDAY = date(2026, 9, 14)
RECEIVABLE = Account(AccountType.CHANNEL_RECEIVABLE).code
ADJUSTMENTS = Account(AccountType.ADJUSTMENTS).code
OWNER = "recon-lee"


@pytest.fixture(scope="module")
def reconciled(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Site:
    """Monday's and Tuesday's files of the demo (written, imported, matched once)."""
    inbox: Path = tmp_path_factory.mktemp(f"recon-{site.backend}")
    for on in (MONDAY, RUN_DATE):
        reconcile_demo_day(site.ctx, on, inbox)
    found = recon.list_discrepancies(site.ctx, SYSTEM, channel=CHANNEL, on=MONDAY)
    assert {d.klass for d in found} >= {"ours_only", "theirs_only", "fee_mismatch"}, found
    return site


def _open(site: Site, on: date = MONDAY) -> list[recon.Discrepancy]:
    return recon.list_discrepancies(site.ctx, SYSTEM, channel=CHANNEL, on=on, state="open")


def _day_state(site: Site, on: date) -> str:
    (day,) = [d for d in recon.day_states(site.ctx, SYSTEM)
              if d["channel"] == CHANNEL and d["business_date"] == on.isoformat()]
    return str(day["state"])


def test_operator_works_the_day_from_summary_to_closed(page: Page, reconciled: Site) -> None:
    site = reconciled
    ctx = site.ctx
    login(page, site, OPERATOR)
    page.get_by_test_id("nav-recon").click()
    page.wait_for_url(re.compile(r".*/console/recon$"))
    page.goto(site.url(f"/console/recon?date={MONDAY}&channel={CHANNEL}"))
    day = page.locator(f'[data-testid="recon-day"][data-channel="{CHANNEL}"]')
    expect(day).to_have_count(1)
    expect(day.get_by_test_id("recon-open-ours_only")).to_have_text("1")
    expect(page.get_by_test_id("recon-days")).to_contain_text(MONDAY.isoformat())
    screenshot(page, site, "recon-summary")

    # the queue: from the summary's count of open "ours only" items
    day.get_by_test_id(f"recon-count-{CHANNEL}-ours_only-open").click()
    rows = page.get_by_test_id("recon-queue-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-klass", "ours_only")
    ours_id = int(rows.first.get_attribute("data-discrepancy-id") or 0)
    page.goto(site.url(f"/console/recon/discrepancies?date={MONDAY}&channel={CHANNEL}"))
    expect(rows).to_have_count(len(_open(site)))
    screenshot(page, site, "recon-queue")

    # open it, assign it, see the planned entry
    page.locator(f'a[href$="/recon/discrepancies/{ours_id}"]').first.click()
    page.wait_for_url(site.url(f"/console/recon/discrepancies/{ours_id}"))
    expect(page.get_by_test_id("recon-discrepancy-title")).to_contain_text("ours only")
    expect(page.get_by_test_id("recon-adjust-code")).to_have_text(
        "recon.adjustment.channel_short")
    expect(page.get_by_test_id("recon-refund-form")).to_have_count(0)
    page.get_by_test_id("recon-owner").fill(OWNER)
    page.get_by_test_id("recon-assign").click()
    expect(page.get_by_test_id("recon-discrepancy-owner")).to_have_text(OWNER)
    screenshot(page, site, "recon-discrepancy")

    # the owner filter of the queue: exactly the one assigned
    page.goto(site.url("/console/recon/discrepancies"))
    page.get_by_test_id("recon-queue-filter").locator('input[name="owner"]').fill(OWNER)
    page.get_by_test_id("recon-queue-filter").get_by_role("button").click()
    page.wait_for_url(re.compile(rf".*owner={OWNER}.*"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-discrepancy-id", str(ours_id))
    screenshot(page, site, "recon-queue-owner")

    # resolve it by an adjustment: the channel never paid our amount
    d = recon.get_discrepancy(ctx, SYSTEM, ours_id)
    assert d.our_amount_minor and d.our_amount_minor > 0
    before = balances(ctx)
    page.goto(site.url(f"/console/recon/discrepancies/{ours_id}"))
    page.get_by_test_id("recon-adjust-reason").fill("channel confirmed it never cleared")
    page.get_by_test_id("recon-adjust").click()
    expect(page.get_by_test_id("recon-discrepancy-resolution")).to_have_text("adjusted")
    expect(page.get_by_test_id("recon-actions")).to_have_count(0)
    assert_balances(ctx, {RECEIVABLE: -d.our_amount_minor, ADJUSTMENTS: d.our_amount_minor},
                    since=before)
    assert ledger_balanced(ctx)
    entry = recon.get_discrepancy(ctx, SYSTEM, ours_id).entry_key
    assert entry
    expect(page.get_by_test_id("recon-discrepancy-entry")).to_have_text(entry)
    history = page.get_by_test_id("recon-history-row")
    expect(history).to_have_count(2)
    expect(history.nth(0)).to_contain_text("recon.discrepancy.assign")
    expect(history.nth(0)).to_contain_text(OWNER)
    expect(history.nth(1)).to_contain_text("recon.discrepancy.adjust")
    screenshot(page, site, "recon-discrepancy-resolved")
    page.get_by_test_id("lang-zh").click()   # the same page in Chinese
    expect(page.get_by_test_id("recon-discrepancy-resolution")).to_have_text("已调账")
    expect(page.get_by_test_id("recon-history")).to_contain_text("对账发现")
    screenshot(page, site, "recon-discrepancy-resolved-zh")
    page.get_by_test_id("lang-en").click()
    expect(page.get_by_test_id("recon-discrepancy-resolution")).to_have_text("adjusted")

    # closing the date with items open is refused and changes nothing
    left = _open(site)
    assert left
    after_adjustment = balances(ctx)
    page.goto(site.url(f"/console/recon?date={MONDAY}&channel={CHANNEL}"))
    page.get_by_test_id("recon-close").click()
    expect(page.get_by_test_id("recon-close-refused")).to_contain_text(
        f"{len(left)} open discrepanc")
    assert _day_state(site, MONDAY) != "closed"
    screenshot(page, site, "recon-close-refused")

    # the rest accepted, one by one through their pages; then the date closes
    for other in left:
        page.goto(site.url(f"/console/recon/discrepancies/{other.discrepancy_id}"))
        page.get_by_test_id("recon-accept-reason").fill("checked with the channel")
        page.get_by_test_id("recon-accept").click()
        expect(page.get_by_test_id("recon-discrepancy-resolution")).to_have_text("accepted")
    assert _open(site) == []
    assert_balances(ctx, {}, since=after_adjustment)   # accepting moves no money
    page.goto(site.url(f"/console/recon?date={MONDAY}&channel={CHANNEL}"))
    page.get_by_test_id("recon-close").click()
    page.wait_for_url(re.compile(r".*/console/recon\?date=.*"))
    expect(day.get_by_test_id("recon-day-state")).to_contain_text("closed")
    expect(page.get_by_test_id("recon-close")).to_have_count(0)
    assert _day_state(site, MONDAY) == "closed"
    screenshot(page, site, "recon-closed")
    assert ledger_balanced(ctx)


def test_merchant_users_cannot_reach_the_recon_pages(page: Page, reconciled: Site) -> None:
    site = reconciled
    username = next(iter(MERCHANT_USER.values()))
    any_id = recon.list_discrepancies(site.ctx, SYSTEM, limit=1)[0].discrepancy_id
    login(page, site, username)
    expect(page.get_by_test_id("nav-recon")).to_have_count(0)
    for path in ("/console/recon", f"/console/recon?date={MONDAY}",
                 f"/console/recon/summary.csv?date={MONDAY}", "/console/recon/discrepancies",
                 f"/console/recon/discrepancies?owner={OWNER}",
                 f"/console/recon/discrepancies/{any_id}"):
        answer = page.goto(site.url(path))
        assert answer is not None and answer.status in (403, 404), (path, answer.status)
    screenshot(page, site, "recon-merchant-404")
