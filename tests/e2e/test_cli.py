"""The ``autosettle`` command line, end to end on an embedded SQLite file."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from apitools import row_counts
from jobtools import cli_invoker
from sqlalchemy import create_engine, func, select
from typer.testing import CliRunner, Result

from autosettle.cli import app
from autosettle.config import get_settings
from autosettle.domain.errors import AuthError
from autosettle.services import apikeys, merchants
from autosettle.services.context import SYSTEM, Role, ServiceContext, build_context
from autosettle.simulators import demo_seed as demo
from autosettle.simulators.demo_seed import DEMO_MERCHANTS
from autosettle.store.tables import metadata

Invoke = Callable[..., Result]
MID = "898310099990001"


@pytest.fixture
def db_path(cli_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data directory; the CLI reads its settings from the environment."""
    path = cli_data_dir / "autosettle.db"
    monkeypatch.setenv("AUTOSETTLE_DATABASE_URL", f"sqlite:///{path}")
    return path


@pytest.fixture
def cli(db_path: Path) -> Invoke:
    run = cli_invoker()

    def invoke(*args: str, ok: bool = True) -> Result:
        result: Result = run(*args, code=0 if ok else None)
        return result

    return invoke


@pytest.fixture
def migrated(cli: Invoke) -> Invoke:
    cli("db", "upgrade")
    return cli


def counts(db_path: Path) -> dict[str, int]:
    engine = create_engine(f"sqlite:///{db_path}")
    try:
        with engine.connect() as conn:
            return {t.name: int(conn.execute(select(func.count()).select_from(t)).scalar() or 0)
                    for t in metadata.sorted_tables}
    finally:
        engine.dispose()


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def test_db_upgrade_creates_the_database(cli: Invoke, db_path: Path) -> None:
    result = cli("db", "upgrade")
    assert "database up to date" in result.stdout
    assert db_path.exists()
    assert set(counts(db_path).values()) == {0}
    cli("db", "upgrade")  # twice is harmless


def test_demo_seed_once_is_idempotent(migrated: Invoke, db_path: Path) -> None:
    first = as_json(migrated("demo", "seed", "--once", "--json"))
    after_first = counts(db_path)
    second = as_json(migrated("demo", "seed", "--once", "--json"))
    assert second == first
    assert counts(db_path) == after_first
    assert after_first["merchants"] == len(DEMO_MERCHANTS)
    assert after_first["terminals"] == sum(len(d.terminals) for d in DEMO_MERCHANTS)
    assert after_first["settlement_accounts"] == len(DEMO_MERCHANTS)
    assert set(first) == {"operator"} | {f"merchant:{d.merchant.merchant_id}"
                                         for d in DEMO_MERCHANTS} | {
        f"terminal:{d.merchant.merchant_id}:{t.terminal_id}"
        for d in DEMO_MERCHANTS for t in d.terminals}
    assert after_first["api_keys"] == len(first)
    # the keys work, with the roles their names say
    ctx = build_context(get_settings())
    try:
        assert apikeys.authenticate(ctx, first["operator"]).role is Role.OPERATOR
        mid = DEMO_MERCHANTS[1].merchant.merchant_id
        who = apikeys.authenticate(ctx, first[f"merchant:{mid}"])
        assert (who.role, who.merchant_id) == (Role.MERCHANT, mid)
    finally:
        ctx.db.dispose()
        get_settings.cache_clear()
    # the table form prints the same keys
    table = migrated("demo", "seed", "--once").stdout
    assert all(key in table for key in first.values())


def test_merchants_add_and_list(migrated: Invoke) -> None:
    added = as_json(migrated("merchants", "add", "--merchant-id", MID, "--legal-name",
                             "CLI Test Co", "--mcc", "5812", "--type", "individual",
                             "--cycle", "D0", "--single-limit-minor", "500000", "--json"))
    assert added["merchant_id"] == MID
    assert (added["merchant_type"], added["mcc"], added["settlement_cycle"]) == \
        ("individual", "5812", "D0")
    assert added["single_limit_minor"] == 500_000
    created = datetime.fromisoformat(added["created_at"])  # ISO 8601, as the API writes it
    assert "T" in added["created_at"] and created.tzinfo is not None
    listed = as_json(migrated("merchants", "list", "--json"))
    assert [m["merchant_id"] for m in listed] == [MID]
    assert listed[0]["legal_name"] == "CLI Test Co"
    assert MID in migrated("merchants", "list").stdout


