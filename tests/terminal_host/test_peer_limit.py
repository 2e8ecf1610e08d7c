"""One client address cannot hold every connection of the host (issue 9, defect 6)."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import replace

import pytest
from hosttools import DEBIT, PIN, TEST_LIMITS, client, money, provision

from autosettle.domain.iso8583.frame import decode_frame
from autosettle.domain.iso8583.message import decode_message
from autosettle.services.context import ServiceContext
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.simulators.terminal_client import TerminalClient, TerminalProfile
from autosettle.terminal_host.messages import MessageKind
from autosettle.terminal_host.server import HostLimits, start_terminal_host

PER_PEER = 4


def _wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def _closed_at_once(port: int, source: str | None = None) -> bool:
    address = (source, 0) if source else None
    with socket.create_connection(("127.0.0.1", port), 5, source_address=address) as sock:
        sock.settimeout(5)
        return sock.recv(10) == b""


def test_one_peer_cannot_hold_every_connection(shop: ServiceContext, sim: IssuerSimulator,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="autosettle.terminal_host")
    limits = replace(TEST_LIMITS, connections_per_peer_max=PER_PEER)
    profile = provision(shop)
    with start_terminal_host(shop, "127.0.0.1", 0, limits=limits) as host:
        held = [socket.create_connection(("127.0.0.1", host.port), 5) for _ in range(PER_PEER)]
        try:
            _wait_for(lambda: host.stats.connections_active == PER_PEER)
            assert all(_closed_at_once(host.port) for _ in range(3))
            assert host.stats.connections_refused_per_peer == 3
            assert host.stats.connections_refused == 0  # the host itself is far from full
            assert host.stats.connections_active == PER_PEER
            _another_address_is_served(host.port, profile)
        finally:
            for sock in held:
                sock.close()
        _wait_for(lambda: host.stats.connections_active == 0)
        with client(profile, host.port) as pos:  # the address is served again
            assert pos.sign_on().code == "00"
            assert pos.sale(DEBIT, 900, PIN).code == "00"
    assert money(shop, sim).unsettled == 900
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings  # one when the limit is reached, one summary
    assert "per-peer limit" in warnings[0] and "3 connections" in warnings[1]


def _another_address_is_served(port: int, profile: TerminalProfile) -> None:
    """127.0.0.2 is loopback too: another peer still gets its answers."""
    pos = TerminalClient(profile, "127.0.0.1", port)
    wire = pos.encode(pos.prepare_network(MessageKind.ECHO))
    with socket.create_connection(("127.0.0.1", port), 5,
                                  source_address=("127.0.0.2", 0)) as sock:
        sock.settimeout(5)
        sock.sendall(wire)
        reply = sock.recv(4096)
    assert decode_message(decode_frame(reply).payload).fields["39"] == "00"


def test_the_limit_comes_from_the_settings(shop: ServiceContext) -> None:
    settings = shop.settings.model_copy(update={"terminal_host_connections_per_peer_max": 7})
    assert HostLimits.from_settings(settings).connections_per_peer_max == 7
    assert HostLimits.from_settings(shop.settings) == HostLimits()
