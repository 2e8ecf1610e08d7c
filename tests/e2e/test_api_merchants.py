"""Merchants, settlement accounts, terminals and balances through the REST API."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from apitools import (
    ACCOUNT_A,
    LEGAL_A,
    MID_A,
    MID_B,
    TID_A1,
    TID_A2,
    World,
    assert_error,
    bearer,
    row_counts,
)
from fastapi.testclient import TestClient
from sqlalchemy import select

from autosettle import __version__
from autosettle.domain.ledger import Account, AccountType, JournalEntry, Line, transfer
from autosettle.domain.money import Money, currency
from autosettle.services import apikeys, ledger
from autosettle.services.context import SYSTEM, Role, ServiceContext
from autosettle.store.tables import metadata

NEW_ACCOUNT = "6222 0200 0011 1122 2"


def merchant_body(merchant_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"merchant_id": merchant_id, "legal_name": f"Shop {merchant_id}",
                            "merchant_type": "enterprise", "mcc": "5411"}
    body.update(overrides)
    return body


@pytest.fixture
def operator(ctx: ServiceContext) -> dict[str, str]:
    return bearer(apikeys.create_api_key(ctx, SYSTEM, Role.OPERATOR, "op").key)


def all_rows_text(ctx: ServiceContext) -> str:
    """Every value of every row of every table, as text (for scans on any backend)."""
    parts = []
    with ctx.db.unit_of_work() as uow:
        for table in metadata.sorted_tables:
            for row in uow.connection.execute(select(table)):
                parts.extend(repr(value) for value in row)
    return "\n".join(parts)


def sqlite_files_bytes(ctx: ServiceContext) -> bytes:
    """The SQLite database file and its WAL, checkpointed or not."""
    path = Path(ctx.db.engine.url.database or "")
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


# -- merchants ------------------------------------------------------------------------------
def test_create_get_and_page_through_merchants(client: TestClient,
                                               operator: dict[str, str]) -> None:
    ids = [f"89831005411{n:04d}" for n in (7, 3, 5, 1, 6, 2, 4)]
    for mid in ids:
        response = client.post("/v1/merchants", json=merchant_body(mid), headers=operator)
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["merchant_id"] == mid
        assert created["status"] == "active"
        assert created["short_name"] == f"Shop {mid}"
        assert created["settlement_cycle"] == "T1"
        assert created["currency"] == "CNY"
    got = client.get(f"/v1/merchants/{ids[0]}", headers=operator).json()
    assert got["legal_name"] == f"Shop {ids[0]}" and got["mcc"] == "5411"

    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/merchants", params=params, headers=operator).json()
        assert len(page["items"]) <= 3
        seen.extend(m["merchant_id"] for m in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids)
    assert_error(client.get("/v1/merchants/898310054119999", headers=operator), 404,
                 "not_found")


def test_create_with_every_option(client: TestClient, operator: dict[str, str]) -> None:
    body = merchant_body(MID_B, merchant_type="individual", mcc="5812", short_name="Lao Wang",
                         settlement_cycle="D0", single_limit_minor=500_000, currency="CNY")
    created = client.post("/v1/merchants", json=body, headers=operator).json()
    assert {k: created[k] for k in body} == body


def test_duplicate_merchant_is_409(client: TestClient, ctx: ServiceContext,
                                   operator: dict[str, str]) -> None:
    assert client.post("/v1/merchants", json=merchant_body(MID_A),
                       headers=operator).status_code == 201
    before = row_counts(ctx)
    again = client.post("/v1/merchants", json=merchant_body(MID_A, legal_name="Other"),
                        headers=operator)
    assert_error(again, 409, "already_exists")
    assert row_counts(ctx) == before


def test_merchant_status_update(client: TestClient, operator: dict[str, str],
                                clock: Any) -> None:
    client.post("/v1/merchants", json=merchant_body(MID_A), headers=operator)
    clock.advance(minutes=5)
    for status in ("suspended", "under_review", "active", "closed"):
        response = client.patch(f"/v1/merchants/{MID_A}/status", json={"status": status},
                                headers=operator)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
    merchant = client.get(f"/v1/merchants/{MID_A}", headers=operator).json()
    assert merchant["status"] == "closed"
    assert merchant["updated_at"] > merchant["created_at"]
    assert_error(client.patch(f"/v1/merchants/{MID_A}/status", json={"status": "active"},
                              headers=operator), 409, "invalid_state")
    assert_error(client.patch(f"/v1/merchants/{MID_A}/status", json={"status": "gone"},
                              headers=operator), 422, "validation_failed")
    assert_error(client.patch("/v1/merchants/898310054119999/status",
                              json={"status": "active"}, headers=operator), 404, "not_found")


# -- settlement accounts --------------------------------------------------------------------
def test_settlement_account_is_masked_everywhere(client: TestClient, ctx: ServiceContext,
                                                 operator: dict[str, str]) -> None:
    client.post("/v1/merchants", json=merchant_body(MID_A, legal_name=LEGAL_A),
                headers=operator)
    digits = NEW_ACCOUNT.replace(" ", "")
    texts = []
    response = client.post(f"/v1/merchants/{MID_A}/settlement-accounts", headers=operator,
                           json={"bank_name": "ICBC", "bank_code": "102",
                                 "account_number": NEW_ACCOUNT, "holder_name": LEGAL_A,
                                 "account_type": "corporate"})
    assert response.status_code == 201, response.text
    texts.append(response.text)
    account = response.json()
    assert account["account_number_masked"] == "*" * (len(digits) - 4) + digits[-4:]
    assert account["verified"] is True
    assert "account_number" not in account
    listed = client.get(f"/v1/merchants/{MID_A}/settlement-accounts", headers=operator)
    texts.append(listed.text)
    assert [a["account_id"] for a in listed.json()] == [account["account_id"]]
    merchant_key = bearer(apikeys.create_api_key(ctx, SYSTEM, Role.MERCHANT, "m", MID_A).key)
    texts.append(client.get(f"/v1/merchants/{MID_A}/settlement-accounts",
                            headers=merchant_key).text)
    texts.append(client.get("/openapi.json").text)

    for text in texts:
        assert digits not in text and NEW_ACCOUNT not in text
        assert digits[:12] not in text  # not even most of it
    stored = all_rows_text(ctx)
    assert digits not in stored and digits[:12] not in stored
    if not ctx.db.is_postgres:
        raw = sqlite_files_bytes(ctx)
        assert digits.encode() not in raw and digits[:12].encode() not in raw
        assert digits.encode("utf-16-le") not in raw


HOLDERS: list[tuple[str, bool]] = [
    (LEGAL_A, True),
    ("华联超市有限公司Hualian Supermarket Co., Ltd.", True),   # white space differs
    ("  华联超市有限公司 HUALIAN SUPERMARKET CO., LTD.  ", True),  # case differs
    ("华联超市 Hualian", False),
    ("张三 Zhang San", False),
]


def test_verified_only_when_holder_is_the_merchant(client: TestClient,
                                                   operator: dict[str, str]) -> None:
    client.post("/v1/merchants", json=merchant_body(MID_A, legal_name=LEGAL_A),
                headers=operator)
    for holder, verified in HOLDERS:
        response = client.post(f"/v1/merchants/{MID_A}/settlement-accounts", headers=operator,
                               json={"bank_name": "ICBC", "account_number": ACCOUNT_A,
                                     "holder_name": holder, "account_type": "corporate"})
        assert response.status_code == 201, response.text
        assert response.json()["verified"] is verified, holder


def test_enterprise_cannot_settle_to_a_personal_account(client: TestClient,
                                                        ctx: ServiceContext,
                                                        operator: dict[str, str]) -> None:
    client.post("/v1/merchants", json=merchant_body(MID_A, legal_name=LEGAL_A),
                headers=operator)
    before = row_counts(ctx)
    response = client.post(f"/v1/merchants/{MID_A}/settlement-accounts", headers=operator,
                           json={"bank_name": "ICBC", "account_number": ACCOUNT_A,
                                 "holder_name": LEGAL_A, "account_type": "personal"})
    assert_error(response, 422, "validation_failed")
    assert row_counts(ctx) == before


def test_settlement_account_of_unknown_merchant_is_404(client: TestClient,
                                                       operator: dict[str, str]) -> None:
    response = client.post("/v1/merchants/898310054119999/settlement-accounts",
                           headers=operator,
                           json={"bank_name": "ICBC", "account_number": ACCOUNT_A,
                                 "holder_name": "x", "account_type": "corporate"})
    assert_error(response, 404, "not_found")


# -- terminals ------------------------------------------------------------------------------
def test_terminals_create_list_get_and_status(client: TestClient, operator: dict[str, str]
                                              ) -> None:
    client.post("/v1/merchants", json=merchant_body(MID_A), headers=operator)
    client.post("/v1/merchants", json=merchant_body(MID_B), headers=operator)
    for mid, tid in ((MID_A, TID_A2), (MID_A, TID_A1), (MID_B, "LW000001")):
        response = client.post(f"/v1/merchants/{mid}/terminals", headers=operator,
                               json={"terminal_id": tid, "serial_no": f"SN-{tid}",
                                     "model": "PAX A920"})
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "active"
    bare = client.post(f"/v1/merchants/{MID_B}/terminals", headers=operator,
                       json={"terminal_id": "LW000002"}).json()
    assert bare["serial_no"] == "LW000002" and bare["model"] == "generic"
    assert_error(client.post(f"/v1/merchants/{MID_A}/terminals", headers=operator,
                             json={"terminal_id": TID_A1}), 409, "already_exists")

    mine = client.get(f"/v1/merchants/{MID_A}/terminals", headers=operator).json()
    assert [t["terminal_id"] for t in mine["items"]] == [TID_A1, TID_A2]
    seen: list[tuple[str, str]] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/terminals", params=params, headers=operator).json()
        seen.extend((t["merchant_id"], t["terminal_id"]) for t in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [(MID_A, TID_A1), (MID_A, TID_A2), (MID_B, "LW000001"),
                    (MID_B, "LW000002")]

    got = client.get(f"/v1/merchants/{MID_A}/terminals/{TID_A1}", headers=operator).json()
    assert got["serial_no"] == f"SN-{TID_A1}" and got["model"] == "PAX A920"
    # a terminal id exists under its own merchant only
    assert_error(client.get(f"/v1/merchants/{MID_B}/terminals/{TID_A1}", headers=operator),
                 404, "not_found")

    url = f"/v1/merchants/{MID_A}/terminals/{TID_A1}/status"
    for status in ("suspended", "active", "retired"):
        response = client.patch(url, json={"status": status}, headers=operator)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
    assert_error(client.patch(url, json={"status": "active"}, headers=operator), 409,
                 "invalid_state")
    assert_error(client.get("/v1/terminals?cursor=nocolon", headers=operator), 422,
                 "validation_failed")


def test_terminal_of_unknown_merchant_is_404(client: TestClient, ctx: ServiceContext,
                                             operator: dict[str, str]) -> None:
    before = row_counts(ctx)
    assert_error(client.post("/v1/merchants/898310054119999/terminals", headers=operator,
                             json={"terminal_id": TID_A1}), 404, "not_found")
    assert_error(client.get("/v1/merchants/898310054119999/terminals", headers=operator),
                 404, "not_found")
    assert row_counts(ctx) == before


# -- balances -------------------------------------------------------------------------------
def test_balances_are_derived_from_the_journal(client: TestClient, ctx: ServiceContext,
                                               world: World) -> None:
    unsettled = Account(AccountType.MERCHANT_UNSETTLED, MID_A)
    receivable = Account(AccountType.CHANNEL_RECEIVABLE)
    ledger.post(ctx, transfer("sale-1", "sale", receivable, unsettled, Money(12_345), MID_A))
    ledger.post(ctx, transfer("sale-2", "sale", receivable, unsettled, Money(655), MID_A))
    usd = currency("USD")
    ledger.post(ctx, JournalEntry.build("sale-usd", "sale", [
        Line.debit(receivable, Money(100, usd)), Line.credit(unsettled, Money(100, usd))],
        MID_A))
    # another merchant's money must not show up
    ledger.post(ctx, transfer("sale-b", "sale", receivable,
                              Account(AccountType.MERCHANT_UNSETTLED, MID_B), Money(1), MID_B))

    for headers in (world.operator, world.merchant_a):
        answer = client.get(f"/v1/merchants/{MID_A}/balances", headers=headers).json()
        assert answer == {"merchant_id": MID_A, "balances": [
            {"account": f"merchant_unsettled:{MID_A}", "account_type": "merchant_unsettled",
             "kind": "liability", "currency": "CNY", "balance_minor": -13_000,
             "balance": "-130.00"},
            {"account": f"merchant_unsettled:{MID_A}", "account_type": "merchant_unsettled",
             "kind": "liability", "currency": "USD", "balance_minor": -100,
             "balance": "-1.00"},
        ]}
    unknown = client.get("/v1/merchants/898310054119999/balances", headers=world.operator)
    assert_error(unknown, 404, "not_found")


def test_balances_of_a_merchant_without_entries_are_empty(client: TestClient,
                                                          world: World) -> None:
    answer = client.get(f"/v1/merchants/{MID_B}/balances", headers=world.merchant_b).json()
    assert answer == {"merchant_id": MID_B, "balances": []}


# -- system ---------------------------------------------------------------------------------
def test_healthz_needs_no_key(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "version": __version__}


def test_openapi_lists_every_route(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    paths = spec["paths"]
    expected = {
        "/healthz": {"get"},
        "/v1/api-keys": {"post"},
        "/v1/api-keys/{key_id}": {"delete"},
        "/v1/merchants": {"get", "post"},
        "/v1/merchants/{merchant_id}": {"get"},
        "/v1/merchants/{merchant_id}/status": {"patch"},
        "/v1/merchants/{merchant_id}/settlement-accounts": {"get", "post"},
        "/v1/merchants/{merchant_id}/terminals": {"get", "post"},
        "/v1/merchants/{merchant_id}/terminals/{terminal_id}": {"get"},
        "/v1/merchants/{merchant_id}/terminals/{terminal_id}/status": {"patch"},
        "/v1/merchants/{merchant_id}/balances": {"get"},
        "/v1/terminals": {"get"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert methods <= set(paths[path]), path
    assert "MerchantCreate" in spec["components"]["schemas"]
    assert "account_number" not in spec["components"]["schemas"]["SettlementAccountPublic"][
        "properties"]
    docs = client.get("/docs")
    assert docs.status_code == 200


def test_merchant_created_over_the_api_is_audited(client: TestClient, ctx: ServiceContext,
                                                  operator: dict[str, str]) -> None:
    client.post("/v1/merchants", json=merchant_body(MID_A), headers=operator)
    with ctx.db.unit_of_work() as uow:
        events = uow.audit.recent()
    created = [e for e in events if e.action == "merchant.create"]
    assert len(created) == 1
    assert created[0].resource == f"merchant/{MID_A}"
    assert created[0].actor.startswith("key:")
    assert created[0].origin.startswith("api:")


def test_concurrent_creates_of_one_merchant_give_one_201_and_409s(
        client: TestClient, ctx: ServiceContext, operator: dict[str, str]) -> None:
    """Two operators racing to onboard the same id: never a 500, exactly one merchant."""
    barrier = threading.Barrier(6)
    statuses: list[int] = []
    codes: list[str] = []

    def create(n: int) -> None:
        barrier.wait()
        response = client.post("/v1/merchants", headers=operator,
                               json=merchant_body(MID_A, legal_name=f"Racer {n}"))
        statuses.append(response.status_code)
        if response.status_code != 201:
            codes.append(response.json()["error"]["code"])

    threads = [threading.Thread(target=create, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(201) == 1, statuses
    assert set(codes) == {"already_exists"}
    assert row_counts(ctx)["merchants"] == 1
    assert [e.action for e in audit_events(ctx)].count("merchant.create") == 1


def audit_events(ctx: ServiceContext) -> list[Any]:
    with ctx.db.unit_of_work() as uow:
        return list(uow.audit.recent())
