"""Authentication and tenant isolation on every route of the API.

A merchant (or terminal) key must get 404, never data and never a hint, on every route that
names another merchant. The routes are read from the application itself, so a route added
later is covered without touching this file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from apitools import (
    MID_A,
    MID_B,
    TID_A1,
    TID_A2,
    TID_B1,
    World,
    assert_error,
    bearer,
    row_counts,
)
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from jobtools import ClockLike
from starlette.routing import BaseRoute

from autosettle.api import payment_schemas, schemas, settlement_schemas
from autosettle.api.routes import printers
from autosettle.api.routes import recon as recon_routes
from autosettle.api.routes import risk as risk_routes
from autosettle.services import alerts, apikeys, leases, merchants, printing, settlement
from autosettle.services.context import SYSTEM, Role, ServiceContext
from autosettle.services.merchants import NewTerminal
from autosettle.simulators.issuer import IssuerSimulator

PAN, PIN = "6222020200112345679", "123456"

# A minimal valid body for every request model a route may take. A route whose body model
# is missing here fails the test below: add its minimal body when you add the route.
MINIMAL_BODIES: dict[type, dict[str, Any]] = {
    schemas.MerchantCreate: {"merchant_id": "898310099990001", "legal_name": "New Co",
                             "merchant_type": "enterprise", "mcc": "5411"},
    schemas.MerchantStatusUpdate: {"status": "suspended"},
    schemas.SettlementAccountCreate: {"bank_name": "ICBC", "account_number": "6222000011112222",
                                      "holder_name": "王建国 Wang Jianguo",
                                      "account_type": "personal"},
    schemas.TerminalCreate: {"terminal_id": "NEW00001"},
    schemas.TerminalStatusUpdate: {"status": "suspended"},
    schemas.ApiKeyCreate: {"role": "merchant", "name": "x", "merchant_id": MID_B},
    settlement_schemas.FeeScheduleCreate: {"effective_from": "2026-10-01",
                                           "fallback": {"rate": "0.0060"}},
    settlement_schemas.PayoutFail: {"reason": "account closed"},
    settlement_schemas.MaintenanceWindowCreate: {"starts_at": "2026-10-01T01:00:00+08:00",
                                                 "ends_at": "2026-10-01T05:00:00+08:00",
                                                 "note": "core banking upgrade"},
    settlement_schemas.CalendarOverrideCreate: {"day": "2026-10-10", "is_workday": True,
                                                "note": "make-up workday"},
    settlement_schemas.SettlementRunCreate: {"date": "2026-09-21"},
    payment_schemas.SaleIn: {"amount": "1.00", "card": {"pan": PAN, "expiry": "3012",
                                                        "pin": PIN}},
    payment_schemas.BalanceInquiryIn: {"card": {"pan": PAN, "expiry": "3012", "pin": PIN}},
    payment_schemas.VoidIn: {},
    payment_schemas.FollowUpIn: {"amount": "0.01"},
    payment_schemas.ReversalIn: {},
    printers.PrinterIn: {"name": "new-printer", "merchant_id": MID_B, "terminal_id": TID_B1,
                         "interface": "network", "address": "10.0.0.9"},
    printers.PrinterPatch: {"copies": 1},
    printers.ReprintIn: {},
    risk_routes.RuleBody: {"kind": "single_max", "scope": "all",
                           "params": {"amount_minor": 100}},
    risk_routes.ScoreRun: {"business_date": "2026-09-18"},
    risk_routes.FlaggedRelease: {"merchant_id": MID_A, "business_date": "2026-09-18"},
    risk_routes.PreregistrationCreate: {"amount_minor": 100,
                                        "valid_from": "2026-09-18T09:00:00+08:00",
                                        "valid_to": "2026-09-19T09:00:00+08:00"},
    recon_routes.RunCreate: {"business_date": "2026-09-18"},
    recon_routes.Assign: {"owner": "lee"},
    recon_routes.Resolve: {"action": "accept", "reason": "checked"},
}
PATH_VALUES = {"merchant_id": MID_B, "terminal_id": TID_B1}
MERCHANT_WRITES = ("/risk/preregistrations",)
"""Changes a merchant makes itself (docs/risk.md: it pre-registers large transactions)."""


def api_routes(routes: Sequence[BaseRoute], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """Every API route with its full path, through included routers."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif hasattr(route, "original_router"):  # FastAPI's included-router wrapper
            included = route.include_context.prefix  # type: ignore[attr-defined]
            yield from api_routes(route.original_router.routes, prefix + included)


