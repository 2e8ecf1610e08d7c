"""Printer connections: network (TCP 9100), USB, serial, parallel and file, through
python-escpos, with the ESC/POS real-time status query (``DLE EOT``).

A :class:`PrinterAddress` says where a printer is; :func:`parse_address` checks that the
address suits the interface (a ``/dev/ttyS0`` address on a "network" printer is the
document's "wrong interface chosen", reported by the diagnosis). :func:`connect` opens
the python-escpos printer object; :class:`Connection` sends bytes and asks for status.

Status (ESC/POS ``DLE EOT n``, answered at once even while the printer is busy):

* ``n = 1`` printer status: bit 3 set = offline;
* ``n = 2`` offline cause: bit 2 cover open, bit 5 printing stopped at paper end, bit 6
  an error;
* ``n = 4`` paper roll sensor: bits 2-3 paper near end, bits 5-6 paper end.

A file printer (a spool file, or the demo's slips) has no status: it is always ready.
Every socket read and write has a timeout (:data:`IO_TIMEOUT_S`).

Errors from python-escpos, the socket layer, pyusb and pyserial are translated once, here,
into :class:`PrinterError` with a :class:`Fault`.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from autosettle.private_files import open_private, private_dir

NETWORK_PORT_DEFAULT: Final = 9100
SERIAL_BAUD_DEFAULT: Final = 9600
IO_TIMEOUT_S: Final = 3.0
STATUS_ANSWER_BYTES_MAX: Final = 16

DLE_EOT: Final = b"\x10\x04"
STATUS_PRINTER: Final = DLE_EOT + b"\x01"
STATUS_OFFLINE_CAUSE: Final = DLE_EOT + b"\x02"
STATUS_PAPER: Final = DLE_EOT + b"\x04"
OFFLINE_BIT: Final = 0x08
COVER_OPEN_BIT: Final = 0x04
PAPER_STOP_BIT: Final = 0x20
ERROR_BIT: Final = 0x40
PAPER_NEAR_END_BITS: Final = 0x0C
PAPER_END_BITS: Final = 0x60


class Interface(StrEnum):
    """How a printer is attached (the document: USB or parallel; and network, serial)."""

    NETWORK = "network"
    USB = "usb"
    SERIAL = "serial"
    PARALLEL = "parallel"
    FILE = "file"


class Fault(StrEnum):
    """Why a printer could not print (each has a diagnosis message)."""

    BAD_ADDRESS = "bad_address"
    DRIVER_MISSING = "driver_missing"
    UNREACHABLE = "unreachable"
    REFUSED = "refused"
    NO_ANSWER = "no_answer"
    OFFLINE = "offline"
    PAPER_END = "paper_end"
    COVER_OPEN = "cover_open"
    PRINTER_ERROR = "printer_error"
    DISCONNECTED = "disconnected"


class PrinterError(Exception):
    """A printer could not be reached or could not print; ``fault`` says why."""

    def __init__(self, fault: Fault, detail: str) -> None:
        super().__init__(f"{fault.value}: {detail}")
        self.fault = fault
        self.detail = detail


@dataclass(frozen=True, slots=True)
class PrinterAddress:
    """Where a printer is: host and port, USB vendor:product, device path and baud rate."""

    interface: Interface
    host: str = ""
    port: int = NETWORK_PORT_DEFAULT
    vendor_id: int = 0
    product_id: int = 0
    path: str = ""
    baud: int = SERIAL_BAUD_DEFAULT


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    """What ``DLE EOT`` answered."""

    online: bool
    cover_open: bool
    paper_end: bool
    paper_near_end: bool
    error: bool

    @property
    def ready(self) -> bool:
        return self.online and not (self.cover_open or self.paper_end or self.error)

    def fault(self) -> Fault | None:
        """The first reason the printer cannot print, in the document's order."""
        if self.paper_end:
            return Fault.PAPER_END
        if self.cover_open:
            return Fault.COVER_OPEN
        if self.error:
            return Fault.PRINTER_ERROR
        if not self.online:
            return Fault.OFFLINE
        return None


READY: Final = PrinterStatus(True, False, False, False, False)

_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}$")
_USB = re.compile(r"^(?:0x)?([0-9A-Fa-f]{1,4}):(?:0x)?([0-9A-Fa-f]{1,4})$")
_DEVICE = re.compile(r"^(/dev/[A-Za-z0-9/_.-]+|COM[0-9]{1,3})(?:@([0-9]{3,7}))?$")


