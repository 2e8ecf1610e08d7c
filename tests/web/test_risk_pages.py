"""The console's risk pages (issue 13 §6; docs/console.md): the merchant's limits, usage,
pre-registrations and decisions; the operator's review queue, flagged merchant-days and rule
editor. Real forms with the session's CSRF token, on SQLite and PostgreSQL; the services'
state and the ledger checked after each change."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from consoletools import ConsoleWorld, login
from fastapi.testclient import TestClient
from jobtools import (
    CHANNEL_RECEIVABLE,
    SALES_PAN,
    assert_balances,
    balances,
    ledger_balanced,
    merchant_unsettled,
    tid,
)

from autosettle.domain.money import Money
from autosettle.domain.response_codes import ResponseCode
from autosettle.domain.risk_records import ScoreRecord
from autosettle.domain.transactions import TxnType
from autosettle.services import console_views, payments, risk, risk_scoring
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.simulators.issuer import IssuerSimulator

TODAY = date(2026, 9, 18)  # the test clock: 2026-09-18 10:00 in Shanghai


def attempt(ctx: ServiceContext, merchant_id: str, fen: int) -> payments.PaymentResult:
    """A debit sale at the merchant's terminal through the payment service (risk included)."""
    channel = ctx.channel
    assert isinstance(channel, IssuerSimulator)
    channel.add_card(SALES_PAN, balance_minor=10**12, pin=None)
    return payments.authorize(ctx, payments.PaymentRequest(
        TxnType.SALE, merchant_id, tid(merchant_id), Money(fen),
        payments.CardInput(SALES_PAN)))


def txn_of(result: payments.PaymentResult) -> str:
    assert result.record is not None
    return result.record.txn_id


def merchant_rule(ctx: ServiceContext, merchant_id: str, rule_id: str, fen: int,
                  action: str) -> None:
    risk.put_rule(ctx, SYSTEM, rule_id, risk.RuleInput(
        "single_max", "merchant", action, {"amount_minor": fen}, merchant_id))


def held(ctx: ServiceContext, merchant_id: str, txn_id: str) -> bool:
    found = risk.decision_of(ctx, SYSTEM, merchant_id, txn_id)
    assert found is not None
    return found.held


def rows(html: str, testid: str) -> list[str]:
    return re.findall(rf'data-testid="{testid}"[^>]*', html)


# -- the merchant's page ------------------------------------------------------------------------

def test_merchant_sees_its_limits_usage_and_why_a_sale_was_declined(
        ctx: ServiceContext, console: TestClient, world: ConsoleWorld) -> None:
    merchant_rule(ctx, world.m1, "m1-max", 100_000, "decline")
    for period, fen in (("day", 5_000_000), ("month", 90_000_000)):
        risk.put_rule(ctx, SYSTEM, f"m1-{period}", risk.RuleInput(
            "cumulative", "merchant", "decline",
            {"subject": "merchant", "period": period, "amount_minor": fen}, world.m1))
    approved = attempt(ctx, world.m1, 40_000)
    declined = attempt(ctx, world.m1, 100_001)
    assert approved.approved and declined.response_code is ResponseCode.EXCEEDS_AMOUNT_LIMIT
    assert login(console, "shop1")[0] == 303
    page = console.get("/console/risk")
    assert page.status_code == 200, page.text
    assert 'data-testid="nav-risk"' in page.text
    assert rows(page.text, "risk-limit"), "no limits shown"
    assert 'data-rule="m1-max@1"' in page.text
    # today's and this month's usage against the cumulative limits: the approved sale
    for period, limit in (("day", "¥50,000.00"), ("month", "¥900,000.00")):
        (row,) = re.findall(rf'data-rule="m1-{period}@1">(.*?)</tr>', page.text, re.S)
        assert limit in row and "¥400.00" in row, row
    decision = rows(page.text, "risk-decision")
    assert len(decision) == 1 and f'data-txn-id="{txn_of(declined)}"' in decision[0]
    assert f'href="/console/transactions/{txn_of(declined)}"' in page.text
    assert "m1-max@1" in page.text
    detail = console.get(f"/console/transactions/{txn_of(declined)}")
    assert detail.status_code == 200
    assert 'data-testid="txn-risk"' in detail.text and "m1-max@1" in detail.text
    plain = console.get(f"/console/transactions/{txn_of(approved)}")
    assert plain.status_code == 200 and 'data-testid="txn-risk"' not in plain.text


