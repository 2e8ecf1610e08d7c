"""ESC/POS bytes decoded back, the status query against a fake network printer on 127.0.0.1,
and the diagnosis: every fault of the document's printer section found and explained."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from printtools import FakePrinter, PrinterState, decode_escpos
from test_print_slips import SALE, SETTLEMENT

from autosettle.printing import devices, escpos_out, layout, slips
from autosettle.printing.devices import Fault, PrinterError
from autosettle.printing.diagnosis import (
    ADVICE,
    Outcome,
    PrinterTarget,
    StepName,
    diagnose,
)

NOW = datetime(2026, 9, 18, 2, 0, tzinfo=UTC)
TIMEOUT_S = 1.0


@pytest.fixture
def printer() -> Iterator[FakePrinter]:
    fake = FakePrinter()
    yield fake
    fake.close()


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def target(address: str, interface: str = "network", width: int = 32) -> PrinterTarget:
    return PrinterTarget("front-desk", interface, address, width, "gb18030")


def test_escpos_bytes_decode_back_to_the_slip() -> None:
    slip = slips.receipt_slip(SALE, 32, slips.CopyKind.CARDHOLDER)
    data = escpos_out.to_escpos(slip)
    assert data.startswith(b"\x1b@\x1c&")  # initialise, Chinese mode (FS &)
    assert "消费".encode("gb18030") in data
    decoded = decode_escpos(data)
    assert decoded.chinese_mode
    assert decoded.cuts == 1
    assert decoded.qr_payloads == [SALE.reference]
    assert "持卡人存根 CARDHOLDER COPY" in decoded.text
    assert "622202*********0014" in decoded.text
    assert [line.rstrip() for line in decoded.lines[:len(slip.lines)]] == \
        [line.rstrip() for line in layout.as_text(slip).split("\n")[:len(slip.lines)]]


def test_an_ascii_printer_gets_english_and_no_chinese_mode() -> None:
    slip = slips.settlement_slip(SETTLEMENT, 48, chinese=False)
    data = escpos_out.to_escpos(slip, "ascii")
    assert b"\x1c&" not in data
    decoded = decode_escpos(data, "ascii")
    assert "SETTLEMENT SLIP" in decoded.text and "BALANCED" in decoded.text


@pytest.mark.parametrize(("state", "expected"), [
    (PrinterState(), None),
    (PrinterState(paper_out=True), Fault.PAPER_END),
    (PrinterState(cover_open=True), Fault.COVER_OPEN),
    (PrinterState(error=True), Fault.PRINTER_ERROR),
    (PrinterState(online=False), Fault.OFFLINE),
])
def test_the_status_query_reads_the_printers_state(printer: FakePrinter, state: PrinterState,
                                                   expected: Fault | None) -> None:
    printer.state = state
    connection = devices.connect(devices.parse_address("network", printer.address), TIMEOUT_S)
    try:
        status = connection.status()
    finally:
        connection.close()
    assert status.fault() is expected
    assert status.ready is (expected is None)


def test_paper_near_end_is_reported_but_prints(printer: FakePrinter) -> None:
    printer.state = PrinterState(paper_near_end=True)
    found = diagnose(target(printer.address), NOW, timeout_s=TIMEOUT_S)
    assert found.ok
    paper = next(s for s in found.steps if s.name is StepName.PAPER)
    assert paper.outcome is Outcome.WARNING


def test_a_healthy_printer_passes_every_step_and_prints_a_test_page(
        printer: FakePrinter) -> None:
    found = diagnose(target(printer.address, width=48), NOW, timeout_s=TIMEOUT_S)
    assert found.ok, found
    assert [s.name for s in found.steps] == list(StepName)
    assert all(s.outcome is Outcome.OK for s in found.steps)
    printed = decode_escpos(printer.received())
    assert "打印测试页" in printed.text and "PRINTER TEST PAGE" in printed.text
    assert "中文打印测试 GB18030" in printed.text
    assert "123456789012345678901234567890123456789012345678" in printed.text  # 48 columns
    assert printed.cuts == 1 and printed.qr_payloads == ["TEST front-desk"]


def _failed(found_steps: object) -> tuple[StepName, str]:
    step = next(s for s in found_steps if s.outcome is Outcome.FAILED)  # type: ignore[attr-defined]
    assert step.advice is not None
    return step.name, step.advice.problem_en


@pytest.mark.parametrize(("interface", "address"), [
    ("network", "/dev/ttyS0"),        # a serial device configured as a network printer
    ("usb", "192.168.1.50:9100"),     # a network address on a USB printer
    ("parallel", "COM1"),
    ("bluetooth", "00:11:22:33:44:55"),
])
def test_the_wrong_interface_is_the_first_thing_found(interface: str, address: str) -> None:
    found = diagnose(target(address, interface), NOW, timeout_s=TIMEOUT_S)
    assert not found.ok
    name, problem = _failed(found.steps)
    assert name is StepName.INTERFACE
    assert "interface" in problem
    assert all(s.outcome is Outcome.NOT_RUN for s in found.steps[1:])


def test_a_printer_that_is_off_refuses_the_connection() -> None:
    found = diagnose(target(f"127.0.0.1:{free_port()}"), NOW, timeout_s=TIMEOUT_S)
    name, problem = _failed(found.steps)
    assert name is StepName.REACHABLE and "refused" in problem
    step = found.steps[1]
    assert step.advice is not None and "重启" in step.advice.todo_zh


def test_a_missing_serial_device_is_a_cable_problem(tmp_path: Path) -> None:
    found = diagnose(target(str(Path("/dev") / "ttyNOSUCH9"), "serial"), NOW,
                     timeout_s=TIMEOUT_S)
    name, problem = _failed(found.steps)
    assert name is StepName.REACHABLE and "cannot be reached" in problem


def test_a_printer_that_does_not_answer_the_status_query(printer: FakePrinter) -> None:
    printer.state = PrinterState(silent=True)
    found = diagnose(target(printer.address), NOW, timeout_s=TIMEOUT_S)
    name, problem = _failed(found.steps)
    assert name is StepName.STATUS and "does not answer" in problem


@pytest.mark.parametrize(("state", "step", "words"), [
    (PrinterState(paper_out=True), StepName.PAPER, "out of paper"),
    (PrinterState(cover_open=True), StepName.COVER, "cover is open"),
    (PrinterState(error=True), StepName.COVER, "error"),
    (PrinterState(online=False), StepName.COVER, "offline"),
])
def test_paper_cover_and_errors_are_found_in_order(printer: FakePrinter, state: PrinterState,
                                                   step: StepName, words: str) -> None:
    printer.state = state
    found = diagnose(target(printer.address), NOW, timeout_s=TIMEOUT_S)
    name, problem = _failed(found.steps)
    assert (name, words in problem) == (step, True)
    assert printer.received() == b""  # no test page on a printer that cannot print


def test_a_connection_dropped_during_the_test_page(printer: FakePrinter) -> None:
    printer.state = PrinterState(drop_after_bytes=100)
    found = diagnose(target(printer.address), NOW, timeout_s=TIMEOUT_S)
    name, problem = _failed(found.steps)
    assert name is StepName.TEST_PAGE and "dropped" in problem


def test_a_file_printer_has_no_status_but_prints(tmp_path: Path) -> None:
    path = tmp_path / "spool" / "slips.prn"
    found = diagnose(target(str(path), "file"), NOW, timeout_s=TIMEOUT_S)
    assert found.ok, found
    assert path.stat().st_mode & 0o777 == 0o600
    assert decode_escpos(path.read_bytes()).cuts == 1


def test_every_fault_has_advice_in_both_languages() -> None:
    assert set(ADVICE) == set(Fault)
    for advice in ADVICE.values():
        assert advice.problem_zh and advice.problem_en and advice.todo_zh and advice.todo_en


@pytest.mark.parametrize(("interface", "address", "expected"), [
    ("network", "printer.local", ("printer.local", 9100)),
    ("network", "10.0.0.7:9101", ("10.0.0.7", 9101)),
    ("serial", "/dev/ttyUSB0", ("/dev/ttyUSB0", 9600)),
    ("usb", "04b8:0202", (0x04B8, 0x0202)),
])
def test_addresses(interface: str, address: str, expected: tuple[object, object]) -> None:
    found = devices.parse_address(interface, address)
    pair = {"network": (found.host, found.port), "serial": (found.path, found.baud),
            "usb": (found.vendor_id, found.product_id)}[interface]
    assert pair == expected


@pytest.mark.parametrize(("interface", "address"), [
    ("network", "10.0.0.7:0"), ("network", "10.0.0.7:99999"), ("network", ""),
    ("usb", "4b8"), ("serial", "ttyS0"), ("file", ""),
])
def test_bad_addresses_say_what_is_wrong(interface: str, address: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        devices.parse_address(interface, address)


def test_sending_to_a_closed_connection_is_a_printer_error(printer: FakePrinter) -> None:
    connection = devices.connect(devices.parse_address("network", printer.address), TIMEOUT_S)
    printer.close()
    connection.close()
    with pytest.raises(PrinterError):
        connection.status()