def body_of(route: APIRoute, path: str) -> dict[str, Any] | None:
    """The minimal valid body of the route's request model, if it takes one."""
    if not route.dependant.body_params:
        return None
    model = route.dependant.body_params[0].field_info.annotation
    assert model in MINIMAL_BODIES, f"add a minimal body for {model} ({path})"
    return MINIMAL_BODIES[model]


def merchant_scoped_calls(app: FastAPI) -> list[tuple[str, str, dict[str, Any] | None]]:
    """(method, path, body) for every route with a ``{merchant_id}`` path parameter."""
    calls = []
    for path, route in api_routes(app.routes):
        params = re.findall(r"{(\w+)}", path)
        if "merchant_id" not in params:
            continue
        body = body_of(route, path)
        unknown = set(params) - set(PATH_VALUES)
        assert not unknown, f"add a value of another merchant for {unknown} ({path})"
        concrete = path.format(**{p: PATH_VALUES[p] for p in params})
        calls.extend((method, concrete, body) for method in sorted(route.methods))
    return calls


def test_route_enumeration_finds_the_merchant_routes(client: TestClient) -> None:
    calls = merchant_scoped_calls(client.app)  # type: ignore[arg-type]
    paths = {path for _, path, _ in calls}
    assert f"/v1/merchants/{MID_B}" in paths
    assert f"/v1/merchants/{MID_B}/balances" in paths
    assert f"/v1/merchants/{MID_B}/terminals/{TID_B1}/status" in paths
    assert len(calls) >= 9


@pytest.mark.parametrize("caller", ["merchant_a", "terminal_a1"])
def test_other_merchants_routes_answer_404_and_write_nothing(
        client: TestClient, ctx: ServiceContext, world: World, caller: str) -> None:
    headers = getattr(world, caller)
    calls = merchant_scoped_calls(client.app)  # type: ignore[arg-type]
    before = row_counts(ctx)
    for method, path, body in calls:
        for extra in ({}, {"Idempotency-Key": f"iso-{method}-{path}"}):
            response = client.request(method, path, json=body, headers={**headers, **extra})
            assert response.status_code == 404, (method, path, response.text)
            assert_error(response, 404, "not_found")
    # the query-parameter form of the same question
    assert_error(client.get(f"/v1/terminals?merchant_id={MID_B}", headers=headers),
                 404, "not_found")
    after = row_counts(ctx)
    assert after == before


def test_the_minimal_bodies_are_valid_for_an_operator(client: TestClient, world: World) -> None:
    """Otherwise the 404s above could be validation errors in disguise."""
    for method, path, body in merchant_scoped_calls(client.app):  # type: ignore[arg-type]
        response = client.request(method, path, json=body, headers=world.operator)
        assert 200 <= response.status_code < 300, (method, path, response.text)


def test_own_merchant_routes_are_readable_or_forbidden_never_404(
        client: TestClient, world: World) -> None:
    for method, path, body in merchant_scoped_calls(client.app):  # type: ignore[arg-type]
        own = path.replace(MID_B, MID_A).replace(TID_B1, TID_A1)
        response = client.request(method, own, json=body, headers=world.merchant_a)
        if method == "GET":
            assert response.status_code == 200, (own, response.text)
        elif own.endswith(MERCHANT_WRITES):
            assert response.status_code == 201, (own, response.text)
        else:
            assert_error(response, 403, "forbidden")


