"""``autosettle risk``: the rule editor, a merchant's view, pre-registration and scoring from
the command line (SQLite file, as an operator runs it)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from jobtools import cli_invoker
from typer.testing import Result

MID = "898310099990001"
Invoke = Callable[..., Result]


@pytest.fixture
def cli(cli_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    monkeypatch.setenv("AUTOSETTLE_DATABASE_URL", f"sqlite:///{cli_data_dir}/autosettle.db")
    run = cli_invoker()

    def invoke(*args: str, ok: bool = True) -> Result:
        result: Result = run(*args, code=0 if ok else None)
        return result

    invoke("db", "upgrade")
    invoke("merchants", "add", "--merchant-id", MID, "--legal-name", "Lao Wang Noodles",
           "--mcc", "5812", "--type", "individual")
    return invoke


def test_rules_view_preregister_and_score(cli: Invoke) -> None:
    listed = json.loads(cli("risk", "rules", "--json").output)
    assert any(r["rule_id"] == "default:individual:single_max" for r in listed)
    saved = json.loads(cli("risk", "rule-set", "night", "--kind", "time_window", "--scope",
                           "mcc", "--value", "5812", "--params",
                           '{"start": "00:00", "end": "06:00"}', "--json").output)
    assert saved["version"] == 1
    bad = cli("risk", "rule-set", "x", "--kind", "velocity", "--params", "{}", ok=False)
    assert bad.exit_code == 2 and "validation_failed" in bad.output
    assert "night@2 is inactive" in cli("risk", "rule-off", "night").output
    made = json.loads(cli("risk", "preregister", MID, "--amount-minor", "9000000",
                          "--from", "2030-01-01T09:00", "--to", "2030-01-01T18:00",
                          "--json").output)
    assert made["status"] == "open"
    view = json.loads(cli("risk", "view", MID, "--json").output)
    assert {u["rule"] for u in view["limits"]} >= {"default:individual:single_max@0",
                                                  "default:individual:day_amount@0"}
    assert [p["prereg_id"] for p in view["preregistrations"]] == [made["prereg_id"]]
    assert json.loads(cli("risk", "score", "--date", "2026-09-18", "--json").output) == []
    assert "0 item(s)" not in cli("risk", "flagged").output
