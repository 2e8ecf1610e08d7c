"""What a terminal host must survive: malformed frames, wrong lengths, bad BCD, unknown
MTIs, missing fields, stalled and excess connections, a terminal killed mid-transaction,
and a few hundred random frames (the decoder fuzz test against the live server)."""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from collections.abc import Callable

import pytest
from hosttools import DEBIT, PIN, TEST_LIMITS, UNTOUCHED, money, record_count

from autosettle.domain.iso8583.frame import FRAME_SIZE_BYTES_MAX, FRAME_SIZE_BYTES_MIN, decode_frame
from autosettle.domain.iso8583.message import decode_message, encode_message
from autosettle.services import terminal_keys
from autosettle.services.context import ServiceContext
from autosettle.simulators.issuer import FaultKind, IssuerSimulator
from autosettle.simulators.terminal_client import NoAnswer, Outgoing, TerminalClient
from autosettle.terminal_host.messages import MessageKind
from autosettle.terminal_host.processor import Processor
from autosettle.terminal_host.server import TerminalHostHandle

K = MessageKind
FUZZ_FRAMES = int(os.environ.get("AUTOSETTLE_FUZZ_FRAMES", "300"))


def _frame(pos: TerminalClient, payload: bytes) -> bytes:
    body = pos.profile.tpdu.to_bytes() + pos.profile.header.to_bytes() + payload
    return len(body).to_bytes(2, "big") + body


def _code(reply: bytes | None) -> str | None:
    if reply is None:
        return None
    return decode_message(decode_frame(reply).payload).fields.get("39")


def test_bad_bcd_is_a_format_error(shop: ServiceContext, terminal: TerminalClient) -> None:
    payload = bytearray(encode_message({"t": "0200", "3": "000000", "4": "000000001000",
                                        "11": "000001", "41": "HL000001"}))
    payload[13] = 0xAA  # the first byte of field 4 (after MTI, bitmap and field 3)
    reply = terminal.send_raw(_frame(terminal, bytes(payload)))
    assert reply is not None
    assert decode_message(decode_frame(reply).payload).fields == {"t": "0210", "39": "30"}
    assert record_count(shop) == 0


def test_missing_field_and_unknown_combination(shop: ServiceContext,
                                               terminal: TerminalClient) -> None:
    sale = terminal.prepare(K.SALE, pan=DEBIT, amount_minor=100, pin=PIN)
    del sale.fields["4"]
    assert _code(terminal.send_raw(terminal.encode(sale))) == "30"
    odd = terminal.prepare(K.SALE, pan=DEBIT, amount_minor=100, pin=PIN)
    odd.fields["3"] = "310000"  # 60.1 says sale, field 3 says balance inquiry
    assert _code(terminal.send_raw(terminal.encode(odd))) == "12"
    no_60 = terminal.prepare(K.SALE, pan=DEBIT, amount_minor=100, pin=PIN)
    del no_60.fields["60"]
    assert _code(terminal.send_raw(terminal.encode(no_60))) == "30"
    assert record_count(shop) == 0


@pytest.mark.parametrize("wire", [
    (FRAME_SIZE_BYTES_MAX + 1).to_bytes(2, "big") + bytes(64),  # too long: close at once
    (FRAME_SIZE_BYTES_MIN - 1).to_bytes(2, "big") + bytes(FRAME_SIZE_BYTES_MIN - 1),
], ids=["too-long", "too-short"])
def test_impossible_lengths_close_the_connection(terminal: TerminalClient,
                                                 wire: bytes) -> None:
    assert terminal.send_raw(wire) is None
    assert terminal.echo().code == "00"  # the server is fine


def test_unknown_and_answer_mtis_close_the_connection(terminal: TerminalClient) -> None:
    for mti in ("0600", "0210", "9999"):
        assert terminal.send_raw(_frame(terminal, encode_message({"t": mti}))) is None
    undecodable = bytes.fromhex("06") + bytes(9)  # MTI "06..": bad BCD, not a request
    assert terminal.send_raw(_frame(terminal, undecodable)) is None
    assert terminal.echo().code == "00"


def test_stalled_frame_times_out(host: TerminalHostHandle) -> None:
    with socket.create_connection(("127.0.0.1", host.port), 5) as sock:
        sock.settimeout(TEST_LIMITS.read_timeout_s + 4)
        sock.sendall((50).to_bytes(2, "big") + bytes(10))
        started = time.monotonic()
        assert sock.recv(10) == b""
        assert time.monotonic() - started < TEST_LIMITS.read_timeout_s + 3


def test_connection_limit(host: TerminalHostHandle, terminal: TerminalClient) -> None:
    terminal.close()
    _wait_for(lambda: host.stats.connections_active == 0)
    held = [socket.create_connection(("127.0.0.1", host.port), 5)
            for _ in range(TEST_LIMITS.connections_max)]
    try:
        _wait_for(lambda: host.stats.connections_active == TEST_LIMITS.connections_max)
        with socket.create_connection(("127.0.0.1", host.port), 5) as extra:
            extra.settimeout(5)
            assert extra.recv(10) == b""
        assert host.stats.connections_refused >= 1
    finally:
        for sock in held:
            sock.close()
    _wait_for(lambda: host.stats.connections_active == 0)
    assert terminal.echo().code == "00"