def test_merchant_key_lists_only_itself(client: TestClient, world: World) -> None:
    for headers, mid in ((world.merchant_a, MID_A), (world.merchant_b, MID_B),
                         (world.terminal_a1, MID_A)):
        page = client.get("/v1/merchants", headers=headers).json()
        assert [m["merchant_id"] for m in page["items"]] == [mid]
        assert page["next_cursor"] is None
        # a cursor cannot widen the view
        page = client.get("/v1/merchants?cursor=0", headers=headers).json()
        assert [m["merchant_id"] for m in page["items"]] == [mid]
    everyone = client.get("/v1/merchants", headers=world.operator).json()
    assert [m["merchant_id"] for m in everyone["items"]] == [MID_A, MID_B]


def test_merchant_key_sees_only_its_terminals(client: TestClient, world: World) -> None:
    page = client.get("/v1/terminals", headers=world.merchant_b).json()
    assert [(t["merchant_id"], t["terminal_id"]) for t in page["items"]] == [(MID_B, TID_B1)]


def test_terminal_key_sees_only_its_terminal(client: TestClient, world: World) -> None:
    headers = world.terminal_a1
    for url in ("/v1/terminals", f"/v1/merchants/{MID_A}/terminals",
                f"/v1/terminals?merchant_id={MID_A}"):
        page = client.get(url, headers=headers).json()
        assert [t["terminal_id"] for t in page["items"]] == [TID_A1], url
    ok = client.get(f"/v1/merchants/{MID_A}/terminals/{TID_A1}", headers=headers)
    assert ok.status_code == 200
    assert_error(client.get(f"/v1/merchants/{MID_A}/terminals/{TID_A2}", headers=headers),
                 404, "not_found")


def test_terminal_key_finds_its_terminal_on_any_page_size(
        client: TestClient, ctx: ServiceContext, world: World) -> None:
    """The second terminal of a merchant must not vanish behind the first on a small page."""
    for tid in ("HL000003", "HL000004"):
        merchants.add_terminal(ctx, SYSTEM, MID_A, NewTerminal(tid))
    key = apikeys.create_api_key(ctx, SYSTEM, Role.TERMINAL, "t3", MID_A, "HL000003").key
    for url in ("/v1/terminals?limit=1", f"/v1/merchants/{MID_A}/terminals?limit=1",
                "/v1/terminals?limit=2", "/v1/terminals?limit=1&cursor=0:0"):
        page = client.get(url, headers=bearer(key)).json()
        assert [t["terminal_id"] for t in page["items"]] == ["HL000003"], url
        assert page["next_cursor"] is None
    past = client.get(f"/v1/terminals?cursor={MID_A}:HL000003", headers=bearer(key)).json()
    assert past == {"items": [], "next_cursor": None}


# -- the reach of a terminal key, on every route -------------------------------------------

# What a terminal key may read: its merchant, its own terminal and that terminal's
# transactions (docs/api.md, "Authentication"); and it may make card payments. Every other
# route of the application must answer it 404 (data outside its reach) or, for an operator's
# action, 403, even about its own merchant's real records. The routes are read from the
# application, so a route added later is checked without touching these lists.
TERMINAL_READS = {
    "/v1/merchants", "/v1/merchants/{merchant_id}", "/v1/merchants/{merchant_id}/terminals",
    "/v1/merchants/{merchant_id}/terminals/{terminal_id}", "/v1/terminals",
    "/v1/transactions", "/v1/transactions.csv", "/v1/transactions/{txn_id}",
    "/v1/transactions/{txn_id}/receipt", "/v1/printers", "/v1/printers/{name}",
    "/v1/printers/{name}/jobs", "/v1/print-jobs",
}
TERMINAL_PAYMENTS = "/v1/payments/"
TERMINAL_PRINTING = {"/v1/printers/{name}/check", "/v1/printers/{name}/reprints"}
"""A till checks its own printer and reprints its slips (docs/printers.md)."""
UNAUTHENTICATED = {"/healthz"}
QUERY_VALUES = {"date": "2026-09-18", "business_date": "2026-09-18"}
UNKNOWN_TXN = "0" * 32


