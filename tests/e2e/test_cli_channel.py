"""The ``channel`` setting: the command line builds the channel from it and says so; no
silent default in the services."""

from __future__ import annotations

from pathlib import Path

import pytest
import uvicorn
from typer.testing import CliRunner

from autosettle.cli import app
from autosettle.cli.wiring import channel_for, describe_channel
from autosettle.config import Settings, get_settings
from autosettle.domain.errors import ErrorCode, ValidationError
from autosettle.services.context import build_context
from autosettle.simulators.issuer import IssuerSimulator


@pytest.fixture
def env(cli_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory of its own; settings from the environment only."""
    monkeypatch.setenv("AUTOSETTLE_DATABASE_URL",
                       f"sqlite:///{cli_data_dir / 'autosettle.db'}")
    return cli_data_dir


def test_the_simulator_is_the_default_and_only_channel(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.channel == "simulator"
    channel = channel_for(settings)
    assert isinstance(channel, IssuerSimulator)
    channel.close()
    assert describe_channel(settings) == "issuer simulator — not a card network"


def test_another_channel_is_a_typed_error(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, channel="visanet")
    with pytest.raises(ValidationError) as caught:
        channel_for(settings)
    assert caught.value.code == ErrorCode.VALIDATION_FAILED
    assert "simulator" in caught.value.message
    assert not (tmp_path / "issuer-sim.db").exists()  # nothing made


def test_build_context_has_no_silent_channel(tmp_path: Path) -> None:
    ctx = build_context(Settings(data_dir=tmp_path, pan_token_key="00" * 32,
                                 data_key="11" * 32))
    try:
        assert ctx.channel is None
        assert not (tmp_path / "issuer-sim.db").exists()
    finally:
        ctx.db.dispose()


def test_cli_refuses_an_unknown_channel(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    monkeypatch.setenv("AUTOSETTLE_CHANNEL", "visanet")
    get_settings.cache_clear()
    listed = runner.invoke(app, ["merchants", "list"])
    assert listed.exit_code == 2
    assert "validation_failed" in listed.stderr and "visanet" in listed.stderr
    served = runner.invoke(app, ["serve"])
    assert served.exit_code == 2
    assert "validation_failed" in served.stderr
    assert "API" not in served.stdout  # refused before the banner


def test_serve_banner_names_the_channel(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOSETTLE_TERMINAL_HOST_PORT", "0")
    monkeypatch.setenv("AUTOSETTLE_SCHEDULER_ENABLED", "false")
    get_settings.cache_clear()
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    started: list[str] = []
    monkeypatch.setattr(uvicorn, "run", lambda *_a, **_k: started.append("api"))
    served = runner.invoke(app, ["serve", "--port", "1"])
    assert served.exit_code == 0, served.output
    assert started == ["api"]
    assert "channel       issuer simulator — not a card network" in served.stdout
