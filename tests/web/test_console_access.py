"""Who sees what in the console: a merchant user sees its own merchant only (another
merchant's page of any kind is a 404, as in the API), operator pages are a 404 for it,
its operator actions a 403; a POST without the session's CSRF token is refused with 403
and changes nothing."""

from __future__ import annotations

import re

import pytest
from consoletools import ConsoleWorld, login, settle_and_send
from fastapi.testclient import TestClient
from jobtools import TxnType, assert_balances, balances, pay, tid

from autosettle.domain.payouts import PayoutStatus
from autosettle.services import console_views, maintenance
from autosettle.services.context import SYSTEM, ServiceContext


def _detail_pages(ctx: ServiceContext, merchant_id: str) -> list[str]:
    """One page of every detail kind about ``merchant_id``."""
    txn = pay(ctx, merchant_id, TxnType.SALE, 100_00)
    batch = console_views.batches(ctx, SYSTEM, merchant_id, None, None, 1)
    pages = [f"/console/merchants/{merchant_id}",
             f"/console/terminals/{merchant_id}:{tid(merchant_id)}",
             f"/console/transactions/{txn}"]
    if batch:
        pages.append(f"/console/settlements/{batch[0].batch_id}")
    found = console_views.payouts(ctx, SYSTEM, merchant_id, None, None, 1).items
    if found:
        pages.append(f"/console/payouts/{found[0].payout_id}")
    return pages


def test_another_merchants_pages_are_404(console: TestClient, world: ConsoleWorld,
                                         ctx: ServiceContext) -> None:
    settle_and_send(ctx, [world.m1, world.m2], 300_00)
    theirs = _detail_pages(ctx, world.m2)
    ours = _detail_pages(ctx, world.m1)
    assert len(theirs) == len(ours) == 5  # merchant, terminal, transaction, batch, payout
    login(console, "shop1")
    for path in ours:
        assert console.get(path).status_code == 200, path
    for path in theirs:
        answer = console.get(path)
        assert answer.status_code == 404, path
        assert 'data-testid="error-banner"' in answer.text
        assert world.m2 not in answer.text.replace(path, "")
    # the same goes for lists filtered on the other merchant
    for path in [f"/console/transactions?merchant_id={world.m2}",
                 f"/console/settlements?merchant_id={world.m2}",
                 f"/console/payouts?merchant_id={world.m2}",
                 f"/console/terminals?merchant_id={world.m2}",
                 f"/console/alerts?merchant_id={world.m2}",
                 f"/console/transactions.csv?merchant_id={world.m2}"]:
        assert console.get(path).status_code == 404, path
    # a terminal id alone is looked up in the user's own merchant
    assert console.get(f"/console/terminals/{tid(world.m2)}").status_code == 404
    assert console.get(f"/console/terminals/{tid(world.m1)}").status_code == 200


def test_lists_show_only_the_merchants_own(console: TestClient, world: ConsoleWorld,
                                           ctx: ServiceContext) -> None:
    settle_and_send(ctx, [world.m1, world.m2], 300_00)
    login(console, "shop1")
    for path in ["/console/merchants", "/console/terminals", "/console/transactions",
                 "/console/settlements", "/console/payouts", "/console/",
                 "/console/transactions.csv"]:
        text = console.get(path).text
        assert world.m1 in text, path
        assert world.m2 not in text, path


@pytest.mark.parametrize("path", ["/console/audit", "/console/calendar", "/console/jobs"])
def test_operator_pages_are_404_for_merchant_users(console: TestClient, world: ConsoleWorld,
                                                   path: str) -> None:
    login(console, "shop1")
    assert console.get(path).status_code == 404
    login(console, "ops")
    assert console.get(path).status_code == 200


def test_merchant_users_cannot_work_payouts(console: TestClient, world: ConsoleWorld,
                                           ctx: ServiceContext) -> None:
    ids = settle_and_send(ctx, [world.m1], 300_00)
    before = balances(ctx)
    _, csrf = login(console, "shop1")
    page = console.get(f"/console/payouts/{ids[world.m1]}")
    assert 'data-testid="payout-confirm"' not in page.text
    answer = console.post(f"/console/payouts/{ids[world.m1]}/confirm",
                          data={"csrf_token": csrf})
    assert answer.status_code == 403
    assert console_views.payout(ctx, SYSTEM, ids[world.m1]).status is PayoutStatus.SENT
    assert_balances(ctx, {}, since=before)


@pytest.mark.parametrize("action", ["confirm", "fail", "retry"])
def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
        console: TestClient, world: ConsoleWorld, ctx: ServiceContext, action: str) -> None:
    ids = settle_and_send(ctx, [world.m1], 300_00)
    before = balances(ctx)
    _, csrf = login(console, "ops")
    path = f"/console/payouts/{ids[world.m1]}/{action}"
    for data in ({"reason": "closed"}, {"reason": "closed", "csrf_token": "forged"},
                 {"reason": "closed", "csrf_token": csrf + "x"}):
        answer = console.post(path, data=data)
        assert answer.status_code == 403
        assert 'data-testid="error-banner"' in answer.text
    assert console_views.payout(ctx, SYSTEM, ids[world.m1]).status is PayoutStatus.SENT
    assert_balances(ctx, {}, since=before)
    other = TestClient(console.app)  # a token is bound to its own session
    _, other_csrf = login(other, "ops")
    assert console.post(path, data={"reason": "x", "csrf_token": other_csrf}).status_code \
        == 403
    assert console_views.payout(ctx, SYSTEM, ids[world.m1]).status is PayoutStatus.SENT


def test_forms_refused_without_token_announce_nothing(console: TestClient,
                                                      world: ConsoleWorld,
                                                      ctx: ServiceContext) -> None:
    login(console, "ops")
    answer = console.post("/console/maintenance", data={
        "starts_at": "2026-09-20T01:00", "ends_at": "2026-09-20T03:00", "note": "upgrade"})
    assert answer.status_code == 403
    assert maintenance.windows(ctx) == []
    assert console.post("/console/calendar", data={
        "day": "2026-10-09", "kind": "closure", "note": "x"}).status_code == 403
    assert maintenance.list_calendar_overrides(ctx, SYSTEM) == []


def test_the_htmx_header_carries_the_token(console: TestClient, world: ConsoleWorld,
                                           ctx: ServiceContext) -> None:
    _, csrf = login(console, "ops")
    page = console.get("/console/")
    assert re.search(r"hx-headers='\{\"X-CSRF-Token\": \"" + re.escape(csrf), page.text)
    answer = console.post("/console/calendar", data={
        "day": "2026-10-09", "kind": "closure", "note": "bank closed"},
        headers={"X-CSRF-Token": csrf}, follow_redirects=False)
    assert answer.status_code == 303
    assert [o.note for o in maintenance.list_calendar_overrides(ctx, SYSTEM)] == [
        "bank closed"]


def test_without_a_session_nothing_opens(console: TestClient, world: ConsoleWorld,
                                         ctx: ServiceContext) -> None:
    ids = settle_and_send(ctx, [world.m1], 300_00)
    for path in ["/console/merchants", "/console/transactions.csv", "/console/audit",
                 f"/console/payouts/{ids[world.m1]}"]:
        answer = console.get(path, follow_redirects=False)
        assert answer.status_code == 303 and "/console/login" in answer.headers["location"]
    answer = console.post(f"/console/payouts/{ids[world.m1]}/confirm", data={})
    assert answer.status_code == 403
    assert console_views.payout(ctx, SYSTEM, ids[world.m1]).status is PayoutStatus.SENT