@pytest.fixture
def own_records(client: TestClient, ctx: ServiceContext, world: World, sim: IssuerSimulator,
                clock: ClockLike, tmp_path: Path) -> dict[str, str]:
    """Path values naming real records of merchant A: terminal A1's sale, the settlement
    batch and payout that paid it, an alert, a key, terminal A1's printer and a print job."""
    printing.add_printer(ctx, SYSTEM, printing.NewPrinter(
        "till-a1", MID_A, TID_A1, "file", str(tmp_path / "till-a1.prn")))
    sim.add_card(PAN, balance_minor=1_000_000, pin=PIN)
    sale = client.post("/v1/payments/sales", json=MINIMAL_BODIES[payment_schemas.SaleIn],
                       headers={**world.terminal_a1, "Idempotency-Key": "own-sale"})
    assert sale.status_code == 201 and sale.json()["approved"], sale.text
    txn = sale.json()["transaction"]
    due = settlement.expected_settlement(ctx, date.fromisoformat(txn["business_date"]), "T1")
    clock.now = datetime.combine(due, time(12), UTC)
    leases.settle_now(ctx, SYSTEM, due, ("T1",))
    [batch] = client.get(f"/v1/merchants/{MID_A}/settlements",
                         headers=world.merchant_a).json()["settlements"]
    alerts.raise_alert(ctx, "warning", "open_terminal_batches", "a test alert", MID_A)
    [alert] = client.get("/v1/alerts", headers=world.merchant_a).json()["alerts"]
    printing.follow(ctx)
    [job, *_] = printing.list_jobs(ctx, SYSTEM, "till-a1")
    return {"merchant_id": MID_A, "terminal_id": TID_A1, "txn_id": txn["txn_id"],
            "batch_id": batch["batch_id"], "payout_id": batch["payout"]["payout_id"],
            "alert_id": str(alert["alert_id"]), "key_id": key_id_of(world.operator),
            "report_name": "statement",  # /v1/reports/{report_name}: its own statement
            "name": "till-a1", "job_id": str(job.job_id),
            "rule_id": "default:micro:single_max", "prereg_id": "1",
            # reconciliation (operator only: no record needed to be refused)
            "discrepancy_id": "1", "channel": "issuer-sim", "business_date": "2026-09-18"}


def every_call(app: FastAPI, values: dict[str, str]
               ) -> Iterator[tuple[str, str, str, dict[str, Any] | None]]:
    """(method, path template, url, body) for every route, with ``values`` in its path
    and every required query parameter filled in."""
    for path, route in api_routes(app.routes):
        params = re.findall(r"{(\w+)}", path)
        unknown = set(params) - set(values)
        assert not unknown, f"add a value of merchant A for {unknown} ({path})"
        url = path.format(**{p: values[p] for p in params})
        required = [q.alias for q in route.dependant.query_params
                    if q.field_info.is_required()]
        assert set(required) <= set(QUERY_VALUES), f"add a value for {required} ({path})"
        if required:
            url += "?" + urlencode({q: QUERY_VALUES[q] for q in required})
        for method in sorted(route.methods):
            yield method, path, url, body_of(route, path)


