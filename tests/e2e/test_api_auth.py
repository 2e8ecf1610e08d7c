"""Authentication and tenant isolation on every route of the API.

A merchant (or terminal) key must get 404, never data and never a hint, on every route that
names another merchant. The routes are read from the application itself, so a route added
later is covered without touching this file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

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
from starlette.routing import BaseRoute

from autosettle.api import schemas, settlement_schemas
from autosettle.services import apikeys, merchants
from autosettle.services.context import SYSTEM, Role, ServiceContext
from autosettle.services.merchants import NewTerminal

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
}
PATH_VALUES = {"merchant_id": MID_B, "terminal_id": TID_B1}


def api_routes(routes: Sequence[BaseRoute], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """Every API route with its full path, through included routers."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif hasattr(route, "original_router"):  # FastAPI's included-router wrapper
            included = route.include_context.prefix  # type: ignore[attr-defined]
            yield from api_routes(route.original_router.routes, prefix + included)


def merchant_scoped_calls(app: FastAPI) -> list[tuple[str, str, dict[str, Any] | None]]:
    """(method, path, body) for every route with a ``{merchant_id}`` path parameter."""
    calls = []
    for path, route in api_routes(app.routes):
        params = re.findall(r"{(\w+)}", path)
        if "merchant_id" not in params:
            continue
        body: dict[str, Any] | None = None
        if route.dependant.body_params:
            model = route.dependant.body_params[0].field_info.annotation
            assert model in MINIMAL_BODIES, f"add a minimal body for {model} ({path})"
            body = MINIMAL_BODIES[model]
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