def test_terminals_add_and_list(migrated: Invoke) -> None:
    migrated("merchants", "add", "--merchant-id", MID, "--legal-name", "CLI Test Co",
             "--mcc", "5411")
    added = as_json(migrated("terminals", "add", "--merchant-id", MID, "--terminal-id",
                             "CLI00001", "--serial-no", "SN-1", "--model", "PAX A920",
                             "--json"))
    assert (added["terminal_id"], added["serial_no"], added["status"]) == \
        ("CLI00001", "SN-1", "active")
    migrated("terminals", "add", "--merchant-id", MID, "--terminal-id", "CLI00002")
    listed = as_json(migrated("terminals", "list", "--merchant-id", MID, "--json"))
    assert [t["terminal_id"] for t in listed] == ["CLI00001", "CLI00002"]
    assert [t["terminal_id"] for t in as_json(migrated("terminals", "list", "--json"))] == \
        ["CLI00001", "CLI00002"]


def test_apikeys_create(migrated: Invoke) -> None:
    migrated("merchants", "add", "--merchant-id", MID, "--legal-name", "CLI Test Co",
             "--mcc", "5411")
    issued = as_json(migrated("apikeys", "create", "--role", "merchant", "--name", "shop",
                              "--merchant-id", MID, "--json"))
    assert issued["role"] == "merchant" and issued["merchant_id"] == MID
    assert issued["key"].startswith(f"ask_{issued['key_id']}_")
    ctx = build_context(get_settings())
    try:
        who = apikeys.authenticate(ctx, issued["key"])
    finally:
        ctx.db.dispose()
        get_settings.cache_clear()
    assert (who.role, who.merchant_id) == (Role.MERCHANT, MID)
    table = migrated("apikeys", "create", "--role", "operator", "--name", "ops").stdout
    assert "ask_" in table
    revoked = as_json(migrated("apikeys", "revoke", issued["key_id"], "--json"))
    assert revoked == {"key_id": issued["key_id"], "revoked": True}
    ctx = build_context(get_settings())
    try:
        with pytest.raises(AuthError):
            apikeys.authenticate(ctx, issued["key"])
    finally:
        ctx.db.dispose()
        get_settings.cache_clear()


BAD_COMMANDS: list[tuple[list[str], str]] = [
    (["merchants", "add", "--merchant-id", "short", "--legal-name", "X", "--mcc", "5411"],
     "validation_failed"),
    (["merchants", "add", "--merchant-id", MID, "--legal-name", "   ", "--mcc", "5411"],
     "validation_failed"),
    (["merchants", "add", "--merchant-id", MID, "--legal-name", "X" * 300, "--mcc", "5411"],
     "validation_failed"),
    (["merchants", "add", "--merchant-id", MID, "--legal-name", "X", "--mcc", "54"],
     "validation_failed"),
    (["merchants", "add", "--merchant-id", MID, "--legal-name", "X", "--mcc", "５４１１"],
     "validation_failed"),
    (["merchants", "add", "--merchant-id", MID, "--legal-name", "X", "--mcc", "5411",
      "--single-limit-minor", "-5"], "invalid_amount"),
    (["merchants", "add", "--merchant-id", MID, "--legal-name", "X", "--mcc", "5411",
      "--single-limit-minor", "0"], "invalid_amount"),
    (["merchants", "add", "--merchant-id", MID, "--legal-name", "X", "--mcc", "5411",
      "--type", "company"], "company"),
    (["terminals", "add", "--merchant-id", "898310099990009", "--terminal-id", "CLI00001"],
     "not_found"),
    (["terminals", "add", "--merchant-id", MID, "--terminal-id", "CLI1"],
     "validation_failed"),
    (["terminals", "list", "--merchant-id", "898310099990009"], "not_found"),
    (["apikeys", "create", "--role", "merchant", "--name", "x"], "validation_failed"),
    (["apikeys", "create", "--role", "merchant", "--name", "x", "--merchant-id",
      "898310099990009"], "not_found"),
    (["apikeys", "create", "--role", "root", "--name", "x"], "root"),
    (["merchants", "add-account", "--merchant-id", MID, "--bank-name", "B",
      "--account-number", "12ab", "--holder-name", "X"], "validation_failed"),
]


def test_invalid_input_exits_non_zero_and_writes_nothing(migrated: Invoke,
                                                         db_path: Path) -> None:
    migrated("merchants", "add", "--merchant-id", MID, "--legal-name", "CLI Test Co",
             "--mcc", "5411", "--type", "enterprise")
    before = counts(db_path)
    for args, expected in BAD_COMMANDS:
        result = migrated(*args, ok=False)
        assert result.exit_code != 0, args
        assert expected in result.output, (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), args
    assert counts(db_path) == before
    # an enterprise settles to its own corporate account only
    result = migrated("merchants", "add-account", "--merchant-id", MID, "--bank-name", "B",
                      "--account-number", "6222000011112222", "--holder-name", "CLI Test Co",
                      "--account-type", "personal", ok=False)
    assert result.exit_code == 2 and "validation_failed" in result.output
    assert counts(db_path) == before


def test_commands_before_db_upgrade_fail_cleanly(cli: Invoke) -> None:
    result = cli("merchants", "list", "--json", ok=False)
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception


