"""Bad input is refused with a clear code, one error shape, a 4xx status, and no write."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from apitools import MID_A, TID_A1, World, assert_error, row_counts
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autosettle.services.context import ServiceContext

VALID: dict[str, Any] = {"merchant_id": "898310099990001", "legal_name": "Valid Co",
                         "merchant_type": "enterprise", "mcc": "5411"}
CLEAN_SETTINGS = settings(max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture])


def with_(**changes: Any) -> dict[str, Any]:
    body = dict(VALID)
    body.update(changes)
    return body


def without(field: str) -> dict[str, Any]:
    return {k: v for k, v in VALID.items() if k != field}


# (case id, body, expected code, field named in the details (None: no details expected))
BAD_MERCHANTS: list[tuple[str, Any, str, str | None]] = [
    ("id too short", with_(merchant_id="89831009999000"), "validation_failed", "merchant_id"),
    ("id too long", with_(merchant_id="8983100999900011"), "validation_failed", "merchant_id"),
    ("id empty", with_(merchant_id=""), "validation_failed", "merchant_id"),
    ("id punctuation", with_(merchant_id="898310099-90001"), "validation_failed",
     "merchant_id"),
    ("id full-width digits", with_(merchant_id="８９８３１００９９９９０００１"),
     "validation_failed", "merchant_id"),
    ("id missing", without("merchant_id"), "validation_failed", "merchant_id"),
    ("id number", with_(merchant_id=898310099990001), "validation_failed", "merchant_id"),
    ("name empty", with_(legal_name=""), "validation_failed", "legal_name"),
    ("name blank", with_(legal_name="   \t "), "validation_failed", "legal_name"),
    ("name 300 chars", with_(legal_name="x" * 300), "validation_failed", "legal_name"),
    ("name 201 CJK", with_(legal_name="华" * 201), "validation_failed", "legal_name"),
    ("name null", with_(legal_name=None), "validation_failed", "legal_name"),
    ("name number", with_(legal_name=123), "validation_failed", "legal_name"),
    ("name list", with_(legal_name=["a"]), "validation_failed", "legal_name"),
    ("name NUL", with_(legal_name="Bad\x00Co"), "validation_failed", None),
    ("name newline", with_(legal_name="Bad\nCo"), "validation_failed", None),
    ("short name blank", with_(short_name=" "), "validation_failed", "short_name"),
    ("short name 61", with_(short_name="s" * 61), "validation_failed", "short_name"),
    ("mcc 3 digits", with_(mcc="541"), "validation_failed", "mcc"),
    ("mcc 5 digits", with_(mcc="54111"), "validation_failed", "mcc"),
    ("mcc letters", with_(mcc="abcd"), "validation_failed", "mcc"),
    ("mcc full-width", with_(mcc="５４１１"), "validation_failed", "mcc"),
    ("mcc number", with_(mcc=5411), "validation_failed", "mcc"),
    ("type unknown", with_(merchant_type="company"), "validation_failed", "merchant_type"),
    ("type upper", with_(merchant_type="ENTERPRISE"), "validation_failed", "merchant_type"),
    ("cycle unknown", with_(settlement_cycle="T2"), "validation_failed", "settlement_cycle"),
    ("limit negative", with_(single_limit_minor=-1), "validation_failed",
     "single_limit_minor"),
    ("limit zero", with_(single_limit_minor=0), "validation_failed", "single_limit_minor"),
    ("limit 10^12", with_(single_limit_minor=10**12), "validation_failed",
     "single_limit_minor"),
    ("limit 10^30", with_(single_limit_minor=10**30), "validation_failed",
     "single_limit_minor"),
    ("limit fraction", with_(single_limit_minor=10.5), "validation_failed",
     "single_limit_minor"),
    ("limit float", with_(single_limit_minor=100.0), "validation_failed",
     "single_limit_minor"),
    ("limit string", with_(single_limit_minor="100"), "validation_failed",
     "single_limit_minor"),
    ("limit decimal string", with_(single_limit_minor="12.34"), "validation_failed",
     "single_limit_minor"),
    ("limit bool", with_(single_limit_minor=True), "validation_failed",
     "single_limit_minor"),
    ("currency unknown", with_(currency="XXX"), "unknown_currency", None),
    ("currency lower", with_(currency="cny"), "validation_failed", "currency"),
    ("currency numeric", with_(currency="156"), "validation_failed", "currency"),
    ("currency number", with_(currency=156), "validation_failed", "currency"),
    ("extra field", with_(owner="me"), "validation_failed", "owner"),
    ("extra status", with_(status="closed"), "validation_failed", "status"),
    ("body list", [VALID], "validation_failed", None),
    ("body string", "merchant", "validation_failed", None),
    ("body null", None, "validation_failed", None),
    ("body empty object", {}, "validation_failed", "merchant_id"),
]


@pytest.fixture
def operator(world: World) -> dict[str, str]:
    return world.operator


def test_error_table_has_unique_ids() -> None:
    ids = [case[0] for case in BAD_MERCHANTS]
    assert len(ids) == len(set(ids))


def test_bad_merchants_are_refused_and_nothing_is_written(
        client: TestClient, ctx: ServiceContext, operator: dict[str, str]) -> None:
    before = row_counts(ctx)
    for case, body, code, field in BAD_MERCHANTS:
        response = client.post("/v1/merchants", content=json.dumps(body),
                               headers={**operator, "Content-Type": "application/json"})
        assert response.status_code in (400, 413, 415, 422), (case, response.text)
        error = assert_error(response, response.status_code, code)
        if field is not None:
            named = {part for detail in error["details"] for part in detail["loc"]}
            assert field in named, (case, error)
        assert row_counts(ctx) == before, case
    # and the valid body next to them really is valid
    assert client.post("/v1/merchants", json=VALID, headers=operator).status_code == 201


NON_JSON: list[tuple[bytes, str]] = [
    (b"not json", "application/json"),
    (b'{"merchant_id": ', "application/json"),
    (b"\xff\xfe\x00", "application/json"),
    (b"", "application/json"),
    (json.dumps(VALID).encode(), "text/plain"),
    (b"merchant_id=898310099990001", "application/x-www-form-urlencoded"),
    (json.dumps(VALID).encode(), ""),
]


def test_non_json_bodies_are_refused(client: TestClient, ctx: ServiceContext,
                                     operator: dict[str, str]) -> None:
    before = row_counts(ctx)
    for content, content_type in NON_JSON:
        headers = {**operator, "Content-Type": content_type}
        response = client.post("/v1/merchants", content=content, headers=headers)
        assert 400 <= response.status_code < 500, (content, response.text)
        assert_error(response, response.status_code, "validation_failed")
    assert row_counts(ctx) == before


def test_huge_body_is_refused(client: TestClient, ctx: ServiceContext,
                              operator: dict[str, str]) -> None:
    before = row_counts(ctx)
    huge = with_(legal_name="x" * (4 * 1024 * 1024))
    response = client.post("/v1/merchants", json=huge, headers=operator)
    assert_error(response, 413, "validation_failed")

    def chunks() -> Any:  # no Content-Length: the limit must hold on a stream too
        yield b'{"merchant_id": "898310099990001", "legal_name": "'
        for _ in range(64):
            yield b"x" * 65536
        yield b'", "merchant_type": "enterprise", "mcc": "5411"}'

    streamed = client.post("/v1/merchants", content=chunks(),
                           headers={**operator, "Content-Type": "application/json"})
    assert_error(streamed, 413, "validation_failed")
    assert row_counts(ctx) == before


BAD_SUB_RESOURCES: list[tuple[str, dict[str, Any]]] = [
    (f"/v1/merchants/{MID_A}/settlement-accounts",
     {"bank_name": "B", "account_number": "12345", "holder_name": "x",
      "account_type": "corporate"}),
    (f"/v1/merchants/{MID_A}/settlement-accounts",
     {"bank_name": "B", "account_number": "6222-0000-1111-2222", "holder_name": "x",
      "account_type": "corporate"}),
    (f"/v1/merchants/{MID_A}/settlement-accounts",
     {"bank_name": "B", "account_number": "1" * 33, "holder_name": "x",
      "account_type": "corporate"}),
    (f"/v1/merchants/{MID_A}/settlement-accounts",
     {"bank_name": " ", "account_number": "6222000011112222", "holder_name": "x",
      "account_type": "corporate"}),
    (f"/v1/merchants/{MID_A}/settlement-accounts",
     {"bank_name": "B", "account_number": "6222000011112222", "holder_name": "x" * 300,
      "account_type": "corporate"}),
    (f"/v1/merchants/{MID_A}/settlement-accounts",
     {"bank_name": "B", "account_number": "6222000011112222", "holder_name": "x",
      "account_type": "savings"}),
    (f"/v1/merchants/{MID_A}/terminals", {"terminal_id": "HL00001"}),
    (f"/v1/merchants/{MID_A}/terminals", {"terminal_id": "HL0000001"}),
    (f"/v1/merchants/{MID_A}/terminals", {"terminal_id": "HL00000!"}),
    (f"/v1/merchants/{MID_A}/terminals", {"terminal_id": "HL000009", "serial_no": "s" * 41}),
    (f"/v1/merchants/{MID_A}/terminals", {"terminal_id": "HL000009", "model": " "}),
    (f"/v1/merchants/{MID_A}/terminals", {"terminal_id": "HL000009", "serial_no": "a\x07"}),
    (f"/v1/merchants/{MID_A}/status", {"status": "deleted"}),
    (f"/v1/merchants/{MID_A}/status", {"status": "active", "reason": "x"}),
    (f"/v1/merchants/{MID_A}/terminals/{TID_A1}/status", {"status": 1}),
    ("/v1/api-keys", {"role": "root", "name": "x"}),
    ("/v1/api-keys", {"role": "operator", "name": ""}),
    ("/v1/api-keys", {"role": "operator", "name": "x", "merchant_id": MID_A}),
    ("/v1/api-keys", {"role": "merchant", "name": "x"}),
    ("/v1/api-keys", {"role": "terminal", "name": "x", "merchant_id": MID_A}),
    ("/v1/api-keys", {"role": "merchant", "name": "x" * 101, "merchant_id": MID_A}),
]


def test_bad_sub_resources_are_refused(client: TestClient, ctx: ServiceContext,
                                       world: World) -> None:
    before = row_counts(ctx)
    for path, body in BAD_SUB_RESOURCES:
        method = "PATCH" if path.endswith("/status") else "POST"
        response = client.request(method, path, json=body, headers=world.operator)
        assert response.status_code == 422, (path, body, response.text)
        assert_error(response, 422, "validation_failed")
    assert row_counts(ctx) == before


BAD_URLS: list[tuple[str, int, str]] = [
    ("/v1/merchants?limit=0", 422, "validation_failed"),
    ("/v1/merchants?limit=201", 422, "validation_failed"),
    ("/v1/merchants?limit=abc", 422, "validation_failed"),
    ("/v1/merchants?limit=1e3", 422, "validation_failed"),
    ("/v1/merchants?cursor=" + "9" * 101, 422, "validation_failed"),
    ("/v1/merchants?cursor=%00", 422, "validation_failed"),
    ("/v1/merchants?cursor=%ED%A0%80", 422, "validation_failed"),
    ("/v1/terminals?cursor=%00:%00", 422, "validation_failed"),
    ("/v1/terminals?merchant_id=%00", 422, "validation_failed"),
    ("/v1/terminals?merchant_id=" + "8" * 16, 422, "validation_failed"),
    ("/v1/merchants/%00", 422, "validation_failed"),
    ("/v1/merchants/%ED%A0%80", 422, "validation_failed"),
    ("/v1/merchants/" + "8" * 1000, 422, "validation_failed"),
    ("/v1/merchants/89831005411000", 422, "validation_failed"),
    (f"/v1/merchants/{MID_A}/terminals/%00%00%00%00%00%00%00%00", 422, "validation_failed"),
    (f"/v1/merchants/{MID_A}/terminals/HL%ED%A0%80", 422, "validation_failed"),
    (f"/v1/merchants/{MID_A}/balances/extra", 404, "not_found"),
    ("/v1/nowhere", 404, "not_found"),
]


def test_bad_urls_are_4xx(client: TestClient, world: World) -> None:
    for url, status, code in BAD_URLS:
        response = client.get(url, headers=world.operator)
        assert response.status_code == status, (url, response.text)
        assert_error(response, status, code)


def test_wrong_method_is_405_with_the_error_shape(client: TestClient, world: World) -> None:
    assert_error(client.delete(f"/v1/merchants/{MID_A}", headers=world.operator), 405,
                 "validation_failed")
    assert_error(client.put("/v1/merchants", json=VALID, headers=world.operator), 405,
                 "validation_failed")


def test_bad_idempotency_keys_are_refused(client: TestClient, ctx: ServiceContext,
                                         world: World) -> None:
    before = row_counts(ctx)
    for key in ("a" * 201, "ключ", "tab\there", "bell\x07"):
        response = client.post("/v1/merchants", json=VALID,
                               headers=[*world.operator.items(),
                                        ("Idempotency-Key", key.encode())])
        assert response.status_code == 422, (key, response.text)
        assert_error(response, 422, "validation_failed")
    assert row_counts(ctx) == before


# -- fuzzing: no body makes the API fail with a 5xx ------------------------------------------
json_scalars = (st.none() | st.booleans() | st.integers()
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=3),
                           max_leaves=8)
field_values = {
    "merchant_id": st.text(alphabet="89ABab0 \x00-", min_size=14, max_size=16) | json_values,
    "legal_name": st.text(max_size=210) | json_values,
    "short_name": st.text(max_size=70) | json_values,
    "merchant_type": st.sampled_from(["enterprise", "individual", "micro", "x"]) | json_values,
    "mcc": st.text(alphabet="0123456789٣", min_size=3, max_size=5) | json_values,
    "settlement_cycle": st.sampled_from(["T0", "T1", "D0", "D1", "T9"]) | json_values,
    "single_limit_minor": st.integers(min_value=-(10**20), max_value=10**20) | json_values,
    "currency": st.sampled_from(["CNY", "USD", "XXX", "cny", "JPY"]) | json_values,
}
merchant_like = st.fixed_dictionaries(
    {}, optional={name: values for name, values in field_values.items()}
) | st.dictionaries(st.text(max_size=20), json_values, max_size=5) | json_values


@CLEAN_SETTINGS
@given(body=merchant_like)
def test_random_bodies_never_yield_a_5xx(client: TestClient, world: World,
                                         body: Any) -> None:
    response = client.post("/v1/merchants", json=body, headers=world.operator)
    assert response.status_code < 500, (body, response.text)
    if response.status_code >= 400:
        payload = response.json()
        assert set(payload) == {"error"}
        assert isinstance(payload["error"]["code"], str)
        assert isinstance(payload["error"]["message"], str)


@CLEAN_SETTINGS
@given(merchant_id=st.text(max_size=20), tail=st.text(max_size=20))
def test_random_paths_never_yield_a_5xx(client: TestClient, world: World,
                                        merchant_id: str, tail: str) -> None:
    mid = quote(merchant_id.encode("utf-8", "surrogatepass"), safe="")
    tid = quote(tail.encode("utf-8", "surrogatepass"), safe="")
    for url in (f"/v1/merchants/{mid}", f"/v1/merchants/{mid}/terminals/{tid}",
                f"/v1/merchants?cursor={mid}", f"/v1/terminals?cursor={mid}:{tid}"):
        response = client.get(url, headers=world.operator)
        assert response.status_code < 500, (url, response.text)