def test_terminal_key_reaches_its_merchant_terminal_and_transactions_only(
        client: TestClient, ctx: ServiceContext, world: World,
        own_records: dict[str, str]) -> None:
    checked = set()
    for method, path, url, body in every_call(client.app, own_records):  # type: ignore[arg-type]
        if path in UNAUTHENTICATED:
            continue
        if path.startswith(TERMINAL_PAYMENTS) or path in TERMINAL_PRINTING:
            url = url.replace(own_records["txn_id"], UNKNOWN_TXN)
            answer = client.request(method, url, json=body, headers=world.terminal_a1)
            assert answer.status_code not in (401, 403, 404), (url, answer.text)
            assert answer.status_code < 500, (url, answer.text)
            continue
        before = row_counts(ctx)
        answer = client.request(method, url, json=body, headers=world.terminal_a1)
        if method == "GET" and path in TERMINAL_READS:
            assert answer.status_code == 200, (url, answer.text)
        elif method == "GET":
            staff = client.request(method, url, headers=world.merchant_a)
            assert staff.status_code in (200, 403), (url, staff.text)  # real, own records
            if staff.status_code == 200:
                assert_error(answer, 404, "not_found")
                checked.add(path)
            else:  # an operator's list: forbidden to merchants and terminals alike
                assert answer.status_code in (403, 404), (url, answer.text)
        else:
            assert answer.status_code in (403, 404), (method, url, answer.text)
        assert row_counts(ctx) == before, (method, url)
    assert {"/v1/terminal-status", "/v1/merchants/{merchant_id}/settlements",
            "/v1/settlements/{batch_id}", "/v1/alerts", "/v1/merchants/{merchant_id}/balances",
            "/v1/merchants/{merchant_id}/fee-schedules", "/v1/notices",
            "/v1/merchants/{merchant_id}/cycle-costs", "/v1/reports/{report_name}"} <= checked


BAD_CREDENTIALS: list[dict[str, str]] = [
    {},
    {"Authorization": ""},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer "},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer not-a-key"},
    {"Authorization": "Bearer ask_"},
    {"Authorization": "Bearer ask__"},
    {"Authorization": "Bearer ask_0000000000000000_secret"},
    {"Authorization": "Bearer xyz_0000000000000000_secret"},
    {"Authorization": "Bearer " + "ask_" + "9" * 500 + "_x"},
    {"X-API-Key": "ask_nope_nope"},
]


def test_missing_or_malformed_key_is_401(client: TestClient, world: World) -> None:
    for headers in BAD_CREDENTIALS:
        for path in ("/v1/merchants", f"/v1/merchants/{MID_A}",
                     f"/v1/merchants/{MID_A}/balances"):
            response = client.get(path, headers=headers)
            assert response.status_code == 401, (headers, path)
            assert_error(response, 401, "unauthenticated")
            assert response.headers.get("www-authenticate") == "Bearer"


def test_wrong_secret_and_revoked_keys_are_401(client: TestClient, ctx: ServiceContext,
                                               world: World) -> None:
    issued = apikeys.create_api_key(ctx, SYSTEM, Role.OPERATOR, "soon revoked")
    assert client.get("/v1/merchants", headers=bearer(issued.key)).status_code == 200
    assert client.get("/v1/merchants", headers={"X-API-Key": issued.key}).status_code == 200
    wrong = issued.key[:-2] + ("AA" if not issued.key.endswith("AA") else "BB")
    assert_error(client.get("/v1/merchants", headers=bearer(wrong)), 401, "unauthenticated")
    apikeys.revoke_api_key(ctx, SYSTEM, issued.key_id)
    assert_error(client.get("/v1/merchants", headers=bearer(issued.key)), 401,
                 "unauthenticated")
    assert_error(client.post("/v1/merchants", headers=bearer(issued.key),
                             json=MINIMAL_BODIES[schemas.MerchantCreate]),
                 401, "unauthenticated")


def test_unauthenticated_writes_write_nothing(client: TestClient, ctx: ServiceContext,
                                              world: World) -> None:
    before = row_counts(ctx)
    response = client.post("/v1/merchants", json=MINIMAL_BODIES[schemas.MerchantCreate],
                           headers={"Idempotency-Key": "anon"})
    assert_error(response, 401, "unauthenticated")
    assert row_counts(ctx) == before


