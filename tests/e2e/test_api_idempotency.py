"""Stripe-like ``Idempotency-Key``: a retry gets the first answer, never a second effect."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from apitools import MID_A, World, assert_error, bearer, row_counts
from fastapi.testclient import TestClient

from autosettle.domain.errors import (
    ConflictError,
    ErrorCode,
    InvariantViolation,
    ValidationError,
)
from autosettle.services import apikeys, idempotency
from autosettle.services import merchants as merchant_service
from autosettle.services.context import SYSTEM, Role, ServiceContext

NEW_MID = "898310099990001"
BODY: dict[str, Any] = {"merchant_id": NEW_MID, "legal_name": "Retry Co",
                        "merchant_type": "enterprise", "mcc": "5411"}


def post(client: TestClient, headers: dict[str, str], key: str, body: Any = None,
         path: str = "/v1/merchants") -> Any:
    return client.post(path, json=BODY if body is None else body,
                       headers={**headers, "Idempotency-Key": key})


def merchant_count(ctx: ServiceContext) -> int:
    return row_counts(ctx)["merchants"]


def test_same_key_same_body_replays_the_first_answer(client: TestClient, ctx: ServiceContext,
                                                     world: World) -> None:
    before = row_counts(ctx)
    first = post(client, world.operator, "k-1")
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    for _ in range(3):
        again = post(client, world.operator, "k-1")
        assert again.status_code == 201
        assert again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"
    after = row_counts(ctx)
    assert after["merchants"] == before["merchants"] + 1
    assert after["audit_log"] == before["audit_log"] + 1
    assert after["idempotency_records"] == before["idempotency_records"] + 1


def test_without_a_key_a_retry_is_a_new_request(client: TestClient, world: World) -> None:
    assert client.post("/v1/merchants", json=BODY, headers=world.operator).status_code == 201
    assert_error(client.post("/v1/merchants", json=BODY, headers=world.operator), 409,
                 "already_exists")


def test_same_key_different_request_is_a_conflict(client: TestClient, ctx: ServiceContext,
                                                  world: World) -> None:
    assert post(client, world.operator, "k-2").status_code == 201
    before = row_counts(ctx)
    other = {**BODY, "merchant_id": "898310099990002"}
    assert_error(post(client, world.operator, "k-2", other), 409, "idempotency_conflict")
    # the same body on another route is another request, too
    assert_error(post(client, world.operator, "k-2", {"terminal_id": "NEW00001"},
                      path=f"/v1/merchants/{MID_A}/terminals"), 409, "idempotency_conflict")
    assert_error(client.patch(f"/v1/merchants/{NEW_MID}/status", json={"status": "closed"},
                              headers={**world.operator, "Idempotency-Key": "k-2"}),
                 409, "idempotency_conflict")
    assert row_counts(ctx) == before
    assert client.get(f"/v1/merchants/{NEW_MID}",
                      headers=world.operator).json()["status"] == "active"


def test_keys_are_scoped_per_api_key(client: TestClient, ctx: ServiceContext,
                                     world: World) -> None:
    second_operator = bearer(apikeys.create_api_key(ctx, SYSTEM, Role.OPERATOR, "op2").key)
    first = post(client, world.operator, "shared")
    other = post(client, second_operator, "shared", {**BODY, "merchant_id": "898310099990002"})
    assert first.status_code == other.status_code == 201
    assert "idempotent-replayed" not in other.headers
    assert other.json()["merchant_id"] == "898310099990002"
    # each key still replays its own answer
    assert post(client, second_operator, "shared",
                {**BODY, "merchant_id": "898310099990002"}).content == other.content
    assert post(client, world.operator, "shared").content == first.content


def test_a_4xx_answer_is_replayed_too(client: TestClient, ctx: ServiceContext,
                                      world: World) -> None:
    path = f"/v1/merchants/{NEW_MID}/terminals"
    body = {"terminal_id": "NEW00001"}
    first = post(client, world.operator, "k-404", body, path=path)
    assert_error(first, 404, "not_found")
    # the merchant appears; a retry with the same key still gets the first answer
    assert post(client, world.operator, "create").status_code == 201
    again = post(client, world.operator, "k-404", body, path=path)
    assert again.status_code == 404 and again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    # a new key is a new request
    assert post(client, world.operator, "k-new", body, path=path).status_code == 201

    conflict = post(client, world.operator, "k-409")
    assert_error(conflict, 409, "already_exists")
    assert post(client, world.operator, "k-409").content == conflict.content


def test_a_request_refused_by_validation_is_not_recorded(client: TestClient,
                                                         ctx: ServiceContext,
                                                         world: World) -> None:
    """Like Stripe: a request that never started executing does not spend its key."""
    before = row_counts(ctx)
    assert_error(post(client, world.operator, "k-bad", {**BODY, "mcc": "x"}), 422,
                 "validation_failed")
    assert row_counts(ctx) == before
    assert post(client, world.operator, "k-bad").status_code == 201


def test_forbidden_and_foreign_requests_spend_no_key(client: TestClient, ctx: ServiceContext,
                                                     world: World) -> None:
    before = row_counts(ctx)
    assert_error(post(client, world.merchant_a, "k-x"), 403, "forbidden")
    assert row_counts(ctx)["merchants"] == before["merchants"]
    foreign = post(client, world.merchant_b, "k-y", {"terminal_id": "NEW00001"},
                   path=f"/v1/merchants/{MID_A}/terminals")
    assert_error(foreign, 404, "not_found")


def test_a_fault_releases_the_claim(client: TestClient, ctx: ServiceContext, world: World,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("disk on fire")

    with monkeypatch.context() as patch:
        patch.setattr(merchant_service, "create_merchant", broken)
        assert_error(post(client, world.operator, "k-fault"), 500, "internal_error")
    assert row_counts(ctx)["idempotency_records"] == 0

    def invariant(*_: Any, **__: Any) -> Any:
        raise InvariantViolation("bug")

    with monkeypatch.context() as patch:
        patch.setattr(merchant_service, "create_merchant", invariant)
        assert_error(post(client, world.operator, "k-fault"), 500, "internal_error")
    assert row_counts(ctx)["idempotency_records"] == 0
    retry = post(client, world.operator, "k-fault")
    assert retry.status_code == 201 and "idempotent-replayed" not in retry.headers


def test_a_request_in_progress_is_not_run_twice(client: TestClient, ctx: ServiceContext,
                                                world: World) -> None:
    """Another request holding the key: the retry is told to wait, nothing is created."""
    scope = world_scope(ctx, world.operator)
    content = idempotency.fingerprint("POST", "/v1/merchants",
                                      client.build_request("POST", "/v1/merchants",
                                                           json=BODY).content)
    assert idempotency.begin(ctx, scope, "k-busy", content) is None
    assert_error(post(client, world.operator, "k-busy"), 409, "idempotency_in_progress")
    assert_error(post(client, world.operator, "k-busy", {**BODY, "mcc": "5812"}), 409,
                 "idempotency_conflict")
    assert merchant_count(ctx) == 2
    idempotency.release(ctx, scope, "k-busy")
    assert post(client, world.operator, "k-busy").status_code == 201


def world_scope(ctx: ServiceContext, headers: dict[str, str]) -> str:
    key = headers["Authorization"].removeprefix("Bearer ")
    return apikeys.authenticate(ctx, key).actor


# -- the service directly: claims, release, stale takeover -----------------------------------
def test_claim_finish_and_replay(ctx: ServiceContext) -> None:
    assert idempotency.begin(ctx, "s", "k", "fp") is None
    idempotency.finish(ctx, "s", "k", 201, '{"ok": true}')
    replay = idempotency.begin(ctx, "s", "k", "fp")
    assert replay == idempotency.Replay(201, '{"ok": true}')
    with pytest.raises(ConflictError) as caught:
        idempotency.begin(ctx, "s", "k", "other")
    assert caught.value.code is ErrorCode.IDEMPOTENCY_CONFLICT
    # the same key in another scope is unrelated
    assert idempotency.begin(ctx, "other scope", "k", "other") is None
    # release never forgets a finished answer
    idempotency.release(ctx, "s", "k")
    assert idempotency.begin(ctx, "s", "k", "fp") == replay


def test_stale_claim_is_taken_over(ctx: ServiceContext, clock: Any) -> None:
    assert idempotency.begin(ctx, "s", "k", "fp") is None
    clock.advance(seconds=idempotency.CLAIM_STALE_S - 1)
    with pytest.raises(ConflictError) as caught:
        idempotency.begin(ctx, "s", "k", "fp")
    assert caught.value.code is ErrorCode.IDEMPOTENCY_IN_PROGRESS
    clock.advance(seconds=2)
    assert idempotency.begin(ctx, "s", "k", "fp") is None  # the dead request's claim
    with pytest.raises(ConflictError):  # now held by the new owner
        idempotency.begin(ctx, "s", "k", "fp")
    idempotency.finish(ctx, "s", "k", 200, "{}")
    clock.advance(seconds=idempotency.CLAIM_STALE_S * 10)
    assert idempotency.begin(ctx, "s", "k", "fp") == idempotency.Replay(200, "{}")
    # a stale claim with other content is still someone else's request
    assert idempotency.begin(ctx, "s", "k2", "fp") is None
    clock.advance(seconds=idempotency.CLAIM_STALE_S + 1)
    with pytest.raises(ConflictError) as caught:
        idempotency.begin(ctx, "s", "k2", "different")
    assert caught.value.code is ErrorCode.IDEMPOTENCY_CONFLICT


def test_released_claim_can_be_claimed_again(ctx: ServiceContext) -> None:
    assert idempotency.begin(ctx, "s", "k", "fp") is None
    idempotency.release(ctx, "s", "k")
    assert idempotency.begin(ctx, "s", "k", "another fp") is None


@pytest.mark.parametrize("key", ["", "a" * (idempotency.KEY_LENGTH_MAX + 1), "ключ", "a\nb"])
def test_bad_keys_are_refused(key: str) -> None:
    with pytest.raises(ValidationError) as caught:
        idempotency.check_key(key)
    assert caught.value.code is ErrorCode.VALIDATION_FAILED


def test_replay_survives_a_status_change(client: TestClient, world: World) -> None:
    url = f"/v1/merchants/{MID_A}/status"
    headers = {**world.operator, "Idempotency-Key": "suspend-1"}
    first = client.patch(url, json={"status": "suspended"}, headers=headers)
    assert first.json()["status"] == "suspended"
    assert client.patch(url, json={"status": "active"},
                        headers=world.operator).json()["status"] == "active"
    replay = client.patch(url, json={"status": "suspended"}, headers=headers)
    assert replay.content == first.content
    assert client.get(f"/v1/merchants/{MID_A}",
                      headers=world.operator).json()["status"] == "active"


def test_concurrent_retries_create_one_merchant(client: TestClient, ctx: ServiceContext,
                                                world: World) -> None:
    barrier = threading.Barrier(6)
    statuses: list[int] = []

    def retry() -> None:
        barrier.wait()
        statuses.append(post(client, world.operator, "k-race").status_code)

    threads = [threading.Thread(target=retry) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # each retry got the answer, or was told the first one is still running
    assert sorted(set(statuses)) <= [201, 409]
    assert 201 in statuses
    assert merchant_count(ctx) == 3
    final = post(client, world.operator, "k-race")
    assert final.status_code == 201 and final.headers["idempotent-replayed"] == "true"
