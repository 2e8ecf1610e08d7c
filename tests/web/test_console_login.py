"""Logging in to the console: right and wrong passwords, the lock-out, session expiry,
logout, the cookies' flags, and the audit trail of each."""

from __future__ import annotations

import pytest
from consoletools import PASSWORD, ConsoleWorld, csrf_of, login
from fastapi.testclient import TestClient
from jobtools import ClockLike as FakeClock

from autosettle.services import users
from autosettle.services.context import SYSTEM, ServiceContext


def _audit(ctx: ServiceContext) -> list[tuple[str, str, str]]:
    with ctx.db.unit_of_work() as uow:
        return [(e.actor, e.action, e.outcome) for e in reversed(uow.audit.recent(200))
                if e.action.startswith("console.")]


def _settings(ctx: ServiceContext, **values: object) -> None:
    ctx.settings = ctx.settings.model_copy(update=values)


def test_login_opens_the_dashboard(console: TestClient, world: ConsoleWorld,
                                   ctx: ServiceContext) -> None:
    assert console.get("/", follow_redirects=False).headers["location"] == "/console/"
    first = console.get("/console/", follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"].startswith("/console/login")
    status, csrf = login(console, "ops")
    assert status == 303 and csrf
    page = console.get("/console/")
    assert 'data-testid="chart-volume"' in page.text
    assert 'data-testid="current-user"' in page.text
    assert _audit(ctx) == [("user:ops", "console.login", "ok")]


def test_cookies_are_httponly_lax_and_secure_when_configured(
        console: TestClient, world: ConsoleWorld, ctx: ServiceContext) -> None:
    form = console.get("/console/login")
    answer = console.post("/console/login", data={
        "username": "ops", "password": PASSWORD, "csrf_token": csrf_of(form.text)},
        follow_redirects=False)
    cookie = next(c for c in answer.headers.get_list("set-cookie")
                  if c.startswith("as_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    _settings(ctx, console_cookie_secure=True)
    form = console.get("/console/login")
    assert "Secure" in form.headers["set-cookie"]


def test_wrong_password_and_unknown_user_get_one_answer(
        console: TestClient, world: ConsoleWorld, ctx: ServiceContext) -> None:
    wrong, _ = login(console, "ops", "not the password")
    unknown, _ = login(console, "nobody", PASSWORD)
    assert wrong == unknown == 401
    assert console.get("/console/", follow_redirects=False).status_code == 303
    assert _audit(ctx) == [("user:ops", "console.login", "bad_credentials"),
                           ("user:nobody", "console.login", "bad_credentials")]


def test_login_form_without_its_token_is_refused(console: TestClient,
                                                 world: ConsoleWorld,
                                                 ctx: ServiceContext) -> None:
    console.get("/console/login")
    answer = console.post("/console/login", data={"username": "ops", "password": PASSWORD},
                          follow_redirects=False)
    assert answer.status_code == 403
    assert 'data-testid="error-banner"' in answer.text
    assert _audit(ctx) == []  # no login was even tried


def test_lock_out_after_repeated_failures_then_the_lock_expires(
        console: TestClient, world: ConsoleWorld, ctx: ServiceContext,
        clock: FakeClock) -> None:
    _settings(ctx, console_login_attempts_max=3, console_lockout_s=600)
    for _ in range(3):
        assert login(console, "shop1", "wrong password!")[0] == 401
    status, _ = login(console, "shop1")  # the right password, but locked
    assert status == 403
    assert users.get_user(ctx, SYSTEM, "shop1").locked_until is not None
    clock.advance(seconds=599)
    assert login(console, "shop1")[0] == 403
    clock.advance(seconds=2)
    assert login(console, "shop1")[0] == 303
    assert _audit(ctx) == [
        ("user:shop1", "console.login", "bad_credentials"),
        ("user:shop1", "console.login", "bad_credentials"),
        ("user:shop1", "console.login", "bad_credentials"),
        ("system", "console.lock", "ok"),
        ("user:shop1", "console.login", "locked"),
        ("user:shop1", "console.login", "locked"),
        ("user:shop1", "console.login", "ok"),
    ]


def test_a_password_reset_unlocks_and_ends_sessions(console: TestClient, world: ConsoleWorld,
                                                    ctx: ServiceContext) -> None:
    _settings(ctx, console_login_attempts_max=1)
    assert login(console, "shop2")[0] == 303
    other = TestClient(console.app)
    assert login(other, "shop2", "wrong password!")[0] == 401  # locks at once
    assert login(other, "shop2")[0] == 403  # locked
    users.reset_password(ctx, SYSTEM, "shop2", "a brand new password")
    assert users.get_user(ctx, SYSTEM, "shop2").locked_until is None
    assert console.get("/console/", follow_redirects=False).status_code == 303  # ended
    _settings(ctx, console_login_attempts_max=5)
    assert login(console, "shop2", PASSWORD)[0] == 401
    assert login(console, "shop2", "a brand new password")[0] == 303


@pytest.mark.parametrize("kind", ["idle", "absolute"])
def test_sessions_expire(console: TestClient, world: ConsoleWorld, ctx: ServiceContext,
                         clock: FakeClock, kind: str) -> None:
    _settings(ctx, console_session_idle_s=600, console_session_max_s=3600)
    assert login(console, "ops")[0] == 303
    if kind == "idle":
        clock.advance(seconds=599)
        assert console.get("/console/merchants", follow_redirects=False).status_code == 200
        clock.advance(seconds=601)  # used at 599 s: idle until 1199 s
    else:
        for _ in range(7):  # busy all along: each visit keeps it alive, up to an hour
            clock.advance(seconds=500)
            assert console.get("/console/merchants",
                               follow_redirects=False).status_code == 200
        clock.advance(seconds=101)
    answer = console.get("/console/merchants", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login?next=/console/merchants"


def test_logout_ends_the_session(console: TestClient, world: ConsoleWorld,
                                 ctx: ServiceContext) -> None:
    _, csrf = login(console, "shop1")
    stolen = dict(console.cookies)
    refused = console.post("/console/logout", follow_redirects=False)  # no CSRF token
    assert refused.status_code == 403
    assert console.get("/console/", follow_redirects=False).status_code == 200
    done = console.post("/console/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303
    replay = TestClient(console.app, cookies=stolen)  # the old cookie opens nothing
    assert replay.get("/console/", follow_redirects=False).status_code == 303
    assert _audit(ctx)[-1] == ("user:shop1", "console.logout", "ok")


def test_a_tampered_cookie_opens_nothing(console: TestClient, world: ConsoleWorld) -> None:
    login(console, "ops")
    value = console.cookies["as_session"]
    token, _, signature = value.rpartition(".")
    forged = TestClient(console.app, cookies={"as_session": f"{token}x.{signature}"})
    assert forged.get("/console/", follow_redirects=False).status_code == 303


def test_login_redirects_only_inside_the_console(console: TestClient,
                                                 world: ConsoleWorld) -> None:
    for target, expected in [("/console/payouts", "/console/payouts"),
                             ("https://evil.example/", "/console/"),
                             ("//evil.example/console/", "/console/")]:
        form = console.get("/console/login")
        answer = console.post("/console/login", data={
            "username": "ops", "password": PASSWORD, "csrf_token": csrf_of(form.text),
            "next": target}, follow_redirects=False)
        assert answer.headers["location"] == expected
