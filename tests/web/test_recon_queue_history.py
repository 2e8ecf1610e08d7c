"""The discrepancy queue's filters are the database's, paged by id, however many rows there
are (the console, ``/v1/recon/discrepancies`` and ``autosettle recon discrepancies``); a
discrepancy's history is every audit record of it, however many others the log holds
(docs/console.md). Both databases."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import pytest
from consoletools import ConsoleWorld, login
from fastapi.testclient import TestClient
from jobtools import cli_invoker

from autosettle.domain.access_records import AuditEvent
from autosettle.domain.errors import NotFoundError, ValidationError
from autosettle.services import apikeys, audit, recon
from autosettle.services.context import SYSTEM, Principal, Role, ServiceContext
from autosettle.store.tables import recon_discrepancies
from autosettle.web.pages_recon import PAGE

DAY = date(2026, 9, 18)
CHANNEL = "issuer-sim"
ROWS = 10_100   # more than the 10,000 rows the queue's owner filter used to scan
ROW_ID = re.compile(r'data-testid="recon-queue-row" data-discrepancy-id="(\d+)"')
NEXT = re.compile(r'data-testid="next-page" href="[^"]*?after=(\d+)"')


def _owner(i: int) -> str | None:
    """alice owns every 500th row and the last 60 (beyond the old scan); bob and nobody
    the rest."""
    if i % 500 == 0 or i >= ROWS - 60:
        return "alice"
    return "bob" if i % 2 else None


def _plant(ctx: ServiceContext, n: int, owner: Any = _owner) -> list[int]:
    """``n`` open "theirs only" discrepancies of DAY, inserted in one statement; their ids."""
    now = ctx.now()
    rows = [{"channel": CHANNEL, "business_date": DAY, "klass": "theirs_only",
             "their_amount_minor": 1_000 + i, "their_fee_minor": 6, "currency": "CNY",
             "state": "open", "owner": owner(i), "created_at": now} for i in range(n)]
    d = recon_discrepancies.c
    with ctx.db.unit_of_work() as uow:
        uow.connection.execute(recon_discrepancies.insert(), rows)
        ids = [int(r[0]) for r in uow.connection.execute(
            recon_discrepancies.select().with_only_columns(d.discrepancy_id)
            .order_by(d.discrepancy_id))]
    assert len(ids) == n
    return ids


@pytest.fixture
def planted(ctx: ServiceContext) -> tuple[list[int], list[int]]:
    """(every id, alice's ids in order)."""
    ids = _plant(ctx, ROWS)
    alices = [ids[i] for i in range(ROWS) if _owner(i) == "alice"]
    assert len(alices) > PAGE and alices[-1] == ids[-1]
    return ids, alices


def test_the_console_queue_filters_by_owner_in_sql_page_after_page(
        console: TestClient, world: ConsoleWorld,
        planted: tuple[list[int], list[int]]) -> None:
    _, alices = planted
    assert login(console, "ops")[0] == 303
    seen: list[int] = []
    url = "/console/recon/discrepancies?owner=alice"
    pages = 0
    while True:
        page = console.get(url)
        assert page.status_code == 200, page.text
        found = [int(x) for x in ROW_ID.findall(page.text)]
        assert 0 < len(found) <= PAGE
        seen += found
        pages += 1
        following = NEXT.search(page.text)
        if following is None:
            break
        assert int(following.group(1)) == found[-1]
        assert 'data-testid="first-page"' in page.text or pages == 1
        url = f"/console/recon/discrepancies?owner=alice&after={following.group(1)}"
    assert seen == alices
    assert pages == -(-len(alices) // PAGE)
    # with the other filters: alice's open ones of the day, none resolved
    both = console.get(f"/console/recon/discrepancies?owner=alice&date={DAY}&state=open"
                       f"&channel={CHANNEL}&klass=theirs_only")
    assert [int(x) for x in ROW_ID.findall(both.text)] == alices[:PAGE]
    resolved = console.get("/console/recon/discrepancies?owner=alice&state=resolved")
    assert ROW_ID.findall(resolved.text) == []
    assert console.get("/console/recon/discrepancies?after=-1").status_code == 422


def test_the_api_and_cli_filter_by_owner_and_page_by_id(
        ctx: ServiceContext, client: TestClient, planted: tuple[list[int], list[int]],
        cli_data_dir: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ids, alices = planted
    key = apikeys.create_api_key(ctx, SYSTEM, Role.OPERATOR, "ops").key
    headers = {"Authorization": f"Bearer {key}"}
    seen: list[int] = []
    after: int | None = None
    while True:
        query = "owner=alice&limit=40" + (f"&after={after}" if after is not None else "")
        answer = client.get(f"/v1/recon/discrepancies?{query}", headers=headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        seen += [d["discrepancy_id"] for d in body["items"]]
        assert all(d["owner"] == "alice" for d in body["items"])
        after = body["next_after"]
        if after is None:
            break
        assert after == seen[-1]
    assert seen == alices
    everyone = client.get(f"/v1/recon/discrepancies?limit=1000&after={ids[-1001]}",
                          headers=headers).json()
    assert [d["discrepancy_id"] for d in everyone["items"]] == ids[-1000:]
    assert everyone["next_after"] is None
    assert client.get("/v1/recon/discrepancies?owner=", headers=headers).status_code == 422
    # the command line, on the same database
    for name, value in (("DATABASE_URL", ctx.settings.effective_database_url),
                        ("PAN_TOKEN_KEY", ctx.settings.pan_token_key.get_secret_value()),
                        ("DATA_KEY", ctx.settings.data_key.get_secret_value())):
        monkeypatch.setenv(f"AUTOSETTLE_{name}", value)
    cli = cli_invoker()
    shown = json.loads(cli("recon", "discrepancies", "--owner", "alice", "--limit", "5000",
                           "--json").stdout)
    assert [d["discrepancy_id"] for d in shown] == alices
    tail = json.loads(cli("recon", "discrepancies", "--owner", "alice", "--after",
                          str(alices[-3]), "--json").stdout)
    assert [d["discrepancy_id"] for d in tail] == alices[-2:]


def test_the_service_checks_its_arguments(ctx: ServiceContext) -> None:
    for bad in ({"owner": ""}, {"owner": "x" * 101}, {"limit": 0}, {"limit": 5001}):
        with pytest.raises(ValidationError):
            recon.list_discrepancies(ctx, SYSTEM, **bad)


def test_history_is_every_record_of_the_object_after_300_others(
        console: TestClient, ctx: ServiceContext, world: ConsoleWorld) -> None:
    mine, *others = _plant(ctx, 4, owner=lambda i: None)
    recon.assign(ctx, SYSTEM, mine, "alice")
    recon.assign(ctx, SYSTEM, others[0], "bob")
    with ctx.db.unit_of_work() as uow:   # 300 more records of the same actions, newer
        for n in range(300):
            action = ("recon.discrepancy.assign", "recon.discrepancy.accept")[n % 2]
            uow.audit.append(AuditEvent(ctx.now(), "user:ops", action,
                                        f"recon/discrepancies/{others[n % 3]}", "console",
                                        "ok", {"n": n}))
    recon.assign(ctx, SYSTEM, mine, "carol")
    recon.resolve(ctx, SYSTEM, mine, "accept", "a test line")
    events = audit.history(ctx, SYSTEM, f"recon/discrepancies/{mine}")
    assert [(e.action, (e.detail or {}).get("owner")) for e in events] == [
        ("recon.discrepancy.assign", "alice"), ("recon.discrepancy.assign", "carol"),
        ("recon.discrepancy.accept", None)]
    assert all(e.resource == f"recon/discrepancies/{mine}" for e in events)
    assert audit.history(ctx, SYSTEM, "recon/discrepancies/0") == []
    merchant = Principal(actor="user:shop1", role=Role.MERCHANT, origin="console",
                         merchant_id="898310054110001")
    with pytest.raises(NotFoundError):
        audit.history(ctx, merchant, f"recon/discrepancies/{mine}")
    with pytest.raises(ValidationError):
        audit.history(ctx, SYSTEM, "x", limit=0)
    assert login(console, "ops")[0] == 303
    page = console.get(f"/console/recon/discrepancies/{mine}")
    assert page.status_code == 200
    rows = re.findall(r'<tr data-testid="recon-history-row">(.*?)</tr>', page.text)
    assert len(rows) == 3, rows
    assert "recon.discrepancy.assign" in rows[0] and "alice" in rows[0]
    assert "carol" in rows[1] and "recon.discrepancy.accept" in rows[2]
