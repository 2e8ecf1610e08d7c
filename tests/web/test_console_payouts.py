"""Operators work payouts from the console: confirm, fail, retry; each moves the ledger as
the payout service does (balances asserted on every account it moves), and is audited."""

from __future__ import annotations

from consoletools import ConsoleWorld, login, settle_and_send
from fastapi.testclient import TestClient
from jobtools import (
    BANK,
    PAYOUT_CLEARING,
    assert_balances,
    balances,
    fee_of,
    merchant_payable,
)

from autosettle.domain.payouts import PayoutStatus
from autosettle.services import console_views
from autosettle.services.context import SYSTEM, ServiceContext

SALE = 300_00
SURCHARGE = 200  # the default schedule's 2.00 per same-day payout
NET = SALE - fee_of(SALE) - SURCHARGE


def _status(ctx: ServiceContext, payout_id: str) -> PayoutStatus:
    return console_views.payout(ctx, SYSTEM, payout_id).status


def test_confirm_from_the_page(console: TestClient, world: ConsoleWorld,
                               ctx: ServiceContext) -> None:
    payout_id = settle_and_send(ctx, [world.m1], SALE)[world.m1]
    assert console_views.payout(ctx, SYSTEM, payout_id).amount_minor == NET
    sent = balances(ctx)
    assert sent[PAYOUT_CLEARING] == -NET
    _, csrf = login(console, "ops")
    page = console.get(f"/console/payouts/{payout_id}").text
    assert 'data-testid="payout-confirm"' in page and 'data-testid="payout-fail"' in page
    answer = console.post(f"/console/payouts/{payout_id}/confirm", data={"csrf_token": csrf},
                          follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/console/payouts/{payout_id}"
    assert _status(ctx, payout_id) is PayoutStatus.CONFIRMED
    confirmed = assert_balances(ctx, {PAYOUT_CLEARING: NET, BANK: -NET}, since=sent)
    again = console.post(f"/console/payouts/{payout_id}/confirm", data={"csrf_token": csrf})
    assert again.status_code == 200  # idempotent: the page again, nothing posted twice
    assert_balances(ctx, {}, since=confirmed)
    audit = console.get("/console/audit?action=payout.confirm").text
    assert "user:ops" in audit and payout_id in audit


def test_fail_then_retry(console: TestClient, world: ConsoleWorld,
                         ctx: ServiceContext) -> None:
    payout_id = settle_and_send(ctx, [world.m2], SALE)[world.m2]
    sent = balances(ctx)
    _, csrf = login(console, "ops")
    no_reason = console.post(f"/console/payouts/{payout_id}/fail", data={"csrf_token": csrf})
    assert no_reason.status_code == 400
    assert_balances(ctx, {}, since=sent)
    console.post(f"/console/payouts/{payout_id}/fail",
                 data={"csrf_token": csrf, "reason": "account closed"})
    assert _status(ctx, payout_id) is PayoutStatus.FAILED
    failed = assert_balances(ctx, {PAYOUT_CLEARING: NET, merchant_payable(world.m2): -NET},
                             since=sent)
    page = console.get(f"/console/payouts/{payout_id}").text
    assert "account closed" in page and 'data-testid="payout-retry"' in page
    assert "payout_failed" in console.get("/console/alerts").text
    confirm = console.post(f"/console/payouts/{payout_id}/confirm", data={"csrf_token": csrf})
    assert confirm.status_code == 409  # a failed payout is not confirmed
    assert_balances(ctx, {}, since=failed)
    retried = console.post(f"/console/payouts/{payout_id}/retry", data={"csrf_token": csrf},
                           follow_redirects=False)
    assert retried.status_code == 303
    assert _status(ctx, payout_id) is PayoutStatus.PENDING
    assert_balances(ctx, {}, since=failed)  # money leaves with the next payout file


def test_unknown_payout_is_404(console: TestClient, world: ConsoleWorld) -> None:
    _, csrf = login(console, "ops")
    assert console.get("/console/payouts/nosuchpayout").status_code == 404
    answer = console.post("/console/payouts/nosuchpayout/confirm", data={"csrf_token": csrf})
    assert answer.status_code == 404
