"""The live host fed random, truncated and mutated frames (hypothesis), then business as
usual (issue 9: the ISO 8583 host fuzz-clean in CI).

Each example opens a connection to the host on 127.0.0.1, sends one mutation of a frame a
signed-on terminal really sends (a sale, a balance inquiry, a sign-on, an echo) or random
bytes, half-closes, and reads until the host closes. The host must answer whole,
decodable frames (never `96`, an internal error) or close; it must log no error and no
traceback; the garbage must move no money and add no record. Afterwards the terminal signs
on again and a sale is approved.

``AUTOSETTLE_FUZZ_FRAMES`` examples per database (default 500: a few seconds); the long
mode is the same test with more, e.g. ``AUTOSETTLE_FUZZ_FRAMES=20000``.
"""

from __future__ import annotations

import logging
import os
import socket

import pytest
from hosttools import DEBIT, PIN, money, record_count
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autosettle.domain.iso8583.frame import (
    FRAME_SIZE_BYTES_MAX,
    LENGTH_PREFIX_SIZE_BYTES,
    decode_frame,
)
from autosettle.domain.iso8583.message import decode_message
from autosettle.services.context import ServiceContext
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.simulators.terminal_client import TerminalClient
from autosettle.terminal_host.messages import RESPONSE_MTI, MessageKind
from autosettle.terminal_host.server import TerminalHostHandle

FUZZ_FRAMES = int(os.environ.get("AUTOSETTLE_FUZZ_FRAMES", "500"))
MTI_AT = 5 + 6  # in the body: after the TPDU and the header
BITMAP_AT = MTI_AT + 2
FIELDS_AT = BITMAP_AT + 8
MUTATIONS = ("random_body", "random_stream", "flip", "length", "truncate", "extra",
             "bitmap", "mti", "huge_prefix", "huge_field", "max_frame", "as_is")
HUGE_FIELDS = {"36": "9" * 104, "48": "9" * 322, "55": "F" * 510, "62": "F" * 1998,
               "63": "华" * 81}
"""A value of each field at (or near) its CUP maximum: track 3, private 48, ICC data, 62
(binary, as hex) and 63 (GBK text)."""
ANSWER_MTIS = frozenset(RESPONSE_MTI.values())
READ_TIMEOUT_S = 20.0


def _framed(body: bytes | bytearray) -> bytes:
    return len(body).to_bytes(LENGTH_PREFIX_SIZE_BYTES, "big") + bytes(body)


def _huge(terminal: TerminalClient, data: st.DataObject) -> bytes:
    """A MAC'd sale (the trace of the sale already made) with a huge extra field."""
    number = data.draw(st.sampled_from(sorted(HUGE_FIELDS)), label="huge field")
    sale = terminal.prepare(MessageKind.SALE, pan=DEBIT, amount_minor=1_000, pin=PIN)
    sale.fields["11"] = "000002"  # the seed sale's trace: a duplicate, answered 94
    sale.fields[number] = HUGE_FIELDS[number]
    return terminal.encode(sale)