@pytest.mark.parametrize("caller", ["merchant_a", "terminal_a1"])
def test_operator_only_routes_are_403_for_merchant_and_terminal_keys(
        client: TestClient, ctx: ServiceContext, world: World, caller: str) -> None:
    headers = getattr(world, caller)
    before = row_counts(ctx)
    calls = [
        ("POST", "/v1/merchants", MINIMAL_BODIES[schemas.MerchantCreate]),
        ("POST", "/v1/api-keys", {"role": "operator", "name": "escalate"}),
        ("POST", "/v1/api-keys", {"role": "merchant", "name": "x", "merchant_id": MID_A}),
        ("PATCH", f"/v1/merchants/{MID_A}/status", {"status": "active"}),
        ("POST", f"/v1/merchants/{MID_A}/terminals", {"terminal_id": "NEW00001"}),
        ("POST", f"/v1/merchants/{MID_A}/settlement-accounts",
         {"bank_name": "B", "account_number": "6222000011112222",
          "holder_name": "x", "account_type": "corporate"}),
        ("PATCH", f"/v1/merchants/{MID_A}/terminals/{TID_A1}/status", {"status": "retired"}),
        ("DELETE", f"/v1/api-keys/{key_id_of(world.operator)}", None),
    ]
    for method, path, body in calls:
        assert_error(client.request(method, path, json=body, headers=headers), 403,
                     "forbidden")
    assert row_counts(ctx) == before


def test_operator_can_issue_keys_over_the_api(client: TestClient, world: World) -> None:
    response = client.post("/v1/api-keys", headers=world.operator,
                           json={"role": "terminal", "name": "till 2", "merchant_id": MID_A,
                                 "terminal_id": TID_A2})
    assert response.status_code == 201, response.text
    issued = response.json()
    assert issued["key"].startswith(f"ask_{issued['key_id']}_")
    page = client.get("/v1/terminals", headers=bearer(issued["key"])).json()
    assert [t["terminal_id"] for t in page["items"]] == [TID_A2]
    # a terminal key for a terminal of another merchant cannot be issued
    response = client.post("/v1/api-keys", headers=world.operator,
                           json={"role": "terminal", "name": "x", "merchant_id": MID_A,
                                 "terminal_id": TID_B1})
    assert_error(response, 404, "not_found")


def key_id_of(headers: dict[str, str]) -> str:
    """The key id inside a bearer key ``ask_<key id>_<secret>``."""
    return headers["Authorization"].removeprefix("Bearer ").split("_")[1]


def test_operator_revokes_a_key_over_the_api(client: TestClient, world: World) -> None:
    issued = client.post("/v1/api-keys", headers=world.operator,
                         json={"role": "merchant", "name": "till", "merchant_id": MID_A}).json()
    key = bearer(issued["key"])
    assert client.get(f"/v1/merchants/{MID_A}", headers=key).status_code == 200
    response = client.delete(f"/v1/api-keys/{issued['key_id']}", headers=world.operator)
    assert response.status_code == 204, response.text
    assert_error(client.get(f"/v1/merchants/{MID_A}", headers=key), 401, "unauthenticated")
    again = client.delete(f"/v1/api-keys/{issued['key_id']}", headers=world.operator)
    assert again.status_code == 204  # idempotent
    assert_error(client.delete("/v1/api-keys/nosuchkey", headers=world.operator), 404,
                 "not_found")


def test_key_secret_is_not_stored_in_clear(client: TestClient, ctx: ServiceContext,
                                           world: World) -> None:
    issued = apikeys.create_api_key(ctx, SYSTEM, Role.OPERATOR, "probe")
    secret = issued.key.split("_", 2)[2]
    with ctx.db.unit_of_work() as uow:
        record = uow.api_keys.get(issued.key_id)
        audit = uow.audit.recent()
    assert record is not None and secret not in record.secret_digest
    assert all(secret not in repr(event) for event in audit)
