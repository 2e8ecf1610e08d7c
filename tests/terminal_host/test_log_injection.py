"""A terminal cannot forge log lines (issue 9, defect 7).

The host logs field 41 (and other client text); the logging setup of every autosettle
process escapes control characters in messages, arguments and tracebacks. The tests send
hostile frames over a real socket to a host logging through that setup and read what was
written.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import pytest
from hosttools import MID, TID, client

from autosettle.domain.iso8583 import crypto
from autosettle.domain.iso8583.frame import decode_frame
from autosettle.domain.iso8583.message import decode_message
from autosettle.logging_setup import SafeTextFilter, configure_logging, escape_control
from autosettle.services.context import ServiceContext
from autosettle.simulators.terminal_client import TerminalClient, TerminalProfile
from autosettle.terminal_host.messages import MessageKind
from autosettle.terminal_host.server import TerminalHostHandle

PLACEHOLDER = "QQQQQQQQ"
HOSTILE_TIDS = ("\nERROR x", "\rERROR x", "\x1b[2JERR!", "A\x00\x7fERROR")
"""8 ASCII characters each (field 41 is ans 8): LF, CR, a terminal escape, NUL and DEL."""


@pytest.fixture
def written() -> Iterator[io.StringIO]:
    """Everything the process logs from here on, as `autosettle serve` writes it."""
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging(logging.INFO, stream)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


RECORD_START = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ (autosettle|uvicorn)[\w.]*: ")
"""The start of a record in the format of ``LOG_FORMAT``."""


def _record_starts(text: str) -> list[str]:
    """Lines that start at the margin: each must be the first line of a real record."""
    return [line for line in text.split("\n") if line and not line.startswith(" ")]


def _hostile(kind: MessageKind, tid: str) -> bytes:
    """A frame whose field 41 is ``tid`` (the client refuses to encode one: patched in)."""
    pos = TerminalClient(TerminalProfile(MID, PLACEHOLDER, crypto.generate_key()))
    pos.keys = crypto.WorkingKeys(crypto.generate_key(), crypto.generate_key())
    outgoing = (pos.prepare_sign_on() if kind is MessageKind.SIGN_ON else
                pos.prepare(kind, pan="6222020200112345679", amount_minor=100))
    wire = pos.encode(outgoing)
    assert wire.count(PLACEHOLDER.encode()) == 1
    return wire.replace(PLACEHOLDER.encode(), tid.encode("ascii"))


@pytest.mark.parametrize("tid", HOSTILE_TIDS, ids=["lf", "cr", "esc", "nul-del"])
def test_a_hostile_terminal_id_is_refused_and_forges_no_line(
        shop: ServiceContext, host: TerminalHostHandle, written: io.StringIO,
        tid: str) -> None:
    """Field 41 is text (ans 8): control characters make the message undecodable (30).
    Before, the host logged it raw (a forged line), and on PostgreSQL a NUL failed the
    query (an internal error)."""
    with client(TerminalProfile(MID, TID, crypto.generate_key()), host.port) as pos:
        for kind in (MessageKind.SIGN_ON, MessageKind.SALE):
            reply = pos.send_raw(_hostile(kind, tid))
            assert reply is not None
            assert decode_message(decode_frame(reply).payload).fields["39"] == "30"
    text = written.getvalue()
    assert not any((ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) < 0xa0 for c in text)
    starts = _record_starts(text)
    assert starts and all(RECORD_START.match(line) for line in starts), starts
    assert all(" INFO " in line for line in starts), starts
    assert "undecodable message: field 41" in text


def test_client_text_reaching_the_log_is_escaped(shop: ServiceContext,
                                                 host: TerminalHostHandle,
                                                 written: io.StringIO) -> None:
    """Printable but hostile text (a terminal id that looks like a log record) stays on
    its own record's line; the host logs it as sent."""
    with client(TerminalProfile(MID, "ERROR: x", crypto.generate_key()), host.port) as pos:
        assert pos.sign_on().code == "97"
    starts = _record_starts(written.getvalue())
    assert any(line.endswith("sign-on of terminal ERROR: x: 97 (key generation 0)")
               for line in starts), starts
    assert not [line for line in starts if line.startswith("ERROR")]


def test_tracebacks_cannot_forge_lines(written: io.StringIO) -> None:
    log = logging.getLogger("autosettle.terminal_host")
    try:
        raise ValueError(f"bad terminal {TID}\n2026-01-01 00:00:00,000 ERROR forged: x")
    except ValueError:
        log.exception("terminal host: %s failed", "A\nB")
    text = written.getvalue()
    starts = _record_starts(text)
    assert len(starts) == 1 and "terminal host: A\\nB failed" in starts[0], text
    assert "  ValueError: bad terminal HL000001" in text  # kept, indented
    assert "\n  2026-01-01 00:00:00,000 ERROR forged: x" in text


def test_printable_text_of_any_script_is_kept() -> None:
    assert escape_control("华联超市 Café") == "华联超市 Café"
    assert escape_control("a\tb\x00c\x7fd\x9be") == "a\\tb\\x00c\\x7fd\\x9be"
    assert escape_control("x\u2029y") == "x\\u2029y"


def test_the_filter_escapes_once_and_never_raises() -> None:
    record = logging.LogRecord("autosettle.x", logging.INFO, __file__, 1, "two %s %s",
                               ("only one",), None)
    assert SafeTextFilter().filter(record)  # left for the handler to report
    record = logging.LogRecord("autosettle.x", logging.INFO, __file__, 1, "id %s",
                               ("\u2028\x85\\",), None)
    for _ in range(2):  # a second handler's filter leaves it alone
        assert SafeTextFilter().filter(record)
    assert record.getMessage() == "id \\u2028\\x85\\"


def test_api_and_uvicorn_loggers_write_through_the_filter(written: io.StringIO) -> None:
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        assert logger.propagate and not logger.handlers  # uvicorn runs with log_config=None
    logging.getLogger("uvicorn.error").warning("path %s", "/x\nERROR forged")
    logging.getLogger("autosettle.api.errors").error("internal error: %s", "a\r\nb")
    starts = _record_starts(written.getvalue())
    assert [line.split(": ", 1)[1] for line in starts] == [
        "path /x\\nERROR forged", "internal error: a\\r\\nb"]


def test_a_librarys_basic_config_does_not_print_every_record_twice() -> None:
    """python-escpos calls logging.basicConfig() on import: its plain handler is replaced."""
    from autosettle.logging_setup import configure_logging

    root = logging.getLogger()
    before = list(root.handlers)
    basic = logging.StreamHandler(io.StringIO())
    basic.setFormatter(logging.Formatter(logging.BASIC_FORMAT))
    root.addHandler(basic)
    ours = io.StringIO()
    handler = configure_logging(logging.INFO, stream=ours)
    try:
        logging.getLogger("autosettle.test").info("once")
        assert basic not in root.handlers
        assert ours.getvalue().count("once") == 1
    finally:
        root.removeHandler(handler)
        for h in before:
            if h not in root.handlers:
                root.addHandler(h)
