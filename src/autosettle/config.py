"""Settings, from environment variables prefixed ``AUTOSETTLE_`` (or a ``.env`` file).

Secrets (the PAN token key and the data key-encrypting key) come from configuration and are
never stored in the database. When they are not configured, :func:`load_settings` creates a
random pair once in ``<data_dir>/secrets.json`` (mode 0600) so the embedded demo works out of
the box; production sets them explicitly. See docs/configuration.md for every setting.
Loading the settings makes an existing data directory private (0700): every file autosettle
writes there is 0600 (autosettle/private_files.py).
"""

from __future__ import annotations

import json
import secrets
from datetime import time
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from autosettle.private_files import create_once, tighten_dir

SECRET_KEY_BYTES = 32


class Settings(BaseSettings):
    """Every setting of autosettle; see docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="AUTOSETTLE_", env_file=".env",
                                      extra="ignore")

    data_dir: Path = Field(default=Path("var"), description="Where the embedded database, "
                           "generated secrets and output files live.")
    database_url: str = Field(default="", description="SQLAlchemy URL; empty means the "
                              "embedded SQLite file <data_dir>/autosettle.db.")
    pan_token_key: SecretStr = Field(default=SecretStr(""), description="Hex key (>=16 bytes) "
                                     "for HMAC-SHA256 PAN tokens.")
    data_key: SecretStr = Field(default=SecretStr(""), description="Hex 32-byte key-encrypting "
                                "key for account numbers and terminal keys at rest.")
    api_host: str = Field(default="127.0.0.1", description="API bind address.")
    api_port: int = Field(default=8000, description="API port.")
    terminal_host_port: int = Field(default=5800, description="ISO 8583 terminal host port.")
    cutoff: time = Field(default=time(23, 0), description="Daily cut-off (日切), Asia/Shanghai.")
    log_level: str = Field(default="INFO", description="Python logging level.")
    channel_timeout_s: float = Field(default=10.0, gt=0, le=120, description="Deadline of "
                                     "every channel call; no answer by then means reversal.")
    channel: str = Field(default="simulator", description="Who authorizes card transactions: "
                         "`simulator` (the built-in issuer simulator, not a card network) is "
                         "the only choice today.")
    issuer_sim_url: str = Field(default="", description="Database of the built-in issuer "
                                "simulator; empty means <data_dir>/issuer-sim.db.")
    terminal_host_connections_per_peer_max: int = Field(
        default=128, ge=1, le=100_000, description="Connections one client address may "
        "hold at once on the terminal host; one more is closed at once (counted, logged).")
    terminal_host_batch_mac_required: bool = Field(
        default=True, description="Batch settlement (0500) and batch upload (0320) must "
        "carry a MAC (field 64), else A0 and nothing is recorded; false accepts them without "
        "one from a signed-on terminal (for old terminals that do not MAC them).")
    terminal_silent_after_s: float = Field(default=900, gt=0, description="A terminal silent "
                                           "for longer than this is flagged in its status.")
    demo_traffic_interval_s: float = Field(default=0, ge=0, description="When > 0, `serve` "
                                           "runs the demo fleet: the demo terminals pay over "
                                           "TCP about every so many seconds (make run: 3).")
    default_currency: str = Field(default="CNY", description="ISO 4217 code of the default "
                                  "currency.")
    # -- the settlement scheduler (issue 4; docs/settlement.md#the-scheduler) --
    scheduler_enabled: bool = Field(default=True, description="Run the cut-off, settlement "
                                    "and payout jobs inside `autosettle serve`.")
    settlement_time: time = Field(default=time(2, 0), description="Daily T+1/D+1 settlement "
                                  "run (and its payout file), Asia/Shanghai.")
    intraday_interval_s: int = Field(default=1800, ge=10, le=86_400, description="Seconds "
                                     "between intraday T+0/D+0 settlement runs.")
    scheduler_tick_s: float = Field(default=30.0, gt=0, le=3600, description="How often the "
                                    "scheduler looks for due runs.")
    job_lease_s: int = Field(default=300, ge=5, le=86_400, description="Lease of a job run; "
                             "an instance that died is taken over after it expires.")
    catchup_days_max: int = Field(default=7, ge=1, le=366, description="Missed daily runs "
                                  "caught up at start, at most this many days back.")
    ledger_checkpoint_interval_s: int = Field(default=900, ge=10, le=86_400, description=(
        "Seconds between ledger balance checkpoints (also written after each settlement "
        "run)."))
    # -- receipts and printers (issue 14; docs/printers.md) --
    print_queue_enabled: bool = Field(default=True, description="Run the print queue inside "
                                      "`autosettle serve`: slips of terminals with a printer "
                                      "profile are enqueued and printed.")
    print_interval_s: float = Field(default=2.0, gt=0, le=3600, description="How often the "
                                    "print queue looks for new slips and due jobs.")
    printer_timeout_s: float = Field(default=3.0, gt=0, le=60, description="Deadline of every "
                                     "printer connection, write and status query.")
    receipt_font: str = Field(default="", description="CJK font file for PNG/PDF receipts; "
                              "empty means the first one found (fonts-noto-cjk).")
    # -- risk control (issue 13; docs/risk.md) --
    risk_enabled: bool = Field(default=True, description="Check every payment against the "
                               "risk rules (limits, counters, velocity, time windows, allowed "
                               "methods, block lists). Off: no risk check and no counters.")
    risk_review_score: int = Field(default=60, ge=1, le=1000, description="A merchant-day "
                                   "cash-out score at or above this puts the merchant's "
                                   "settlement items of that day on review (held).")
    risk_scoring_enabled: bool = Field(default=True, description="Score each closed "
                                       "business date for cash-out in the scheduler "
                                       "(`risk-score` job), before its T+1/D+1 settlement "
                                       "run; that run waits for it.")
    risk_scoring_time: time = Field(default=time(23, 30), description="When the `risk-score` "
                                    "job scores the business date that closed last, "
                                    "Asia/Shanghai: the first such time at or after the "
                                    "date's cut-off.")

    # -- the web console (issue 11; docs/console.md) --
    console_session_idle_s: int = Field(default=1800, ge=60, le=86_400, description="A "
                                        "console session unused this long expires.")
    console_session_max_s: int = Field(default=43_200, ge=60, le=604_800, description="A "
                                       "console session ends this long after its login, "
                                       "used or not.")
    console_cookie_secure: bool = Field(default=False, description="Mark the console's "
                                        "cookies Secure (sent over HTTPS only); turn on "
                                        "behind TLS.")
    console_login_attempts_max: int = Field(default=5, ge=1, le=100, description="Failed "
                                            "console logins in a row that lock the user.")
    console_lockout_s: int = Field(default=900, ge=1, le=86_400, description="How long a "
                                   "locked console user must wait before trying again.")
    # -- reconciliation (issue 12; docs/reconciliation.md) --
    recon_sources_file: Path | None = Field(default=None, description="A TOML file of extra "
                                            "reconciliation sources (layouts), added to the "
                                            "built-in acp, statement-csv and bank.")
    recon_time_window_s: int = Field(default=300, ge=0, le=86_400, description="Tolerant "
                                     "matching: how far apart in seconds our record and the "
                                     "channel's line may be.")

    @property
    def effective_database_url(self) -> str:
        """The configured URL, or the embedded SQLite file under ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'autosettle.db').as_posix()}"

    @property
    def effective_issuer_sim_url(self) -> str:
        if self.issuer_sim_url:
            return self.issuer_sim_url
        return f"sqlite:///{(self.data_dir / 'issuer-sim.db').as_posix()}"

    def pan_token_key_bytes(self) -> bytes:
        return bytes.fromhex(self.pan_token_key.get_secret_value())

    def data_key_bytes(self) -> bytes:
        return bytes.fromhex(self.data_key.get_secret_value())


def _generated_secrets(data_dir: Path) -> dict[str, str]:
    values = {
        "pan_token_key": secrets.token_hex(SECRET_KEY_BYTES),
        "data_key": secrets.token_hex(SECRET_KEY_BYTES),
    }
    # Made once, atomically: two processes starting together agree on one pair.
    loaded: dict[str, str] = json.loads(
        create_once(data_dir / "secrets.json", json.dumps(values).encode()))
    return loaded


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, filling missing secrets from ``secrets.json``."""
    settings = Settings(**overrides)  # type: ignore[arg-type]
    tighten_dir(settings.data_dir)  # an older version made it 0755
    missing = {
        name for name in ("pan_token_key", "data_key")
        if not getattr(settings, name).get_secret_value()
    }
    if missing:
        generated = _generated_secrets(settings.data_dir)
        settings = settings.model_copy(
            update={name: SecretStr(generated[name]) for name in missing}
        )
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings (cached)."""
    return load_settings()
