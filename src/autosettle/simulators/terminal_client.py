"""A CUP POS terminal in Python: the client side of the terminal host.

It builds requests with the domain codec, signs on and unwraps its working keys with the
TMK, MACs every financial request and checks the MAC of every answer, builds ISO 9564
format 0 PIN blocks under the PIK, keeps a journal of its batch (for the 0500 totals and
the 0320 upload) and a pending reversal (store and forward: written before a reversible
request goes out, deleted when a valid answer comes back, sent before the next request).

Two layers, so the tests, the documentation example and the terminal simulator share it:

* building and reading messages needs no socket: ``prepare_*`` return an
  :class:`Outgoing`, :meth:`TerminalClient.encode` turns it into wire bytes and
  :meth:`TerminalClient.accept` reads the answer bytes and updates the journal;
* :meth:`TerminalClient.send` does both over a blocking TCP connection (with timeouts),
  reconnecting when needed; ``abandon=True`` sends and drops the connection without
  reading, like a terminal that lost power mid-transaction.

Not thread-safe: one client is one terminal (run one per thread for a fleet).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final

from autosettle.domain.cards import CardBrand, brand_of
from autosettle.domain.iso8583 import crypto
from autosettle.domain.iso8583.fields import (
    BATCH_UPLOAD_ENTRIES_MAX,
    BatchUploadEntry,
    CardOrganisation,
    CardTotals,
    Field60,
    Field61,
    NetworkManagementCode,
    ReconciliationCode,
    SettlementTotals,
    build_batch_upload,
    build_batch_upload_end,
    build_field60,
    build_field61,
    build_settlement_totals,
    parse_balance_amount,
    parse_field60,
    parse_settlement_totals,
)
from autosettle.domain.iso8583.frame import (
    LENGTH_PREFIX_SIZE_BYTES,
    Frame,
    Header,
    Tpdu,
    decode_frame_body,
    encode_frame,
    parse_frame_length,
)
from autosettle.domain.iso8583.message import MTI_KEY, MessageFields, decode_message, encode_message
from autosettle.services.key_module import MacAlgorithm
from autosettle.terminal_host.messages import (
    FINANCIAL_BY_KIND,
    MAC_REQUIRED,
    FinancialSpec,
    MessageKind,
)

TIMEOUT_S_DEFAULT: Final = 15.0
TRACE_MAX: Final = 999_999
BATCH_NO_MAX: Final = 999_999
CURRENCY_CNY_NUMERIC: Final = "156"
OPERATOR: Final = "01 "
"""Field 63 of network management requests: the cashier's operator number."""
SECURITY_DOUBLE: Final = "2600000000000000"
SECURITY_SINGLE: Final = "2000000000000000"
REVERSAL_DROPPED_FIELDS: Final = frozenset({"35", "36", "52", "26", "53", "37", "64"})
NO_ANSWER: Final = "98"
BAD_ANSWER_MAC: Final = "A0"
OTHER_REASON: Final = "06"
_FOREIGN_BRANDS: Final = frozenset({CardBrand.VISA, CardBrand.MASTERCARD, CardBrand.AMEX,
                                    CardBrand.JCB})
_K = MessageKind


class TerminalClientError(Exception):
    """The client could not complete an exchange (no answer, not signed on, ...)."""


class NoAnswer(TerminalClientError):
    """The host closed the connection or did not answer in time."""


@dataclass(frozen=True, slots=True)
class TerminalProfile:
    """What is loaded into a terminal at deployment: its ids, TMK and MAC algorithm."""

    merchant_id: str
    terminal_id: str
    tmk: bytes = field(repr=False)
    mac_algorithm: MacAlgorithm = MacAlgorithm.CUP_ECB
    sign_on_mode: str = NetworkManagementCode.SIGN_ON_DOUBLE_LENGTH.value
    tpdu: Tpdu = field(default_factory=lambda: Tpdu(0x60, 0x0003, 0x0000))
    header: Header = field(default_factory=Header)


@dataclass
class LocalTxn:
    """One approved transaction in the terminal's journal."""

    kind: MessageKind
    batch_no: int
    trace: int
    amount_minor: int
    pan: str | None = field(repr=False)
    rrn: str | None = None
    auth_code: str | None = None
    status: str = "approved"
    original: LocalTxn | None = None

    @property
    def card_org(self) -> CardOrganisation:
        if self.pan and brand_of(self.pan) in _FOREIGN_BRANDS:
            return CardOrganisation.FOREIGN
        return CardOrganisation.DOMESTIC