def _mutate(data: st.DataObject, seeds: dict[str, bytes], terminal: TerminalClient) -> bytes:
    """One hostile wire: random, or a mutation of a frame a terminal really sends."""
    kind = data.draw(st.sampled_from(MUTATIONS), label="mutation")
    if kind == "random_body":
        return _framed(data.draw(st.binary(max_size=300), label="body"))
    if kind == "random_stream":
        return data.draw(st.binary(min_size=1, max_size=300), label="stream")
    if kind == "huge_field":
        return _huge(terminal, data)
    body = bytearray(seeds[data.draw(st.sampled_from(sorted(seeds)), label="seed")][2:])
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 4), label="flips")):
            body[data.draw(st.integers(0, len(body) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "length":  # the body as sent, a wrong length prefix
        size = data.draw(st.integers(0, 0xFFFF).filter(lambda n: n != len(body)), label="len")
        return size.to_bytes(LENGTH_PREFIX_SIZE_BYTES, "big") + bytes(body)
    elif kind == "truncate":
        cut = data.draw(st.integers(0, len(body) - 1), label="cut")
        if data.draw(st.booleans(), label="keep the declared length"):
            return _framed(body)[:LENGTH_PREFIX_SIZE_BYTES + cut]
        del body[cut:]
    elif kind == "extra":
        extra = data.draw(st.binary(min_size=1, max_size=64), label="extra")
        if not data.draw(st.booleans(), label="inside the frame"):
            return _framed(body) + extra  # read as the start of the next frame
        body += extra
    elif kind == "bitmap":
        body[BITMAP_AT:FIELDS_AT] = data.draw(st.binary(min_size=8, max_size=8), label="bitmap")
    elif kind == "mti":
        body[MTI_AT:BITMAP_AT] = data.draw(st.binary(min_size=2, max_size=2), label="mti")
    elif kind == "huge_prefix":  # a length inside the payload at its largest
        at = data.draw(st.integers(FIELDS_AT, len(body) - 2), label="at")
        body[at:at + 2] = data.draw(st.sampled_from([b"\x99\x99", b"\x09\x99", b"\xff\xff"]))
    elif kind == "max_frame":
        body += data.draw(st.binary(max_size=16)) + bytes(FRAME_SIZE_BYTES_MAX - len(body) - 16)
    return _framed(body)


def _exchange(port: int, wire: bytes) -> bytes:
    """Send, half-close, read until the host closes (a reset counts as closing)."""
    received = b""
    with socket.create_connection(("127.0.0.1", port), 5) as sock:
        sock.settimeout(READ_TIMEOUT_S)
        try:
            sock.sendall(wire)
            sock.shutdown(socket.SHUT_WR)
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionError:
            pass  # closed with our bytes unread (an impossible length): a clean close
    return received


def _check_answers(received: bytes) -> int:
    """Every answer is a whole frame that decodes, with an answer MTI and field 39."""
    count = 0
    while received:
        assert len(received) >= LENGTH_PREFIX_SIZE_BYTES, received
        size = int.from_bytes(received[:LENGTH_PREFIX_SIZE_BYTES], "big")
        frame = received[:LENGTH_PREFIX_SIZE_BYTES + size]
        assert len(frame) == LENGTH_PREFIX_SIZE_BYTES + size, "a partial answer"
        fields = decode_message(decode_frame(frame).payload).fields
        assert fields["t"] in ANSWER_MTIS and fields["39"] != "96", fields
        received = received[len(frame):]
        count += 1
    return count


@pytest.fixture
def seeds(terminal: TerminalClient) -> dict[str, bytes]:
    """Frames of the signed-on terminal: a sale and an inquiry already answered (so their
    valid mutations are duplicates that replay), a sign-on and an echo."""
    sale = terminal.prepare(MessageKind.SALE, pan=DEBIT, amount_minor=1_000, pin=PIN)
    inquiry = terminal.prepare(MessageKind.BALANCE_INQUIRY, pan=DEBIT, pin=PIN)
    frames = {"sale": terminal.encode(sale), "inquiry": terminal.encode(inquiry),
              "sign_on": terminal.encode(terminal.prepare_sign_on()),
              "echo": terminal.encode(terminal.prepare_network(MessageKind.ECHO))}
    for outgoing, wire in ((sale, frames["sale"]), (inquiry, frames["inquiry"])):
        reply = terminal.send_raw(wire)
        assert reply is not None and terminal.accept(outgoing, reply).code == "00"
    return frames


def test_fuzz_the_live_host(shop: ServiceContext, sim: IssuerSimulator,
                            host: TerminalHostHandle, terminal: TerminalClient,
                            seeds: dict[str, bytes], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="autosettle")
    before, records = money(shop, sim), record_count(shop)
    answers = 0

    @settings(max_examples=FUZZ_FRAMES, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        nonlocal answers
        answers += _check_answers(_exchange(host.port, _mutate(data, seeds, terminal)))

    fuzz()
    assert answers > 0
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert bad == [], [r.getMessage() for r in bad]
    assert money(shop, sim) == before and record_count(shop) == records
    assert host.server.stats.connections_active <= 1
    terminal.close()  # a long run outlasts the idle timeout: connect again
    terminal.trace += 1  # a new trace (the huge-field sales reuse the sale's, 000002)
    assert terminal.sign_on().code == "00"
    answer = terminal.sale(DEBIT, 700, PIN)
    assert answer.code == "00" and answer.mac_ok is True
    after = money(shop, sim)
    assert (after.unsettled - before.unsettled, before.card_balance - after.card_balance) == (
        700, 700)
