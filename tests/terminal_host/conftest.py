"""Fixtures of the terminal host tests: a shop, a host on a free port, a signed-on terminal.

Everything goes over real sockets on 127.0.0.1, on SQLite and (when configured) PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hosttools import TEST_LIMITS, client, provision, seed_shop

from autosettle.services.context import ServiceContext
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.simulators.terminal_client import TerminalClient, TerminalProfile
from autosettle.terminal_host.server import TerminalHostHandle, start_terminal_host


@pytest.fixture
def shop(ctx: ServiceContext, sim: IssuerSimulator) -> ServiceContext:
    seed_shop(ctx, sim)
    return ctx


@pytest.fixture
def host(shop: ServiceContext) -> Iterator[TerminalHostHandle]:
    handle = start_terminal_host(shop, "127.0.0.1", 0, limits=TEST_LIMITS)
    yield handle
    handle.stop()


@pytest.fixture
def profile(shop: ServiceContext) -> TerminalProfile:
    return provision(shop)


@pytest.fixture
def terminal(host: TerminalHostHandle, profile: TerminalProfile) -> Iterator[TerminalClient]:
    """A terminal that has signed on (double-length keys, CUP ECB MAC)."""
    with client(profile, host.port) as pos:
        answer = pos.sign_on()
        assert answer.code == "00", answer.fields
        yield pos