def test_another_merchants_risk_is_a_404_and_operator_pages_too(
        ctx: ServiceContext, console: TestClient, world: ConsoleWorld) -> None:
    merchant_rule(ctx, world.m1, "m1-max", 100_000, "review")
    on_review = txn_of(attempt(ctx, world.m1, 200_000))
    theirs = risk.preregister(ctx, SYSTEM, world.m1, risk.NewPreregistration(
        100_000, datetime(2026, 9, 18, 2, tzinfo=UTC), datetime(2026, 9, 18, 12, tzinfo=UTC)))
    _, csrf = login(console, "shop2")
    assert console.get(f"/console/risk?merchant_id={world.m1}").status_code == 404
    assert console.get(f"/console/transactions/{on_review}").status_code == 404
    own = console.get("/console/risk")
    assert own.status_code == 200 and on_review not in own.text
    for path in ("/console/risk/review", "/console/risk/flagged", "/console/risk/rules"):
        assert console.get(path).status_code == 404, path
    before = risk.list_rules(ctx, SYSTEM, include_inactive=True)
    for path in (f"/console/risk/review/{on_review}/release",
                 f"/console/risk/review/{on_review}/refund",
                 "/console/risk/rules/m1-max/deactivate",
                 f"/console/risk/flagged/{world.m1}/{TODAY}/release"):
        assert console.post(path, data={"csrf_token": csrf}).status_code == 404, path
    assert console.post("/console/risk/preregistrations", data={
        "csrf_token": csrf, "merchant_id": world.m1, "amount": "100.00",
        "valid_from": "2026-09-18T10:00", "valid_to": "2026-09-18T20:00"}).status_code == 404
    assert console.post(f"/console/risk/preregistrations/{theirs.prereg_id}/cancel",
                        data={"csrf_token": csrf}).status_code == 404
    assert risk.list_preregistrations(ctx, SYSTEM, world.m1) == [theirs]
    assert risk.list_rules(ctx, SYSTEM, include_inactive=True) == before
    assert held(ctx, world.m1, on_review)


