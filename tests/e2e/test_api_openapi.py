"""The OpenAPI document declares the error answers the API really gives, with one shape."""

from __future__ import annotations

from typing import Any

from apitools import MID_A, World, assert_error
from fastapi.testclient import TestClient

from autosettle.domain.errors import ErrorCode

ERROR_REF = "#/components/schemas/ErrorResponse"
CHANGES = {"post", "patch", "put"}


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, ops in document["paths"].items()
            for method, op in ops.items()]


def error_ref(op: dict[str, Any], status: str) -> str:
    return str(op["responses"][status]["content"]["application/json"]["schema"]["$ref"])


def test_every_operation_declares_its_error_answers(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    found = operations(document)
    assert len(found) >= 40
    for method, path, op in found:
        expected = {"500", "503"}
        if path.startswith("/v1/"):
            expected |= {"401", "403", "404", "422"}
        if "requestBody" in op:
            expected |= {"400", "413"}
        if method in CHANGES:
            expected.add("409")
        assert expected <= set(op["responses"]), (method, path, sorted(op["responses"]))
        for status in expected - ({"503"} if path == "/healthz" else set()):
            assert error_ref(op, status) == ERROR_REF, (method, path, status)
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas  # FastAPI's {"detail": ...}: never answered
    codes = schemas[schemas["ErrorInfo"]["properties"]["code"]["$ref"].split("/")[-1]]
    assert set(codes["enum"]) == {c.value for c in ErrorCode}


def test_a_replayed_payment_and_the_csv_export_are_declared(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/payments/sales", "/v1/payments/{txn_id}/refunds"):
        assert {"200", "201"} <= set(paths[path]["post"]["responses"]), path
    assert "text/csv" in paths["/v1/transactions.csv"]["get"]["responses"]["200"]["content"]


def test_an_undecodable_body_is_a_declared_400(client: TestClient, world: World) -> None:
    """Bytes that are not UTF-8 are 400 (documented); JSON that does not parse is 422."""
    headers = {**world.operator, "Content-Type": "application/json"}
    response = client.post("/v1/merchants", content=b'{"merchant_id": "\xff"}', headers=headers)
    assert_error(response, 400, "validation_failed")
    garbled = client.patch(f"/v1/merchants/{MID_A}/status", content=b"{not json",
                           headers=headers)
    error = assert_error(garbled, 422, "validation_failed")
    assert error["details"][0]["type"] == "json_invalid"
    paths = client.get("/openapi.json").json()["paths"]
    assert "400" in paths["/v1/merchants"]["post"]["responses"]
