"""``autosettle printers``: add, check (exit 1 and plain words when something is wrong),
the queue, the last slips as text, reprint; on an embedded SQLite file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from jobtools import cli_invoker
from printtools import FakePrinter, PrinterState, decode_escpos
from typer.testing import Result

Invoke = Callable[..., Result]
DEMO_MID, DEMO_TID = "898310054110001", "HL000001"


@pytest.fixture
def cli(cli_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    monkeypatch.setenv("AUTOSETTLE_DATABASE_URL", f"sqlite:///{cli_data_dir / 'a.db'}")
    monkeypatch.setenv("AUTOSETTLE_PRINTER_TIMEOUT_S", "1")
    invoke: Invoke = cli_invoker()
    invoke("db", "upgrade")
    invoke("demo", "seed", "--once")
    return invoke


@pytest.fixture
def fake() -> Iterator[FakePrinter]:
    printer = FakePrinter()
    yield printer
    printer.close()


def test_add_check_and_the_queue(cli: Invoke, fake: FakePrinter, cli_data_dir: Path) -> None:
    cli("printers", "add", "desk", "--merchant-id", DEMO_MID, "--terminal-id", DEMO_TID,
        "--interface", "network", "--address", fake.address, "--width", "48")
    assert "desk" in cli("printers", "list").stdout
    ok = cli("printers", "check", "desk").stdout
    assert "打印机正常 the printer is ready" in ok
    assert "PRINTER TEST PAGE" in decode_escpos(fake.received()).text
    fake.state = PrinterState(cover_open=True)
    wrong = cli("printers", "check", "desk", code=1).stdout
    assert "打印机纸仓盖未关" in wrong and "close the printer's cover" in wrong
    fake.state = PrinterState()
    cli("printers", "test", "desk")
    assert "1 printed" in cli("printers", "run").stdout
    assert "PRINTER TEST PAGE" in cli("printers", "last", "desk").stdout
    assert "printed" in cli("printers", "jobs").stdout
    nothing = cli("printers", "reprint", "desk", code=2)  # only a test page so far
    assert "not_found" in nothing.stderr


def test_a_wrong_interface_is_refused_when_added(cli: Invoke) -> None:
    result = cli("printers", "add", "desk", "--merchant-id", DEMO_MID, "--terminal-id",
                 DEMO_TID, "--interface", "network", "--address", "/dev/usb/lp0", code=2)
    assert "validation_failed" in result.stderr
    assert "a network printer is HOST or HOST:PORT" in " ".join(result.stderr.split())


def test_a_file_printer_for_the_demo(cli: Invoke, cli_data_dir: Path) -> None:
    spool = cli_data_dir / "printer" / "HL000001.prn"
    cli("printers", "add", "demo", "--merchant-id", DEMO_MID, "--terminal-id", DEMO_TID,
        "--interface", "file", "--address", str(spool))
    assert "the printer is ready" in cli("printers", "check", "demo").stdout
    assert spool.stat().st_mode & 0o777 == 0o600