def parse_address(interface: str, address: str) -> PrinterAddress:
    """The address of a printer, checked against its interface.

    >>> parse_address("network", "192.168.1.50").port
    9100
    >>> parse_address("usb", "0x0416:0x5011").vendor_id
    1046
    >>> parse_address("serial", "/dev/ttyS0@19200").baud
    19200

    Raises ``ValueError`` with a sentence saying what is wrong.
    """
    try:
        kind = Interface(interface)
    except ValueError:
        raise ValueError(f"unknown interface {interface!r}: one of "
                         f"{', '.join(i.value for i in Interface)}") from None
    address = address.strip()
    if kind is Interface.NETWORK:
        host, _, port_text = address.rpartition(":") if ":" in address else (address, "", "")
        if not _HOST.match(host or "") or address.startswith("/"):
            raise ValueError(f"{address!r} is not a host name or IP address (a network "
                             "printer is HOST or HOST:PORT, e.g. 192.168.1.50:9100)")
        port = int(port_text) if port_text.isdigit() else NETWORK_PORT_DEFAULT
        if (port_text and not port_text.isdigit()) or not 0 < port < 65536:
            raise ValueError(f"bad port in {address!r}")
        return PrinterAddress(kind, host=host, port=port)
    if kind is Interface.USB:
        match = _USB.match(address)
        if not match:
            raise ValueError(f"{address!r} is not a USB vendor:product id (e.g. 0416:5011; "
                             "`lsusb` lists them)")
        return PrinterAddress(kind, vendor_id=int(match[1], 16), product_id=int(match[2], 16))
    if kind is Interface.SERIAL:
        match = _DEVICE.match(address)
        if not match:
            raise ValueError(f"{address!r} is not a serial device (e.g. /dev/ttyS0@9600)")
        return PrinterAddress(kind, path=match[1], baud=int(match[2] or SERIAL_BAUD_DEFAULT))
    if kind is Interface.PARALLEL:
        if not address.startswith("/dev/"):
            raise ValueError(f"{address!r} is not a parallel port device (e.g. /dev/lp0 or "
                             "/dev/usb/lp0)")
        return PrinterAddress(kind, path=address)
    if not address or address.endswith("/"):
        raise ValueError("a file printer needs a file path")
    return PrinterAddress(kind, path=address)


def decode_status(printer: int | None, offline: int | None, paper: int | None
                  ) -> PrinterStatus:
    """The status from the three ``DLE EOT`` answer bytes (None: no answer to that one)."""
    online = printer is not None and not printer & OFFLINE_BIT
    cover = offline is not None and bool(offline & COVER_OPEN_BIT)
    error = offline is not None and bool(offline & ERROR_BIT)
    paper_end = (paper is not None and bool(paper & PAPER_END_BITS)) or (
        offline is not None and bool(offline & PAPER_STOP_BIT))
    near = paper is not None and bool(paper & PAPER_NEAR_END_BITS)
    return PrinterStatus(online, cover, paper_end, near, error)


def driver_problem(address: PrinterAddress) -> str | None:
    """What is missing on this machine to drive the interface, or None."""
    if address.interface is Interface.USB:
        try:
            import usb.backend.libusb1
        except ImportError:
            return "pyusb is not installed"
        if usb.backend.libusb1.get_backend() is None:
            return "the libusb-1.0 library is not installed (Debian: libusb-1.0-0)"
    if address.interface is Interface.SERIAL:
        try:
            import serial  # noqa: F401
        except ImportError:
            return "pyserial is not installed"
    return None


class Connection:
    """One open connection to a printer: send bytes, ask for status, close."""

    def __init__(self, address: PrinterAddress, device: Any) -> None:
        self.address = address
        self._device = device

    def send(self, data: bytes) -> None:
        try:
            self._device._raw(data)
        except (OSError, ValueError) as exc:
            raise PrinterError(Fault.DISCONNECTED, _describe(exc)) from exc
        except Exception as exc:  # pyusb / pyserial raise their own errors
            raise PrinterError(Fault.DISCONNECTED, _describe(exc)) from exc

    def status(self) -> PrinterStatus:
        """The real-time status; a printer that does not answer is ``NO_ANSWER``."""
        if self.address.interface in (Interface.FILE, Interface.PARALLEL):
            return READY  # nothing to ask: a spool file or a write-only port
        printer = self._ask(STATUS_PRINTER)
        offline = self._ask(STATUS_OFFLINE_CAUSE)
        paper = self._ask(STATUS_PAPER)
        return decode_status(printer, offline, paper)

    def _ask(self, query: bytes) -> int:
        try:
            answer = self._device.query_status(query)
        except TimeoutError as exc:
            raise PrinterError(Fault.NO_ANSWER, "no answer to the status query "
                               f"(DLE EOT {query[-1]}) within {IO_TIMEOUT_S:g} s") from exc
        except Exception as exc:
            raise PrinterError(Fault.DISCONNECTED, _describe(exc)) from exc
        if not answer:
            raise PrinterError(Fault.DISCONNECTED, "the printer closed the connection")
        return int(answer[-1])

    def close(self) -> None:
        with contextlib.suppress(Exception):  # a dead connection: nothing left to close
            self._device.close()


