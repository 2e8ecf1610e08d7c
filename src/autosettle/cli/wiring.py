"""Wiring: the channel named by the ``channel`` setting, built once per process.

The command line is the one place that picks the channel: the services receive it in their
context and never choose one themselves. ``simulator`` (the built-in issuer simulator, not a
card network) is the only choice today; any other value is a ``validation_failed`` error.
"""

from __future__ import annotations

from typing import Final

from autosettle.config import Settings
from autosettle.domain.errors import ValidationError
from autosettle.simulators.issuer import IssuerSimulator, default_key_file

CHANNEL_SIMULATOR: Final = "simulator"
CHANNELS: Final = (CHANNEL_SIMULATOR,)
CHANNEL_DESCRIPTIONS: Final = {CHANNEL_SIMULATOR: "issuer simulator — not a card network"}


def check_channel(name: str) -> str:
    """The setting's value, or ``validation_failed`` naming the choices."""
    if name not in CHANNELS:
        raise ValidationError(f"channel must be one of {', '.join(CHANNELS)}, got {name!r}")
    return name


def channel_for(settings: Settings) -> IssuerSimulator:
    """The channel the ``channel`` setting names (its state where the settings say)."""
    check_channel(settings.channel)
    url = settings.effective_issuer_sim_url
    return IssuerSimulator(url, key_file=default_key_file(url)
                           or settings.data_dir / "issuer-sim.key")


def describe_channel(settings: Settings) -> str:
    """One line for the ``serve`` banner."""
    return CHANNEL_DESCRIPTIONS[check_channel(settings.channel)]