def _wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_terminal_killed_mid_transaction_reverses(shop: ServiceContext, sim: IssuerSimulator,
                                                  terminal: TerminalClient) -> None:
    sim.inject(FaultKind.LATENCY, latency_ms=400)  # the sale is still at the issuer ...
    sale = terminal.prepare(K.SALE, pan=DEBIT, amount_minor=5_000, pin=PIN)
    with pytest.raises(NoAnswer):
        terminal.send(sale, abandon=True)  # ... when the terminal loses power
    assert terminal.pending_reversal is not None
    time.sleep(0.1)  # it comes back (a real terminal waits for its answer timeout)
    answer = terminal.send_pending_reversal()
    assert answer is not None and answer.code == "00" and answer.mac_ok is True
    assert terminal.pending_reversal is None
    assert money(shop, sim) == UNTOUCHED
    with shop.db.unit_of_work() as uow:
        assert uow.reversals.pending_count() == 0
    assert terminal.sale(DEBIT, 100, PIN).code == "00"  # business as usual


def test_pending_reversal_goes_before_the_next_sale(shop: ServiceContext, sim: IssuerSimulator,
                                                    terminal: TerminalClient) -> None:
    with pytest.raises(NoAnswer):
        terminal.send(terminal.prepare(K.SALE, pan=DEBIT, amount_minor=800, pin=PIN),
                      abandon=True)
    time.sleep(0.1)
    answer = terminal.sale(DEBIT, 200, PIN)  # sends the reversal first
    assert answer.code == "00" and terminal.pending_reversal is None
    assert money(shop, sim).unsettled == 200


def _mutations(rng: random.Random, seeds: list[bytes]) -> bytes:
    choice = rng.randrange(4)
    if choice == 0:  # random body with a correct length prefix
        body = rng.randbytes(rng.randrange(FRAME_SIZE_BYTES_MIN, 160))
        return len(body).to_bytes(2, "big") + body
    seed = bytearray(rng.choice(seeds))
    if choice in (1, 2):  # flip bytes after the length prefix
        for _ in range(rng.randrange(1, 4)):
            seed[rng.randrange(2, len(seed))] ^= 1 << rng.randrange(8)
        return bytes(seed)
    cut = bytes(seed[2:rng.randrange(FRAME_SIZE_BYTES_MIN + 2, len(seed) + 1)])  # truncated
    return len(cut).to_bytes(2, "big") + cut


def test_fuzz_the_live_server(shop: ServiceContext, sim: IssuerSimulator,
                              host: TerminalHostHandle, terminal: TerminalClient,
                              caplog: pytest.LogCaptureFixture) -> None:
    """Random and mutated frames: every reply is a well-formed answer, or the connection
    closes; no exception escapes, no answer says 96 (a caught bug), no money moves."""
    rng = random.Random(8583)
    inquiry: Outgoing = terminal.prepare(K.BALANCE_INQUIRY, pan=DEBIT, pin=PIN)
    seeds = [terminal.encode(inquiry), terminal.encode(terminal.prepare_network(K.ECHO))]
    caplog.set_level(logging.WARNING, logger="autosettle")
    answered = closed = 0
    sock: socket.socket | None = None
    for _ in range(FUZZ_FRAMES):
        if sock is None:
            sock = socket.create_connection(("127.0.0.1", host.port), 5)
            sock.settimeout(TEST_LIMITS.read_timeout_s + 5)
        sock.sendall(_mutations(rng, seeds))
        reply = _read_reply(sock)
        if reply is None:
            closed += 1
            sock.close()
            sock = None
            continue
        answered += 1
        fields = decode_message(decode_frame(reply).payload).fields
        assert fields["39"] != "96", fields
    if sock is not None:
        sock.close()
    assert answered and closed
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert terminal.echo().code == "00"
    assert money(shop, sim) == UNTOUCHED


def _read_reply(sock: socket.socket) -> bytes | None:
    data = b""
    try:
        while len(data) < 2 or len(data) < 2 + int.from_bytes(data[:2], "big"):
            chunk = sock.recv(4096)
            if not chunk:
                return None
            data += chunk
    except (ConnectionError, TimeoutError):
        return None
    return data


def test_internal_error_after_the_money_moved(shop: ServiceContext, sim: IssuerSimulator,
                                              terminal: TerminalClient,
                                              monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    """A bug after the issuer approved: no answer (not a 96 the terminal might retry), so
    the terminal's stored reversal gives the money back. A balance inquiry gets 96."""
    def broken(*_args: object) -> dict[str, str]:
        raise RuntimeError("bug")

    monkeypatch.setattr(Processor, "_result_fields", broken)
    caplog.set_level(logging.CRITICAL, logger="autosettle")
    with pytest.raises(NoAnswer):
        terminal.sale(DEBIT, 1_500, PIN)
    assert money(shop, sim).card_balance == UNTOUCHED.card_balance - 1_500  # it moved
    assert terminal.balance(DEBIT, PIN).code == "96"  # sends the pending reversal first
    assert terminal.pending_reversal is None
    assert money(shop, sim) == UNTOUCHED


def test_heartbeat_failure_never_changes_an_answer(shop: ServiceContext, sim: IssuerSimulator,
                                                   terminal: TerminalClient,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(terminal_keys, "touch", broken)
    assert terminal.sale(DEBIT, 1_500, PIN).code == "00"
    assert money(shop, sim).unsettled == 1_500