def connect(address: PrinterAddress, timeout_s: float = IO_TIMEOUT_S) -> Connection:
    """Open the printer at ``address`` (python-escpos's printer classes)."""
    problem = driver_problem(address)
    if problem:
        raise PrinterError(Fault.DRIVER_MISSING, problem)
    try:
        device = _open(address, timeout_s)
    except PrinterError:
        raise
    except ConnectionRefusedError as exc:
        raise PrinterError(Fault.REFUSED, _describe(exc)) from exc
    except TimeoutError as exc:
        raise PrinterError(Fault.UNREACHABLE, f"no connection within {timeout_s:g} s") \
            from exc
    except Exception as exc:  # escpos.exceptions.DeviceNotFoundError and friends
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, ConnectionRefusedError):
            raise PrinterError(Fault.REFUSED, _describe(cause)) from exc
        raise PrinterError(Fault.UNREACHABLE, _describe(exc)) from exc
    return Connection(address, device)


def _open(address: PrinterAddress, timeout_s: float) -> Any:
    if address.interface is Interface.NETWORK:
        from escpos.printer import Network

        network = Network(address.host, address.port, timeout=timeout_s)
        network.open()
        return network
    if address.interface is Interface.USB:
        from escpos.printer import Usb

        usb = Usb(address.vendor_id, address.product_id, timeout=int(timeout_s * 1000))
        usb.open()
        return usb
    if address.interface is Interface.SERIAL:
        from escpos.printer import Serial

        serial = Serial(address.path, baudrate=address.baud, timeout=timeout_s)
        serial.open()
        return serial
    if address.interface is Interface.PARALLEL:
        from escpos.printer import File

        port = File(address.path)
        port.open()
        return port
    return _AppendFile(Path(address.path))


class _AppendFile:
    """A file printer: every slip appended to one file, 0600, in a 0700 folder.

    (python-escpos's ``File`` truncates its file when opened: right for a device node,
    wrong for a spool file that keeps every slip.)
    """

    def __init__(self, path: Path) -> None:
        private_dir(path.parent, tighten=False)
        self._fd = open_private(path, os.O_WRONLY | os.O_APPEND)

    def _raw(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]

    def query_status(self, query: bytes) -> bytes:
        return b"\x12"

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " ")
    return f"{type(exc).__name__}: {text}"[:180] if text else type(exc).__name__


def reachable(address: PrinterAddress, timeout_s: float = IO_TIMEOUT_S) -> None:
    """Raise :class:`PrinterError` unless the printer's address answers at all (a TCP
    connection, the USB device present, the device node or the file's folder there)."""
    if address.interface is Interface.NETWORK:
        try:
            with socket.create_connection((address.host, address.port), timeout=timeout_s):
                return
        except ConnectionRefusedError as exc:
            raise PrinterError(Fault.REFUSED, _describe(exc)) from exc
        except TimeoutError as exc:
            raise PrinterError(Fault.UNREACHABLE, f"no answer within {timeout_s:g} s") \
                from exc
        except OSError as exc:
            raise PrinterError(Fault.UNREACHABLE, _describe(exc)) from exc
    if address.interface is Interface.USB:
        import usb.core

        try:
            found = usb.core.find(idVendor=address.vendor_id, idProduct=address.product_id)
        except Exception as exc:
            raise PrinterError(Fault.DRIVER_MISSING, _describe(exc)) from exc
        if found is None:
            raise PrinterError(Fault.UNREACHABLE, f"no USB device {address.vendor_id:04x}:"
                               f"{address.product_id:04x} is plugged in")
        return
    if address.interface in (Interface.SERIAL, Interface.PARALLEL):
        if not os.path.exists(address.path):
            raise PrinterError(Fault.UNREACHABLE, f"{address.path} does not exist")
        if not os.access(address.path, os.W_OK):
            raise PrinterError(Fault.UNREACHABLE, f"{address.path} is not writable by this "
                               "user (add it to the lp or dialout group)")
        return
    folder = Path(address.path).parent
    if folder.exists() and not os.access(folder, os.W_OK):
        raise PrinterError(Fault.UNREACHABLE, f"{folder} is not writable")