def test_a_pre_registration_through_the_form(
        ctx: ServiceContext, console: TestClient, world: ConsoleWorld) -> None:
    _, csrf = login(console, "shop1")
    form = {"amount": "¥80,000.50", "valid_from": "2026-09-18T10:00",
            "valid_to": "2026-09-18T22:00", "terminal_id": tid(world.m1),
            "card_last4": SALES_PAN[-4:], "note": "wedding banquet"}
    refused = console.post("/console/risk/preregistrations", data=form,
                           follow_redirects=False)
    assert refused.status_code == 403
    assert risk.list_preregistrations(ctx, SYSTEM, world.m1) == []
    bad = console.post("/console/risk/preregistrations",
                       data={**form, "csrf_token": csrf, "amount": "80000.505"})
    assert bad.status_code == 400
    assert risk.list_preregistrations(ctx, SYSTEM, world.m1) == []
    done = console.post("/console/risk/preregistrations", data={**form, "csrf_token": csrf},
                        follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/console/risk"
    (found,) = risk.list_preregistrations(ctx, SYSTEM, world.m1)
    assert (found.amount_minor, found.terminal_id, found.card_last4, found.note) == (
        8_000_050, tid(world.m1), SALES_PAN[-4:], "wedding banquet")
    assert found.valid_from == datetime(2026, 9, 18, 2, 0, tzinfo=UTC)
    assert found.valid_to == datetime(2026, 9, 18, 14, 0, tzinfo=UTC)
    page = console.get("/console/risk")
    assert f'data-prereg-id="{found.prereg_id}"' in page.text and "¥80,000.50" in page.text
    assert risk.list_preregistrations(ctx, SYSTEM, world.m2) == []
    cancel = f"/console/risk/preregistrations/{found.prereg_id}/cancel"
    assert console.post(cancel).status_code == 403
    assert risk.list_preregistrations(ctx, SYSTEM, world.m1)[0].status == "open"
    assert console.post(cancel, data={"csrf_token": csrf}, follow_redirects=False
                        ).status_code == 303
    assert risk.list_preregistrations(ctx, SYSTEM, world.m1)[0].status == "cancelled"
    assert console.post(cancel, data={"csrf_token": csrf}).status_code == 409
    # the operator sees the merchant's page, and registers one for it
    console.cookies.clear()
    _, ops_csrf = login(console, "ops")
    picker = console.get("/console/risk")
    assert picker.status_code == 200 and 'data-testid="risk-merchant-filter"' in picker.text
    theirs = console.get(f"/console/risk?merchant_id={world.m1}")
    assert theirs.status_code == 200 and f'data-prereg-id="{found.prereg_id}"' in theirs.text
    by_ops = console.post("/console/risk/preregistrations", data={
        **form, "csrf_token": ops_csrf, "merchant_id": world.m2, "terminal_id": "",
        "card_last4": "", "amount": "1000"}, follow_redirects=False)
    assert by_ops.status_code == 303
    assert by_ops.headers["location"] == f"/console/risk?merchant_id={world.m2}"
    (second,) = risk.list_preregistrations(ctx, SYSTEM, world.m2)
    assert (second.amount_minor, second.terminal_id) == (100_000, None)


# -- the operator's pages -----------------------------------------------------------------------

def test_review_queue_release_hold_and_refund_through_the_forms(
        ctx: ServiceContext, console: TestClient, world: ConsoleWorld) -> None:
    merchant_rule(ctx, world.m1, "m1-review", 100_000, "review")
    first = txn_of(attempt(ctx, world.m1, 150_000))
    second = txn_of(attempt(ctx, world.m1, 250_000))
    assert held(ctx, world.m1, first) and held(ctx, world.m1, second)
    _, csrf = login(console, "ops")
    page = console.get("/console/risk/review")
    assert page.status_code == 200
    assert {re.search(r'data-txn-id="(\w+)"', r).group(1)  # type: ignore[union-attr]
            for r in rows(page.text, "risk-review-row")} == {first, second}
    money_before = balances(ctx)
    refused = console.post(f"/console/risk/review/{first}/release", follow_redirects=False)
    assert refused.status_code == 403 and held(ctx, world.m1, first)
    done = console.post(f"/console/risk/review/{first}/release", data={"csrf_token": csrf},
                        follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/console/risk/review"
    assert not held(ctx, world.m1, first) and held(ctx, world.m1, second)
    assert balances(ctx) == money_before  # releasing moves no money, only the hold
    assert f'data-txn-id="{first}" data-held="no"' in console.get("/console/risk/review").text
    again = console.post(f"/console/risk/review/{first}/hold", data={"csrf_token": csrf})
    assert again.status_code == 200 and held(ctx, world.m1, first)
    # refund the second in full: the merchant's unsettled balance gives the sale's amount
    # back to the channel (fees are taken at settlement, so nothing else moves)
    refund = console.post(f"/console/risk/review/{second}/refund", data={"csrf_token": csrf},
                          follow_redirects=False)
    assert refund.status_code == 303
    chain = console_views.chain(ctx, SYSTEM, second)
    assert chain.shown.record.refunded_minor == 250_000
    assert [c.record.txn_type for c in chain.follow_ups] == [TxnType.REFUND]
    assert_balances(ctx, {merchant_unsettled(world.m1): 250_000,
                          CHANNEL_RECEIVABLE: -250_000}, since=money_before)
    assert ledger_balanced(ctx)
    twice = console.post(f"/console/risk/review/{second}/refund", data={"csrf_token": csrf})
    assert twice.status_code == 409
    audit = console_views.audit_log(ctx, SYSTEM, None, 50, None, None).items
    assert {"risk_review.release", "risk_review.hold", "risk_review.refund"} <= {
        a[1].action for a in audit}


def test_flagged_merchant_days_and_their_release(
        ctx: ServiceContext, console: TestClient, world: ConsoleWorld) -> None:
    sale = txn_of(attempt(ctx, world.m1, 30_000))
    with ctx.db.unit_of_work() as uow:
        uow.risk.put_score(ScoreRecord(world.m1, TODAY, 75, [
            {"signal": "round_amounts", "points": 40, "english": "many round amounts",
             "chinese": "整数金额交易多", "numbers": {"share": 0.9}}], True, None, None,
            ctx.now()))
        assert uow.risk.hold_merchant_day(world.m1, TODAY, True) == 1
    assert held_item(ctx, world.m1, sale)
    _, csrf = login(console, "ops")
    page = console.get("/console/risk/flagged")
    assert page.status_code == 200
    (row,) = rows(page.text, "risk-flagged-row")
    assert f'data-merchant-id="{world.m1}"' in row and "many round amounts" in page.text
    assert "share=0.9" in page.text and ">75<" in page.text
    before = balances(ctx)
    path = f"/console/risk/flagged/{world.m1}/{TODAY}/release"
    assert console.post(path).status_code == 403
    assert risk_scoring.flagged(ctx, SYSTEM)
    done = console.post(path, data={"csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert risk_scoring.flagged(ctx, SYSTEM) == []
    assert not held_item(ctx, world.m1, sale)
    assert balances(ctx) == before
    assert rows(console.get("/console/risk/flagged").text, "risk-flagged-row") == []
    assert rows(console.get("/console/risk/flagged?all=1").text, "risk-flagged-row")
    assert console.post(path, data={"csrf_token": csrf}).status_code == 409


def held_item(ctx: ServiceContext, merchant_id: str, txn_id: str) -> bool:
    with ctx.db.unit_of_work() as uow:
        return txn_id in uow.risk.held_txn_ids(merchant_id, [txn_id])


def test_rule_editor_edits_and_deactivates_through_the_service(
        ctx: ServiceContext, console: TestClient, world: ConsoleWorld) -> None:
    merchant_rule(ctx, world.m1, "m1-max", 100_000, "decline")
    _, csrf = login(console, "ops")
    page = console.get("/console/risk/rules")
    assert page.status_code == 200
    assert 'data-rule-id="m1-max" data-version="1" data-active="yes"' in page.text
    assert len(rows(page.text, "risk-rule")) == len(risk.list_rules(ctx, SYSTEM, True))
    form = {"rule_id": "m1-max", "expected_version": "1", "kind": "single_max",
            "scope": "merchant", "scope_value": world.m1, "card_kind": "",
            "action": "decline", "params": '{"amount_minor": 300000}', "active": "1",
            "note": "raised"}
    assert console.post("/console/risk/rules", data=form).status_code == 403
    assert console.post("/console/risk/rules", data={
        **form, "csrf_token": csrf, "params": "{not json"}).status_code == 400
    done = console.post("/console/risk/rules", data={**form, "csrf_token": csrf},
                        follow_redirects=False)
    assert done.status_code == 303
    (rule,) = [r for r in risk.list_rules(ctx, SYSTEM) if r.rule_id == "m1-max"]
    assert (rule.version, dict(rule.params), rule.note) == (2, {"amount_minor": 300000},
                                                             "raised")
    assert attempt(ctx, world.m1, 200_000).approved  # in force at once
    stale = console.post("/console/risk/rules", data={**form, "csrf_token": csrf})
    assert stale.status_code == 409
    off = console.post("/console/risk/rules/m1-max/deactivate", data={"csrf_token": csrf},
                       follow_redirects=False)
    assert off.status_code == 303
    assert [r.rule_id for r in risk.list_rules(ctx, SYSTEM) if r.rule_id == "m1-max"] == []
    versions = risk.rule_versions(ctx, SYSTEM, "m1-max")
    assert [(v.rule.version, v.rule.active) for v in versions] == [(1, True), (2, True),
                                                                    (3, False)]
    assert 'data-rule-id="m1-max" data-version="3" data-active="no"' in console.get(
        "/console/risk/rules").text
    audit = [a for a in console_views.audit_log(ctx, SYSTEM, None, 50, None,
                                                "risk_rule.put").items]
    assert len(audit) == 3
