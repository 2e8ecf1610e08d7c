"""Helpers of the console tests: a world of two merchants with a user each and an operator,
logging in through the real form, and reading the CSRF token off a page."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from fastapi.testclient import TestClient
from jobtools import add_merchant, mid, pay

from autosettle.domain.console_users import UserRole
from autosettle.domain.transactions import TxnType
from autosettle.services import console_views, payouts, settlement, users
from autosettle.services.context import SYSTEM, ServiceContext

PASSWORD = "correct horse battery"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class ConsoleWorld:
    m1: str
    m2: str


def build_console_world(ctx: ServiceContext) -> ConsoleWorld:
    """Merchants ``m1`` and ``m2`` on D+0 (a verified account and a terminal each), the operator
    ``ops``, and the merchant users ``shop1`` (of m1) and ``shop2`` (of m2)."""
    m1, m2 = mid(1), mid(2)
    add_merchant(ctx, m1, cycle="D0")
    add_merchant(ctx, m2, cycle="D0")
    users.create_user(ctx, SYSTEM, users.NewUser("ops", PASSWORD, UserRole.OPERATOR))
    users.create_user(ctx, SYSTEM, users.NewUser("shop1", PASSWORD, UserRole.MERCHANT, m1))
    users.create_user(ctx, SYSTEM, users.NewUser("shop2", PASSWORD, UserRole.MERCHANT, m2))
    return ConsoleWorld(m1, m2)


def csrf_of(html: str) -> str:
    found = CSRF_FIELD.search(html)
    assert found, "no csrf_token field on the page"
    return found.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD) -> tuple[int, str]:
    """Log in through the form; (status of the answer, the page's CSRF token or '')."""
    form = client.get("/console/login")
    assert form.status_code == 200
    answer = client.post("/console/login", data={
        "username": username, "password": password, "csrf_token": csrf_of(form.text)},
        follow_redirects=False)
    if answer.status_code != 303:
        return answer.status_code, ""
    page = client.get("/console/")
    assert page.status_code == 200, page.text
    return 303, csrf_of(page.text)


def settle_and_send(ctx: ServiceContext, merchant_ids: list[str], fen: int) -> dict[str, str]:
    """A sale of ``fen`` at each merchant (on D+0) settled the same day and sent in the
    day's payout file: merchant id → its payout id (status ``sent``)."""
    for merchant_id in merchant_ids:
        pay(ctx, merchant_id, TxnType.SALE, fen)
    day = date(2026, 9, 18)
    settlement.settle(ctx, day, settlement.SAME_DAY)
    payouts.export_payouts(ctx, day)
    page = console_views.payouts(ctx, SYSTEM, None, None, None, 100)
    return {p.merchant_id: p.payout_id for p in page.items}