@dataclass
class Outgoing:
    """A request ready to encode, and what the journal does when it is approved."""

    kind: MessageKind
    fields: MessageFields
    mac: bool
    txn: LocalTxn | None = None
    reverses: LocalTxn | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """A decoded answer; ``mac_ok`` is None when the answer carried no field 64."""

    fields: MessageFields
    mac_ok: bool | None
    txn: LocalTxn | None = None

    @property
    def code(self) -> str:
        return self.fields.get("39", "")

    @property
    def approved(self) -> bool:
        return self.code == "00" and self.mac_ok is not False

    @property
    def rrn(self) -> str | None:
        return self.fields.get("37")

    @property
    def auth_code(self) -> str | None:
        return self.fields.get("38")

    @property
    def balance_minor(self) -> int | None:
        value = self.fields.get("54")
        return parse_balance_amount(value).signed_minor if value else None

    @property
    def balanced(self) -> bool | None:
        """For a 0510: True when both field 48 blocks answer ``1`` (对账平)."""
        value = self.fields.get("48")
        if value is None or self.fields.get(MTI_KEY) != "0510":
            return None
        totals = parse_settlement_totals(value)
        return all(b.code is ReconciliationCode.BALANCED
                   for b in (totals.domestic, totals.foreign))


class TerminalClient:
    """One terminal: its keys, batch, trace counter, journal and pending reversal."""

    def __init__(self, profile: TerminalProfile, host: str = "127.0.0.1", port: int = 5800,
                 timeout_s: float = TIMEOUT_S_DEFAULT) -> None:
        self.profile = profile
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self.keys: crypto.WorkingKeys | None = None
        self.batch_no = 1
        self.trace = 0
        self.journal: list[LocalTxn] = []
        self.pending_reversal: Outgoing | None = None
        self._sock: socket.socket | None = None

    def __repr__(self) -> str:
        return (f"TerminalClient({self.profile.terminal_id}, batch={self.batch_no:06d}, "
                f"trace={self.trace:06d}, signed_on={self.keys is not None})")

    # -- connection ---------------------------------------------------------------------

    def connect(self) -> None:
        if self._sock is None:
            self._sock = socket.create_connection((self.host, self.port), self.timeout_s)
            self._sock.settimeout(self.timeout_s)

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def __enter__(self) -> TerminalClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def send_raw(self, data: bytes) -> bytes | None:
        """Write bytes as they are and read one frame back (None: connection closed)."""
        self.connect()
        sock = self._socket()
        try:
            sock.sendall(data)
            return self._read_frame(sock)
        except (TimeoutError, OSError, NoAnswer):
            self.close()
            return None

    def _socket(self) -> socket.socket:
        if self._sock is None:
            raise TerminalClientError("not connected")
        return self._sock

    def _read_exactly(self, sock: socket.socket, size: int) -> bytes:
        chunks, remaining = [], size
        while remaining:
            chunk = sock.recv(remaining)
            if not chunk:
                raise NoAnswer("the host closed the connection")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def _read_frame(self, sock: socket.socket) -> bytes:
        prefix = self._read_exactly(sock, LENGTH_PREFIX_SIZE_BYTES)
        return prefix + self._read_exactly(sock, parse_frame_length(prefix))

    # -- building -----------------------------------------------------------------------

    def next_trace(self) -> int:
        self.trace = self.trace % TRACE_MAX + 1
        return self.trace

    def _base(self, mti: str) -> MessageFields:
        return MessageFields({MTI_KEY: mti, "11": f"{self.next_trace():06d}",
                              "41": self.profile.terminal_id, "42": self.profile.merchant_id})

    def _mac(self, data: bytes) -> bytes:
        if self.keys is None:
            raise TerminalClientError("sign on first: no MAC key")
        if self.profile.mac_algorithm is MacAlgorithm.X919:
            return crypto.mac_x919(self.keys.mak, data)
        return crypto.mac_cup_ecb(self.keys.mak, data)

    def encode(self, outgoing: Outgoing) -> bytes:
        """The wire bytes of a request (length prefix, TPDU, header, payload, MAC)."""
        payload = encode_message(outgoing.fields, mac=self._mac if outgoing.mac else None)
        return encode_frame(Frame(self.profile.tpdu, self.profile.header, payload))

    def pin_block(self, pin: str, pan: str) -> bytes:
        """Field 52: the format 0 block of ``pin`` and ``pan`` under the PIK."""
        if self.keys is None:
            raise TerminalClientError("sign on first: no PIN key")
        return crypto.encrypt_pin_block(self.keys.pik, crypto.pin_block_iso0(pin, pan))

    def prepare_sign_on(self, mode: str | None = None) -> Outgoing:
        fields = self._base("0800")
        code = mode or self.profile.sign_on_mode
        fields["60"] = build_field60(Field60("00", self.batch_no, code))
        fields["63"] = OPERATOR
        return Outgoing(_K.SIGN_ON, fields, mac=False)

    def prepare_network(self, kind: MessageKind) -> Outgoing:
        """Sign-off (0820/002) or echo (0820/301)."""
        code = (NetworkManagementCode.SIGN_OFF if kind is _K.SIGN_OFF
                else NetworkManagementCode.ECHO)
        fields = self._base("0820")
        fields["60"] = build_field60(Field60("00", self.batch_no, code.value))
        return Outgoing(kind, fields, mac=False)

    def prepare(self, kind: MessageKind, *, pan: str | None = None,
                amount_minor: int | None = None, pin: str | None = None,
                expiry: str | None = "3012", original: LocalTxn | None = None,
                track2: str | None = None) -> Outgoing:
        """A financial request of ``kind`` (see ``messages.FINANCIAL``)."""
        spec = FINANCIAL_BY_KIND[kind]
        fields = self._base(spec.mti)
        fields.update({"3": spec.processing_code, "25": spec.condition_code,
                       "49": CURRENCY_CNY_NUMERIC,
                       "60": build_field60(Field60(spec.type_code.value, self.batch_no,
                                                   "000", "6", "0"))})
        if amount_minor is not None:
            fields["4"] = f"{amount_minor:012d}"
        card_pan = pan or (original.pan if original else None)
        if track2 is not None:
            fields["35"] = track2
        elif card_pan is not None and (spec.needs_card or pan is not None or pin is not None):
            fields["2"] = card_pan
            if expiry is not None:
                fields["14"] = expiry
        if "2" in fields or "35" in fields:
            fields["22"] = "021" if pin else "022"
        if pin is not None and card_pan is not None:
            fields["26"] = "12"
            fields["52"] = self.pin_block(pin, card_pan).hex().upper()
            double = self.keys is not None and len(self.keys.pik) > 8
            fields["53"] = SECURITY_DOUBLE if double else SECURITY_SINGLE
        if spec.has_original:
            self._refer(fields, spec, original)
        txn = LocalTxn(kind, self.batch_no, self.trace,
                       amount_minor if amount_minor is not None else 0, card_pan,
                       original=original)
        return Outgoing(kind, fields, mac=True, txn=txn)

    def _refer(self, fields: MessageFields, spec: FinancialSpec,
               original: LocalTxn | None) -> None:
        if original is None:
            raise TerminalClientError(f"a {spec.kind.value} needs its original")
        fields["61"] = build_field61(Field61(original.batch_no, original.trace))
        if original.rrn:
            fields["37"] = original.rrn
        if original.auth_code and spec.condition_code == "06":
            fields["38"] = original.auth_code

    def prepare_reversal(self, of: Outgoing, reason: str = NO_ANSWER) -> Outgoing:
        """The 0400 (0420 for a refund) of a request: a copy without card secrets, with
        field 39 the reason and field 61 the reversed message's batch and trace."""
        fields = MessageFields({k: v for k, v in of.fields.items()
                                if k not in REVERSAL_DROPPED_FIELDS})
        fields[MTI_KEY] = "0420" if of.kind is _K.REFUND else "0400"
        fields["39"] = reason
        f60 = parse_field60(of.fields["60"])
        fields["61"] = build_field61(Field61(f60.batch_no, int(of.fields["11"])))
        return Outgoing(_K.REVERSAL, fields, mac=True, reverses=of.txn)

    def prepare_settlement(self) -> Outgoing:
        fields = self._base("0500")
        fields.update({"48": build_settlement_totals(self.totals()),
                       "49": CURRENCY_CNY_NUMERIC,
                       "60": build_field60(Field60("00", self.batch_no,
                                                   NetworkManagementCode.SETTLEMENT.value)),
                       "63": OPERATOR})
        return Outgoing(_K.SETTLEMENT, fields, mac=True)

    def prepare_uploads(self, end_code: str = "202") -> list[Outgoing]:
        """The 0320 messages of a batch upload: 8 entries each, then the end message."""
        entries = self.upload_entries()
        messages = []
        for start in range(0, len(entries), BATCH_UPLOAD_ENTRIES_MAX):
            fields = self._base("0320")
            fields["48"] = build_batch_upload(entries[start:start + BATCH_UPLOAD_ENTRIES_MAX])
            fields["60"] = build_field60(Field60("00", self.batch_no,
                                                 NetworkManagementCode.SETTLEMENT.value))
            messages.append(Outgoing(_K.BATCH_UPLOAD, fields, mac=True))
        end = self._base("0320")
        end["48"] = build_batch_upload_end(len(entries))
        end["60"] = build_field60(Field60("00", self.batch_no, end_code))
        messages.append(Outgoing(_K.BATCH_UPLOAD_END, end, mac=True))
        return messages

    # -- the batch journal ----------------------------------------------------------------

    def counted(self, batch_no: int | None = None) -> list[LocalTxn]:
        """Approved sales, completions and refunds of a batch (the current one by default)."""
        batch = self.batch_no if batch_no is None else batch_no
        return [t for t in self.journal if t.batch_no == batch and t.status == "approved"
                and t.kind in (_K.SALE, _K.COMPLETION, _K.REFUND)]

    def totals(self) -> SettlementTotals:
        """Field 48 of the 0500, from the journal (debit: sales and completions; credit:
        refunds)."""
        blocks: dict[CardOrganisation, list[int]] = {o: [0, 0, 0, 0] for o in CardOrganisation}
        for txn in self.counted():
            block = blocks[txn.card_org]
            offset = 2 if txn.kind is _K.REFUND else 0
            block[offset] += txn.amount_minor
            block[offset + 1] += 1
        return SettlementTotals(*(CardTotals(b[0], b[1], b[2], b[3]) for b in
                                  (blocks[CardOrganisation.DOMESTIC],
                                   blocks[CardOrganisation.FOREIGN])))

    def upload_entries(self) -> list[BatchUploadEntry]:
        return [BatchUploadEntry(t.card_org, t.trace, t.pan or "", t.amount_minor)
                for t in self.counted() if t.pan]

    # -- reading answers ------------------------------------------------------------------

    def accept(self, outgoing: Outgoing, wire: bytes) -> Answer:
        """Decode an answer, check its MAC, and apply it to keys, journal and reversal."""
        decoded = decode_message(decode_frame_body(wire[LENGTH_PREFIX_SIZE_BYTES:]).payload)
        fields = decoded.fields
        mac_ok: bool | None = None
        if "64" in fields and self.keys is not None:
            mac_ok = crypto.macs_equal(self._mac(decoded.mac_data), bytes.fromhex(fields["64"]))
        answer = Answer(fields, mac_ok, outgoing.txn)
        self._settle_reversal(outgoing, answer)
        if outgoing.kind is _K.SIGN_ON:
            self._take_keys(outgoing, fields)
        elif answer.approved:
            self._journal(outgoing, answer)
        return answer

    def _settle_reversal(self, outgoing: Outgoing, answer: Answer) -> None:
        pending = self.pending_reversal
        if pending is None:
            return
        if outgoing is pending:
            if answer.mac_ok is not False and answer.code not in ("", BAD_ANSWER_MAC):
                self.pending_reversal = None
            return
        if outgoing.kind in MAC_REQUIRED and pending.reverses is outgoing.txn:
            valid = answer.mac_ok is True or (answer.mac_ok is None and answer.code != "00")
            if valid:
                self.pending_reversal = None
            else:
                pending.fields["39"] = BAD_ANSWER_MAC

    def _take_keys(self, outgoing: Outgoing, fields: MessageFields) -> None:
        if fields.get("39") != "00" or "62" not in fields:
            return
        mode = parse_field60(outgoing.fields["60"]).network_mgmt_code
        double = mode != NetworkManagementCode.SIGN_ON_SINGLE_LENGTH.value
        self.keys = crypto.parse_working_keys_field(self.profile.tmk,
                                                    bytes.fromhex(fields["62"]), double)
        if "60" in fields:
            self.batch_no = parse_field60(fields["60"]).batch_no

    def _journal(self, outgoing: Outgoing, answer: Answer) -> None:
        txn = outgoing.txn
        if outgoing.kind is _K.REVERSAL:
            undone = outgoing.reverses
            if undone is not None and undone.status != "reversed":
                undone.status = "reversed"
                if undone.original is not None and undone.kind in _UNDOES:
                    undone.original.status = "approved"
            return
        if outgoing.kind is _K.SETTLEMENT or txn is None:
            return
        txn.rrn, txn.auth_code = answer.rrn, answer.auth_code
        if txn.kind in _UNDOES and txn.original is not None:
            txn.original.status = _UNDOES[txn.kind]
        if txn.kind is not _K.BALANCE_INQUIRY:
            self.journal.append(txn)

    # -- over the socket -----------------------------------------------------------------

    def send(self, outgoing: Outgoing, *, abandon: bool = False) -> Answer:
        """Send a request and read its answer (a pending reversal goes first).

        A reversible request is stored as a pending reversal before it leaves; no answer
        (:class:`NoAnswer`) leaves that reversal pending for the next call. ``abandon``
        sends and closes the connection at once (raises :class:`NoAnswer`).
        """
        goes_after_reversal = outgoing.kind in FINANCIAL_BY_KIND or outgoing.kind in (
            _K.SETTLEMENT, _K.BATCH_UPLOAD, _K.BATCH_UPLOAD_END)
        if goes_after_reversal and self.pending_reversal is not None:
            self.send_pending_reversal()
        spec = FINANCIAL_BY_KIND.get(outgoing.kind)
        if spec is not None and spec.reversible:
            self.pending_reversal = self.prepare_reversal(outgoing)
        wire = self.encode(outgoing)
        self.connect()
        sock = self._socket()
        try:
            sock.sendall(wire)
            if abandon:
                raise NoAnswer("abandoned by the terminal")
            answer_wire = self._read_frame(sock)
        except (OSError, NoAnswer) as exc:
            self.close()
            raise NoAnswer(str(exc) or type(exc).__name__) from None
        return self.accept(outgoing, answer_wire)

    def send_pending_reversal(self) -> Answer | None:
        """Send the stored reversal; raises :class:`NoAnswer` if it stays pending."""
        pending = self.pending_reversal
        if pending is None:
            return None
        answer = self.send(pending)
        if self.pending_reversal is not None:
            raise NoAnswer(f"reversal not acknowledged: {answer.code}")
        return answer

    def sign_on(self, mode: str | None = None) -> Answer:
        return self.send(self.prepare_sign_on(mode))

    def sign_off(self) -> Answer:
        answer = self.send(self.prepare_network(_K.SIGN_OFF))
        self.keys = None
        return answer

    def echo(self) -> Answer:
        return self.send(self.prepare_network(_K.ECHO))

    def sale(self, pan: str, amount_minor: int, pin: str | None = None,
             expiry: str | None = "3012") -> Answer:
        return self.send(self.prepare(_K.SALE, pan=pan, amount_minor=amount_minor, pin=pin,
                                      expiry=expiry))

    def void(self, original: LocalTxn, pin: str | None = None) -> Answer:
        return self.send(self.prepare(_K.VOID, amount_minor=original.amount_minor,
                                      original=original, pin=pin))

    def refund(self, original: LocalTxn, amount_minor: int) -> Answer:
        return self.send(self.prepare(_K.REFUND, amount_minor=amount_minor,
                                      original=original))

    def preauth(self, pan: str, amount_minor: int, pin: str | None = None) -> Answer:
        return self.send(self.prepare(_K.PREAUTH, pan=pan, amount_minor=amount_minor,
                                      pin=pin))

    def preauth_void(self, preauth: LocalTxn) -> Answer:
        return self.send(self.prepare(_K.PREAUTH_VOID, amount_minor=preauth.amount_minor,
                                      original=preauth))

    def completion(self, preauth: LocalTxn, amount_minor: int) -> Answer:
        return self.send(self.prepare(_K.COMPLETION, amount_minor=amount_minor,
                                      original=preauth))

    def completion_void(self, completion: LocalTxn) -> Answer:
        return self.send(self.prepare(_K.COMPLETION_VOID, amount_minor=completion.amount_minor,
                                      original=completion))

    def balance(self, pan: str, pin: str | None = None) -> Answer:
        return self.send(self.prepare(_K.BALANCE_INQUIRY, pan=pan, pin=pin))

    def settle(self) -> Answer:
        """0500 with the journal's totals; a balanced answer starts the next batch."""
        answer = self.send(self.prepare_settlement())
        if answer.approved and answer.balanced:
            self.next_batch()
        return answer

    def upload(self, end_code: str = "202") -> list[Answer]:
        """The 0320 batch upload after a not-balanced 0510; then the next batch starts."""
        answers = [self.send(message) for message in self.prepare_uploads(end_code)]
        if all(a.approved for a in answers):
            self.next_batch()
        return answers

    def next_batch(self) -> None:
        self.batch_no = self.batch_no % BATCH_NO_MAX + 1


_UNDOES: Final = {_K.VOID: "voided", _K.COMPLETION_VOID: "voided",
                  _K.PREAUTH_VOID: "cancelled", _K.COMPLETION: "completed"}
"""What an approved message does to its original in the journal (a reversal undoes it)."""
