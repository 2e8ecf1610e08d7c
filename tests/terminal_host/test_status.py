"""Heartbeat and status: the service, ``GET /v1/terminal-status`` and the CLI sub-app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hosttools import DEBIT, MID, OTHER_MID, OTHER_TID, PIN, TID
from rich.console import Console
from typer.testing import CliRunner

from autosettle.api.app import create_app
from autosettle.api.routes import terminal_status as status_route
from autosettle.cli import console as cli_console
from autosettle.cli import terminals as host_cli
from autosettle.services import apikeys
from autosettle.services import terminal_status as status_service
from autosettle.services.context import SYSTEM, Principal, Role, ServiceContext
from autosettle.simulators.terminal_client import TerminalClient


def _view(ctx: ServiceContext, terminal_id: str) -> status_service.TerminalStatusView:
    page = status_service.terminal_status(ctx, SYSTEM)
    return next(v for v in page.items if v.terminal_id == terminal_id)


def test_status_tracks_sign_on_messages_and_silence(shop: ServiceContext,
                                                    terminal: TerminalClient,
                                                    clock: Any) -> None:
    now = shop.now()
    view = _view(shop, TID)
    assert view.signed_on and view.key_status == "active" and view.key_generation == 1
    assert view.last_sign_on_at == now and view.software_version == "311301"
    assert not view.silent
    assert terminal.sale(DEBIT, 100, PIN).code == "00"
    assert _view(shop, TID).open_batch_no == "000001"
    other = _view(shop, OTHER_TID)
    assert other.key_status == "none" and not other.silent  # no TMK: not expected to talk
    clock.advance(seconds=shop.settings.terminal_silent_after_s + 1)
    assert _view(shop, TID).silent
    assert terminal.echo().code == "00"  # the heartbeat
    assert not _view(shop, TID).silent
    silent = status_service.terminal_status(shop, SYSTEM, silent_only=True, silent_after=0.5)
    assert [v.terminal_id for v in silent.items] == []


def test_merchants_see_their_own(shop: ServiceContext, terminal: TerminalClient) -> None:
    merchant = Principal("m", Role.MERCHANT, MID)
    page = status_service.terminal_status(shop, merchant)
    assert [v.terminal_id for v in page.items] == [TID]
    with pytest.raises(Exception, match="not found"):
        status_service.terminal_status(shop, merchant, OTHER_MID)


@pytest.fixture
def api(shop: ServiceContext) -> Iterator[TestClient]:
    app = create_app(shop)
    if not any(getattr(r, "path", "") == "/v1/terminal-status" for r in app.routes):
        app.include_router(status_route.router)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_rest_endpoint(shop: ServiceContext, terminal: TerminalClient,
                       api: TestClient) -> None:
    operator = apikeys.create_api_key(shop, SYSTEM, Role.OPERATOR, "ops").key
    merchant = apikeys.create_api_key(shop, SYSTEM, Role.MERCHANT, "shop", MID).key
    everyone = api.get("/v1/terminal-status",
                       headers={"Authorization": f"Bearer {operator}"})
    assert everyone.status_code == 200
    items = {i["terminal_id"]: i for i in everyone.json()["items"]}
    assert set(items) == {TID, OTHER_TID}
    assert items[TID]["signed_on"] is True and items[TID]["silent"] is False
    own = api.get("/v1/terminal-status", headers={"Authorization": f"Bearer {merchant}"})
    assert [i["terminal_id"] for i in own.json()["items"]] == [TID]
    hidden = api.get(f"/v1/terminal-status?merchant_id={OTHER_MID}",
                     headers={"Authorization": f"Bearer {merchant}"})
    assert hidden.status_code == 404
    assert api.get("/v1/terminal-status").status_code == 401


def test_cli_provision_status_reset(shop: ServiceContext,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_console, "context_factory", lambda: shop)
    monkeypatch.setattr(host_cli, "console", Console(width=200))
    runner = CliRunner()
    made = runner.invoke(host_cli.app, [
        "provision", "--merchant-id", OTHER_MID, "--terminal-id", OTHER_TID, "--mac", "x919",
        "--components", "3", "--json"])
    assert made.exit_code == 0, made.output
    shown = json.loads(made.output)
    assert len(shown["components"]) == 3 and shown["mac_algorithm"] == "x919"
    again = runner.invoke(host_cli.app, [
        "provision", "--merchant-id", OTHER_MID, "--terminal-id", OTHER_TID])
    assert again.exit_code == 2 and "active TMK" in again.output
    status = runner.invoke(host_cli.app, ["status", "--json"])
    rows = {r["terminal_id"]: r for r in json.loads(status.output)}
    assert rows[OTHER_TID]["key_status"] == "active" and rows[OTHER_TID]["silent"] is True
    table = runner.invoke(host_cli.app, ["status"])
    assert table.exit_code == 0 and "SILENT" in table.output
    reset = runner.invoke(host_cli.app, [
        "reset-tmk", "--merchant-id", OTHER_MID, "--terminal-id", OTHER_TID, "--yes"])
    assert reset.exit_code == 0, reset.output
    flags = runner.invoke(host_cli.app, ["batch-flags", "--json"])
    assert flags.exit_code == 0 and json.loads(flags.output) == []
