"""``autosettle recon ...`` end to end on an embedded SQLite file: import (twice, and a
truncated file), run, the queue, resolve, close, the summary as CSV and XLSX."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import pytest
from jobtools import cli_invoker
from typer.testing import Result

from autosettle.simulators.issuer import ClearingLine, write_acp_file

Invoke = Callable[..., Result]
DAY = date(2026, 9, 18)


@pytest.fixture
def cli(cli_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    monkeypatch.setenv("AUTOSETTLE_DATABASE_URL", f"sqlite:///{cli_data_dir / 'a.db'}")
    invoke: Invoke = cli_invoker()
    invoke("db", "upgrade")
    return invoke


def test_the_daily_routine(cli: Invoke, tmp_path: Path) -> None:
    lines = [ClearingLine("sale", f"{i:032x}", "898310054110001", "ST110001",
                          datetime(2026, 9, 18, 10, 0, i), 1_000 + i, None, "622202******5679",
                          f"{i + 1:06d}") for i in range(3)]
    path = write_acp_file(tmp_path / "INN260918ZM", DAY, lines)
    done = json.loads(cli("recon", "import", str(path), "--source", "acp", "--json").stdout)
    assert (done["accepted"], done["imported"], done["file_date"]) == (True, 3, "2026-09-18")
    again = cli("recon", "import", str(path), "--source", "acp", code=2)
    assert "already_exists" in again.output
    cut = tmp_path / "cut"
    cut.write_bytes(path.read_bytes()[:900])
    rejected = cli("recon", "import", str(cut), "--source", "acp", code=1)
    assert "rejected" in rejected.output and "truncated" in rejected.output
    run = json.loads(cli("recon", "run", "--date", "2026-09-18", "--json").stdout)
    assert run["counts"]["theirs_only"] == 3
    queue = json.loads(cli("recon", "discrepancies", "--state", "open", "--json").stdout)
    assert [d["klass"] for d in queue] == ["theirs_only"] * 3
    cli("recon", "close", "--date", "2026-09-18", code=2)
    for d in queue:
        cli("recon", "assign", str(d["discrepancy_id"]), "--owner", "lee")
        cli("recon", "resolve", str(d["discrepancy_id"]), "--action", "accept",
            "--reason", "test lines")
    cli("recon", "close", "--date", "2026-09-18")
    table = cli("recon", "discrepancies").stdout
    assert "lee" in table  # (the table is cut to the terminal width)
    for fmt in ("csv", "xlsx"):
        out = json.loads(cli("recon", "summary", "--date", "2026-09-18", "--format", fmt,
                             "--json").stdout)
        assert Path(out["path"]).is_file() and out["rows"][0]["theirs_only_resolved"] == 3
