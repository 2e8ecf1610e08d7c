"""``autosettle ledger checkpoint [--verify]`` end to end on an embedded SQLite file."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from jobtools import cli_invoker
from sqlalchemy import update
from typer.testing import Result

from autosettle.cli.wiring import channel_for
from autosettle.config import get_settings
from autosettle.domain.ledger import Account, AccountType, transfer
from autosettle.domain.money import Money
from autosettle.services import alerts, ledger
from autosettle.services.context import SYSTEM, ServiceContext, build_context
from autosettle.store.tables import ledger_checkpoints

Invoke = Callable[..., Result]
MID = "898310054110001"
RECEIVABLE = Account(AccountType.CHANNEL_RECEIVABLE)
UNSETTLED = Account(AccountType.MERCHANT_UNSETTLED, MID)


@pytest.fixture
def cli(cli_data_dir: Path) -> Invoke:
    return cli_invoker()


@pytest.fixture
def ctx(cli: Invoke) -> Iterator[ServiceContext]:
    cli("db", "upgrade")
    settings = get_settings()
    context = build_context(settings, channel=channel_for(settings))
    yield context
    context.db.dispose()


def test_checkpoint_then_verify_then_tampered(cli: Invoke, ctx: ServiceContext) -> None:
    assert "no checkpoint yet" in cli("ledger", "checkpoint", "--verify").stdout
    ledger.post(ctx, transfer("k1", "sale", RECEIVABLE, UNSETTLED, Money(1234), MID))
    written = json.loads(cli("ledger", "checkpoint", "--json").stdout)
    assert written["created"] and written["accounts"] == 2
    assert "up to date" in cli("ledger", "checkpoint").stdout  # idempotent
    assert "every balance equals" in cli("ledger", "checkpoint", "--verify").stdout
    with ctx.db.unit_of_work() as uow:
        assert uow.ledger.balance(UNSETTLED.code, "CNY") == -1234
        assert uow.ledger.balance(RECEIVABLE.code, "CNY") == 1234
        uow.connection.execute(update(ledger_checkpoints)
                               .where(ledger_checkpoints.c.account_code == UNSETTLED.code)
                               .values(balance_minor=-1000))
    shown = json.loads(cli("ledger", "checkpoint", "--verify", "--json", code=1).stdout)
    assert not shown["ok"] and shown["mismatches"] == [
        {"account": UNSETTLED.code, "currency": "CNY", "checkpoint_minor": -1000,
         "lines_minor": -1234}]
    assert [a.kind for a in alerts.list_alerts(ctx, SYSTEM)] == [ledger.CHECKPOINT_MISMATCH]
