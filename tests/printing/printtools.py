"""Helpers of the printing tests: a fake network printer on 127.0.0.1, an ESC/POS decoder,
and a shop with a terminal that takes card payments at the issuer simulator.

The fake printer listens on a free port, records every byte it receives (per connection),
and answers the real-time status queries (``DLE EOT 1/2/4``) from its current state:
online, paper out, cover open, error, offline, silent (never answers), or dropping the
connection once it has received a number of bytes of a slip.
"""

from __future__ import annotations

import re
import socket
import threading
from dataclasses import dataclass, field

from autosettle.domain.cards import luhn_check_digit
from autosettle.domain.merchants import AccountType, CycleCode, MerchantType
from autosettle.domain.money import Money
from autosettle.domain.transactions import TxnType
from autosettle.services import merchants, payments
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.services.payments import CardInput, OriginalRef, PaymentRequest, PaymentResult
from autosettle.simulators.issuer import IssuerSimulator

MID = "898310054110001"
TID = "HL000001"
TID2 = "HL000002"
MID_OTHER = "898310058120001"
TID_OTHER = "LW000001"
PIN = "123456"


def make_pan(serial: int, bin6: str = "622202") -> str:
    body = f"{bin6}{serial:012d}"
    return body + luhn_check_digit(body)


PAN = make_pan(424242)
PAN_POOR = make_pan(515151)


def seed_shop(ctx: ServiceContext, sim: IssuerSimulator) -> None:
    """Two merchants; the first with two terminals; cards at the simulator."""
    for mid, name, tids in ((MID, "华联超市 Hualian Supermarket", (TID, TID2)),
                            (MID_OTHER, "老王小吃 Lao Wang Snacks", (TID_OTHER,))):
        merchants.create_merchant(ctx, SYSTEM, merchants.NewMerchant(
            mid, name, MerchantType.ENTERPRISE, "5411", short_name=name,
            settlement_cycle=CycleCode.T1))
        merchants.add_settlement_account(ctx, SYSTEM, mid, merchants.NewSettlementAccount(
            "ICBC", "6212260200001234567", name, AccountType.CORPORATE))
        for tid in tids:
            merchants.add_terminal(ctx, SYSTEM, mid, merchants.NewTerminal(tid))
    sim.add_card(PAN, balance_minor=1_000_000, pin=PIN)
    sim.add_card(PAN_POOR, balance_minor=100, pin=PIN)


def sale(ctx: ServiceContext, fen: int, pan: str = PAN, terminal_id: str = TID,
         merchant_id: str = MID, entry_mode: str | None = "021") -> PaymentResult:
    return payments.authorize(ctx, PaymentRequest(
        TxnType.SALE, merchant_id, terminal_id, Money(fen),
        CardInput(pan, "3012", PIN, entry_mode=entry_mode)))


def follow_up(ctx: ServiceContext, kind: TxnType, original_txn_id: str,
              fen: int | None = None) -> PaymentResult:
    return payments.authorize(ctx, PaymentRequest(
        kind, MID, TID, Money(fen) if fen is not None else None, None,
        OriginalRef(txn_id=original_txn_id)))


def txn_of(result: PaymentResult) -> str:
    if result.record is None:
        raise AssertionError(f"no record: {result.response_code} {result.message}")
    return result.record.txn_id


# -- the fake printer --------------------------------------------------------------------------

ONLINE = b"\x12"
OFFLINE = b"\x1a"


@dataclass
class PrinterState:
    """What the fake printer reports and does."""

    online: bool = True
    paper_out: bool = False
    paper_near_end: bool = False
    cover_open: bool = False
    error: bool = False
    silent: bool = False
    drop_after_bytes: int | None = None
    """Close the connection once this many slip bytes (not status queries) arrived."""


@dataclass
class FakePrinter:
    """A network ESC/POS printer on 127.0.0.1 (port 0: a free port)."""

    state: PrinterState = field(default_factory=PrinterState)
    connections: list[bytearray] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def received(self) -> bytes:
        """Everything received, status queries removed, all connections in order."""
        with self._lock:
            return b"".join(bytes(c) for c in self.connections)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._server.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _status(self, n: int) -> bytes:
        s = self.state
        if n == 1:
            return OFFLINE if not s.online or s.cover_open or s.paper_out or s.error else ONLINE
        if n == 2:
            return bytes([0x12 | (0x04 if s.cover_open else 0) | (0x20 if s.paper_out else 0)
                          | (0x40 if s.error else 0)])
        if n == 4:
            return bytes([0x12 | (0x60 if s.paper_out else 0)
                          | (0x0C if s.paper_near_end else 0)])
        return b""

    def _handle(self, conn: socket.socket) -> None:
        record = bytearray()
        with self._lock:
            self.connections.append(record)
        conn.settimeout(0.2)
        pending = b""
        with conn:
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                pending += chunk
                while True:
                    at = pending.find(b"\x10\x04")
                    if at < 0 or at + 2 >= len(pending):
                        break
                    with self._lock:
                        record.extend(pending[:at])
                    n = pending[at + 2]
                    pending = pending[at + 3:]
                    if not self.state.silent:
                        conn.sendall(self._status(n))
                keep = pending[-2:] if pending.endswith((b"\x10", b"\x10\x04")) else b""
                body = pending[:len(pending) - len(keep)]
                with self._lock:
                    record.extend(body)
                pending = keep
                limit = self.state.drop_after_bytes
                if limit is not None and len(record) >= limit:
                    with self._lock:
                        del record[limit:]
                    conn.shutdown(socket.SHUT_RDWR)
                    return


# -- decoding ESC/POS ----------------------------------------------------------------------------

@dataclass
class Decoded:
    """What a stream of ESC/POS bytes prints."""

    lines: list[str]
    cuts: int
    qr_payloads: list[str]
    chinese_mode: bool

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


_QR_STORE = re.compile(rb"\x1d\(k(..)1P0", re.S)


def decode_escpos(data: bytes, encoding: str = "gb18030") -> Decoded:
    """Text lines (GB18030), cuts (``GS V``) and QR payloads (``GS ( k`` fn 80) of a stream.

    Knows the commands autosettle sends: ESC @, ESC ! n, ESC E n, ESC a n, ESC d n, GS ! n,
    GS V m [n], GS ( k pL pH ..., FS &, FS ..
    """
    out = bytearray()
    cuts = 0
    payloads: list[str] = []
    chinese = False
    i = 0
    while i < len(data):
        b = data[i]
        if b == 0x1B:  # ESC
            op = data[i + 1]
            i += 2 if op == ord("@") else 3
            continue
        if b == 0x1C:  # FS & / FS .
            chinese = chinese or data[i + 1] == ord("&")
            i += 2
            continue
        if b == 0x1D:  # GS
            op = data[i + 1]
            if op == ord("V"):
                cuts += 1
                i += 3 if data[i + 2] in (0, 1, 48, 49) else 4
                continue
            if op == ord("("):
                size = data[i + 3] + 256 * data[i + 4]
                body = data[i + 5:i + 5 + size]
                if body[:3] == b"1P0":
                    payloads.append(body[3:].decode())
                i += 5 + size
                continue
            i += 3
            continue
        out.append(b)
        i += 1
    text = out.decode(encoding, errors="replace")
    return Decoded(text.split("\n"), cuts, payloads, chinese)