# -- the demo data set, on both databases -------------------------------------------------
def test_seed_twice_creates_nothing_new(ctx: ServiceContext) -> None:
    keys = demo.seed(ctx)
    before = row_counts(ctx)
    assert demo.seed(ctx) == keys
    assert row_counts(ctx) == before
    assert before["merchants"] == len(DEMO_MERCHANTS)
    assert before["api_keys"] == len(keys)


def test_seed_completes_an_interrupted_run(ctx: ServiceContext) -> None:
    first = DEMO_MERCHANTS[0]
    merchants.create_merchant(ctx, SYSTEM, first.merchant)  # then the process died
    merchants.add_terminal(ctx, SYSTEM, first.merchant.merchant_id, first.terminals[0])
    keys = demo.seed(ctx)
    counts_now = row_counts(ctx)
    assert counts_now["merchants"] == len(DEMO_MERCHANTS)
    assert counts_now["settlement_accounts"] == len(DEMO_MERCHANTS)
    assert counts_now["terminals"] == sum(len(d.terminals) for d in DEMO_MERCHANTS)
    assert apikeys.authenticate(ctx, keys["operator"]).role is Role.OPERATOR


@pytest.mark.parametrize("content", ['{"operator": "ask_nope_nope"}', "not json", "{}"])
def test_seed_replaces_a_keys_file_that_does_not_fit(ctx: ServiceContext, content: str
                                                    ) -> None:
    demo.seed(ctx)
    demo.keys_file(ctx).write_text(content)
    keys = demo.seed(ctx)
    assert json.loads(demo.keys_file(ctx).read_text()) == keys
    for key in keys.values():
        apikeys.authenticate(ctx, key)
    assert demo.seed(ctx) == keys


def test_seed_replaces_revoked_keys(ctx: ServiceContext) -> None:
    keys = demo.seed(ctx)
    apikeys.revoke_api_key(ctx, SYSTEM, keys["operator"].split("_")[1])
    fresh = demo.seed(ctx)
    assert fresh["operator"] != keys["operator"]
    assert apikeys.authenticate(ctx, fresh["operator"]).role is Role.OPERATOR


# -- issue 9, defect 11 -------------------------------------------------------------------

def test_demo_seed_prints_where_the_keys_really_are(migrated: Invoke, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setenv("AUTOSETTLE_DATA_DIR", str(elsewhere))
    shown = migrated("demo", "seed").stdout
    path = elsewhere / "demo-keys.json"
    assert path.exists()
    assert f"(also in {path})" in shown
    assert "var/demo-keys.json" not in shown


def test_terminal_commands_check_what_they_are_given_before_anything(
        migrated: Invoke, db_path: Path) -> None:
    migrated("merchants", "add", "--merchant-id", MID, "--legal-name", "CLI Test Co",
             "--mcc", "5411")
    migrated("terminals", "add", "--merchant-id", MID, "--terminal-id", "CLI00001")
    migrated("terminals", "provision", "--merchant-id", MID, "--terminal-id", "CLI00001",
             "--json")
    runner = CliRunner()

    def run(*args: str, answer: str = "") -> Result:
        get_settings.cache_clear()
        result = runner.invoke(app, list(args), input=answer)
        get_settings.cache_clear()
        assert result.exception is None or isinstance(result.exception, SystemExit), args
        return result

    def key_status() -> str:
        shown = as_json(migrated("terminals", "status", "--merchant-id", MID, "--json"))
        return str(shown[0]["key_status"])

    before = counts(db_path)
    for terminal_id, code in (("CLI00009", "not_found"), ("CLI0000!", "validation_failed")):
        # the terminal is looked up first: an error, and no question asked (nor answered)
        refused = run("terminals", "reset-tmk", "--merchant-id", MID, "--terminal-id",
                      terminal_id, answer="y\n")
        assert refused.exit_code == 2 and code in refused.output, refused.output
        assert "Reset the TMK" not in refused.output
    for args, code in ((["batch-flags", "--merchant-id", "xx"], "validation_failed"),
                       (["batch-flags", "--merchant-id", "898310099990009"], "not_found"),
                       (["status", "--merchant-id", "xx"], "validation_failed"),
                       (["status", "--merchant-id", "898310099990009"], "not_found")):
        refused = run("terminals", *args)
        assert refused.exit_code == 2 and code in refused.output, (args, refused.output)
    kept = run("terminals", "reset-tmk", "--merchant-id", MID, "--terminal-id", "CLI00001",
               answer="n\n")
    assert kept.exit_code == 1 and "Reset the TMK of terminal CLI00001" in kept.output
    assert counts(db_path) == before and key_status() == "active"
    assert as_json(migrated("terminals", "batch-flags", "--merchant-id", MID, "--json")) == []

    reset = run("terminals", "reset-tmk", "--merchant-id", MID, "--terminal-id", "CLI00001",
                answer="y\n")
    assert reset.exit_code == 0 and "TMK reset" in reset.output, reset.output
    assert key_status() != "active"
