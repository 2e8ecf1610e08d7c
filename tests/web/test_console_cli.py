"""``autosettle users create|reset-password|list`` (the password from standard input, never
printed) and the demo seed's console logins, on both databases."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from consoletools import login
from fastapi.testclient import TestClient
from jobtools import cli_invoker
from typer.testing import Result

from autosettle.api.app import create_app
from autosettle.config import get_settings
from autosettle.services import console_sessions
from autosettle.services.context import build_context
from autosettle.simulators import demo_seed
from autosettle.web.app import mount_console

Invoke = Callable[..., Result]
SECRET = "s3cret password here"


@pytest.fixture
def cli(cli_data_dir: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    monkeypatch.setenv("AUTOSETTLE_DATABASE_URL", db_url)
    run = cli_invoker()

    def invoke(*args: str, stdin: str | None = None, ok: bool = True) -> Result:
        result: Result = run(*args, code=0 if ok else None, stdin=stdin)
        return result

    return invoke


def test_users_create_reset_list(cli: Invoke) -> None:
    cli("demo", "seed", "--once")
    made = cli("users", "create", "finance1", "--role", "operator", "--password-stdin",
               stdin=SECRET + "\n")
    assert "finance1" in made.output and SECRET not in made.output
    prompt = cli("users", "create", "clerk1", "--role", "merchant", "--merchant-id",
                 "898310054110001", stdin=f"{SECRET}\n{SECRET}\n")
    assert SECRET not in prompt.output
    assert cli("users", "create", "finance1", "--role", "operator", "--password-stdin",
               stdin=SECRET + "\n", ok=False).exit_code != 0
    short = cli("users", "create", "x2y", "--role", "operator", "--password-stdin",
                stdin="short\n", ok=False)
    assert short.exit_code != 0 and "password" in short.output
    orphan = cli("users", "create", "nomerchant", "--role", "merchant", "--password-stdin",
                 stdin=SECRET + "\n", ok=False)
    assert orphan.exit_code != 0
    listed = cli("users", "list").output
    for name in ("finance1", "clerk1", "operator", "hualian", "laowang", "kangjian"):
        assert name in listed
    assert "argon2" not in listed and SECRET not in listed
    reset = cli("users", "reset-password", "finance1", "--password-stdin",
                stdin="another password 2\n")
    assert "reset" in reset.output and "another password 2" not in reset.output
    ctx = build_context(get_settings())
    try:
        assert console_sessions.login(ctx, "finance1", SECRET, "test").outcome != "ok"
        assert console_sessions.login(ctx, "finance1", "another password 2",
                                      "test").outcome == "ok"
        assert console_sessions.login(ctx, "clerk1", SECRET, "test").outcome == "ok"
    finally:
        ctx.db.dispose()
    get_settings.cache_clear()


def test_demo_logins_work_and_see_their_merchant(cli: Invoke) -> None:
    cli("demo", "seed", "--once")
    cli("demo", "seed", "--once")  # idempotent: no second user
    ctx = build_context(get_settings())
    try:
        with TestClient(mount_console(create_app(ctx), ctx)) as client:
            for user in demo_seed.DEMO_USERS:
                client.cookies.clear()
                assert login(client, user.username, user.password)[0] == 303
                page = client.get("/console/merchants").text
                if user.merchant_id is None:
                    assert all(d.merchant.merchant_id in page
                               for d in demo_seed.DEMO_MERCHANTS)
                else:
                    shown = [d.merchant.merchant_id for d in demo_seed.DEMO_MERCHANTS
                             if d.merchant.merchant_id in page]
                    assert shown == [user.merchant_id]
    finally:
        ctx.db.dispose()
    get_settings.cache_clear()
