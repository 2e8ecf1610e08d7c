"""Control characters in a URL or a free-text field are refused with 422, on both databases.

Found by schemathesis (tests/e2e/test_api_fuzz.py): PostgreSQL cannot store or even compare a
string holding NUL, so ``%00`` in a transaction search, a payment path or an API key's name
answered 500 there (and was silently stored or looked up on SQLite).
"""

from __future__ import annotations

import pytest
from apitools import MID_A, TID_A1, World, assert_error, row_counts
from fastapi.testclient import TestClient

from autosettle.services.context import ServiceContext

URLS = [
    "/v1/transactions/%00", "/v1/transactions?rrn=%00", "/v1/transactions?type=sale%00",
    "/v1/transactions?status=%0A", "/v1/transactions?auth_code=%7F",
    "/v1/transactions.csv?status=%00", "/v1/transactions?merchant_id=%00",
    f"/v1/merchants/{MID_A}%00", "/v1/alerts?merchant_id=%1B",
]


@pytest.mark.parametrize("url", URLS)
def test_a_control_character_in_the_url_is_422(client: TestClient, world: World,
                                                url: str) -> None:
    for headers in (world.operator, world.terminal_a1):
        assert_error(client.get(url, headers=headers), 422, "validation_failed")


def test_a_control_character_in_a_payment_path_is_422_and_stores_nothing(
        client: TestClient, ctx: ServiceContext, world: World) -> None:
    before = row_counts(ctx)
    for action, body in (("voids", {}), ("reversal", {}), ("refunds", {"amount": "1.00"})):
        response = client.post(f"/v1/payments/ab%00cd/{action}", json=body,
                               headers={**world.terminal_a1, "Idempotency-Key": action})
        assert_error(response, 422, "validation_failed")
    assert row_counts(ctx) == before


def test_plus_and_unicode_in_a_query_are_still_fine(client: TestClient, world: World) -> None:
    page = client.get("/v1/transactions?rrn=%E6%88%90+b", headers=world.operator)
    assert page.status_code == 200, page.text
    ok = client.get(f"/v1/merchants/{MID_A}/terminals/{TID_A1}", headers=world.terminal_a1)
    assert ok.status_code == 200


BODIES = [
    ("/v1/api-keys", {"role": "merchant", "name": "till\u00001", "merchant_id": MID_A}),
    ("/v1/calendar/overrides", {"day": "2026-10-10", "is_workday": True, "note": "a\u0000"}),
    ("/v1/maintenance-windows", {"starts_at": "2026-10-01T01:00:00+08:00",
                                 "ends_at": "2026-10-01T05:00:00+08:00", "note": "x\u0000y"}),
    ("/v1/api-keys", {"role": "merchant", "name": "two\nlines", "merchant_id": MID_A}),
]


@pytest.mark.parametrize(("path", "body"), BODIES)
def test_a_control_character_in_a_text_field_is_422_and_stores_nothing(
        client: TestClient, ctx: ServiceContext, world: World, path: str,
        body: dict[str, object]) -> None:
    before = row_counts(ctx)
    error = assert_error(client.post(path, json=body, headers=world.operator), 422,
                         "validation_failed")
    assert error["details"][0]["type"] == "string_pattern_mismatch"
    assert row_counts(ctx) == before
