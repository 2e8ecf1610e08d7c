"""One request in, one answer out: identify, authenticate, route to a service, encode.

Synchronous on purpose: the asyncio server runs :meth:`Processor.handle` in a worker
thread, and the terminal simulator or a benchmark can call it without sockets. Each call
runs its service calls one after another (units of work never nest).

The pipeline of a request (answers in brackets)::

    MTI not served ........................... close the connection
    not classified / mandatory field missing . [30], or [12] for an unknown combination
    sign-on 0800 ............................. keys service: [00 + field 62] / [97] [03] [58]
    unknown terminal / other merchant's ...... [97] / [03]
    financial / reversal / 0500 / 0320 from a terminal without working keys ... [A0]
    field 64 missing or wrong ................ [A0], nothing processed (0500 / 0320 too,
                                               unless terminal_host_batch_mac_required is
                                               off: then only a MAC present is checked);
                                               right under the
                                               pending MAK of a sign-on: those keys
                                               become current (terminal_keys.authenticate)
    field 52 does not decrypt ................ [99], nothing processed
    the service's answer ..................... [39 from the service], MAC'd

Business rules live in the services; this module only maps fields to service calls and
results back to fields. Every exception is caught here and logged with its traceback: a
reversible financial request that left a record under its trace then gets no answer (the
connection closes, so the terminal reverses: money may have moved before the failure);
anything else, including a financial request that left nothing, is answered 96.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import date
from typing import Final

from autosettle.domain.calendar import SHANGHAI, business_date
from autosettle.domain.errors import UnavailableError, ValidationError, require
from autosettle.domain.iso8583.fields import (
    BalanceAmount,
    Field60,
    build_balance_amount,
    build_field60,
    build_settlement_totals,
    parse_batch_upload,
    parse_batch_upload_end,
    parse_field60,
    parse_field61,
    parse_settlement_totals,
)
from autosettle.domain.iso8583.frame import Frame, encode_frame
from autosettle.domain.iso8583.message import (
    MTI_KEY,
    DecodedMessage,
    MessageFields,
    MessageFormatError,
    encode_message,
)
from autosettle.domain.money import Money, currency
from autosettle.domain.response_codes import ResponseCode
from autosettle.domain.terminal_records import BatchLine
from autosettle.services import payments, reversals, terminal_batches, terminal_keys
from autosettle.services.context import ServiceContext
from autosettle.services.key_module import PinRejected, TerminalHsm, default_hsm
from autosettle.services.payments import CardInput, OriginalRef, PaymentRequest, PaymentResult
from autosettle.services.terminal_keys import TerminalSession
from autosettle.terminal_host.messages import (
    FINANCIAL_BY_KIND,
    MAC_IF_PRESENT,
    MAC_REQUIRED,
    MANDATORY,
    SIGNED_ON_REQUIRED,
    FinancialSpec,
    MessageKind,
    classify,
    response_mti,
    reversed_spec,
)

BALANCE_SHOWN_MINOR_MAX = 10**12 - 1

log = logging.getLogger("autosettle.terminal_host")
RC = ResponseCode
_K = MessageKind

ECHOED_FIELDS: Final = ("3", "4", "11", "25", "41", "42", "49", "60", "61")
"""Request fields copied into every answer that has them."""
_REVERSAL_REASON_DEFAULT: Final = "06"
_NETWORK_TYPE: Final = "00"


class _Refused(Exception):
    """Internal short cut: answer ``code`` at once (never leaves this module)."""

    def __init__(self, code: ResponseCode) -> None:
        super().__init__(code.value)
        self.code = code


@dataclass(frozen=True, slots=True)
class Request:
    """A decoded, classified request with its mandatory fields present."""

    frame: Frame
    fields: MessageFields
    mac_data: bytes
    kind: MessageKind
    f60: Field60

    @property
    def merchant_id(self) -> str:
        return self.fields["42"]

    @property
    def terminal_id(self) -> str:
        return self.fields["41"]

    @property
    def batch_no(self) -> str:
        return f"{self.f60.batch_no:06d}"

    @property
    def software_version(self) -> str:
        return self.frame.header.software_version.hex().upper()


@dataclass(frozen=True, slots=True)
class Outcome:
    """A handler's answer: field 39 and the fields to add (and whether to MAC it)."""

    code: ResponseCode
    fields: dict[str, str]
    authenticated: bool = True
    keys: TerminalSession | None = None
    """The session whose keys the request's MAC verified under (for the answer's MAC)."""


def terminal_key(decoded: DecodedMessage) -> tuple[str, str] | None:
    """(merchant id, terminal id) of a decoded request, to serialise a terminal's messages."""
    mid, tid = decoded.fields.get("42"), decoded.fields.get("41")
    return (mid, tid) if mid is not None and tid is not None else None


class Processor:
    """Answers CUP POS requests for one service context (thread-safe: no mutable state)."""

    def __init__(self, ctx: ServiceContext, hsm: TerminalHsm | None = None) -> None:
        self.ctx = ctx
        self.hsm = hsm or default_hsm(ctx)
        batch_mac = ctx.settings.terminal_host_batch_mac_required
        self.mac_required = MAC_REQUIRED | MAC_IF_PRESENT if batch_mac else MAC_REQUIRED
        """Kinds that must carry field 64; the rest of SIGNED_ON_REQUIRED: if present."""

    def _needs_mac(self, kind: MessageKind, fields: MessageFields) -> bool:
        return kind in self.mac_required or (kind in MAC_IF_PRESENT and "64" in fields)

    # -- entry points -------------------------------------------------------------------

    def handle(self, frame: Frame, decoded: DecodedMessage | None) -> bytes | None:
        """The encoded answer frame, or None to close the connection.

        ``decoded`` is None when the payload did not decode (the server tried): the answer
        is then 30 for a request MTI we serve, else the connection closes.
        """
        if decoded is None:
            return self._undecodable(frame)
        try:
            return self._handle(frame, decoded)
        except UnavailableError as exc:  # an outage, not a bug: no traceback
            log.error("terminal host: %s; %s from terminal %s not served", exc.message,
                      decoded.fields.get(MTI_KEY), decoded.fields.get("41"))
        except Exception:
            log.exception("terminal host: unexpected failure on %s from terminal %s",
                          decoded.fields.get(MTI_KEY), decoded.fields.get("41"))
        mti = response_mti(decoded.fields.get(MTI_KEY, ""))
        if mti is None or (classify(decoded.fields) in _REVERSIBLE
                           and not self._moved_nothing(decoded.fields)):
            # Money may have moved before the failure: no answer makes the terminal send
            # its stored reversal (store and forward), where a 96 could make it retry.
            return None
        return self._encode(frame, self._bare(decoded.fields, mti, RC.SYSTEM_MALFUNCTION))

    def _moved_nothing(self, fields: MessageFields) -> bool:
        """True when no record carries the trace of this failed financial message, so it
        moved nothing and a 96 tells the truth; False when one does, or when it cannot be
        told (the record may hold money: the terminal's reversal must undo it)."""
        try:
            batch_no = f"{parse_field60(fields['60']).batch_no:06d}"
            return terminal_batches.find_message(self.ctx, fields["42"], fields["41"],
                                                 batch_no, fields["11"]) is None
        except Exception:
            log.warning("terminal host: could not tell whether a failed message moved money",
                        exc_info=True)
            return False

    def _undecodable(self, frame: Frame) -> bytes | None:
        mti = frame.payload[:2].hex()
        answer_mti = response_mti(mti)
        if answer_mti is None:
            return None
        return self._encode(frame, MessageFields({MTI_KEY: answer_mti, "39": RC.FORMAT_ERROR}))

    def _handle(self, frame: Frame, decoded: DecodedMessage) -> bytes | None:
        fields = decoded.fields
        answer_mti = response_mti(fields[MTI_KEY])
        if answer_mti is None:
            return None
        kind = classify(fields)
        if kind is None:
            code = RC.INVALID_TRANSACTION if _has_valid_60(fields) else RC.FORMAT_ERROR
            return self._encode(frame, self._bare(fields, answer_mti, code))
        if not (MANDATORY[kind] - {"64"}) <= fields.keys():
            return self._encode(frame, self._bare(fields, answer_mti, RC.FORMAT_ERROR))
        request = Request(frame, fields, decoded.mac_data, kind, parse_field60(fields["60"]))
        if kind is _K.SIGN_ON:
            return self._encode(frame, self._fields(request, self._sign_on(request)))
        session = terminal_keys.open_session(self.ctx, request.merchant_id,
                                             request.terminal_id)
        outcome = self._authenticated(request, session)
        session = outcome.keys or session
        answer = self._fields(request, outcome)
        mac_answer = outcome.authenticated and session.ready and self._needs_mac(kind, fields)
        if outcome.authenticated and session.known and kind is not _K.SIGN_OFF:
            batch = (request.batch_no if kind in _BATCH_TOUCHING
                     and session.accepts_batch(request.batch_no) else None)
            self._touch(request, batch)
        return self._encode(frame, answer, session if mac_answer else None)

    def _touch(self, request: Request, batch_no: str | None) -> None:
        """The heartbeat; its failure is logged and never changes an answer."""
        try:
            terminal_keys.touch(self.ctx, request.merchant_id, request.terminal_id,
                                request.software_version, batch_no)
        except Exception:
            log.warning("terminal host: could not record the heartbeat of terminal %s",
                        request.terminal_id, exc_info=True)

    # -- authentication -----------------------------------------------------------------

    def _authenticated(self, request: Request, session: TerminalSession) -> Outcome:
        """Check who is talking, then run the handler; refusals are not MAC'd."""
        if not session.known:
            return Outcome(session.status.response_code, {}, authenticated=False)
        kind = request.kind
        if kind in SIGNED_ON_REQUIRED and not session.ready:
            return Outcome(RC.MAC_ERROR, {}, authenticated=False)
        if self._needs_mac(kind, request.fields):
            received = request.fields.get("64")
            proven = None if received is None else terminal_keys.authenticate(
                self.ctx, session, request.mac_data, bytes.fromhex(received), self.hsm)
            if proven is None:
                log.info("terminal host: MAC error from terminal %s (%s)",
                         request.terminal_id, kind.value)
                return Outcome(RC.MAC_ERROR, {}, authenticated=False)
            if proven.key_generation != session.key_generation:
                log.info("terminal host: terminal %s uses its new keys (generation %d)",
                         request.terminal_id, proven.key_generation)
            session = proven  # PIN block and answer MAC under the keys that verified
        try:
            outcome = self._route(request, session)
        except _Refused as refusal:
            outcome = Outcome(refusal.code, {})
        except MessageFormatError:
            outcome = Outcome(RC.FORMAT_ERROR, {})
        return replace(outcome, keys=session)

    def _route(self, request: Request, session: TerminalSession) -> Outcome:
        kind = request.kind
        if kind is _K.SIGN_OFF:
            return Outcome(terminal_keys.sign_off(self.ctx, request.merchant_id,
                                                  request.terminal_id,
                                                  request.software_version), {})
        if kind is _K.ECHO:
            return Outcome(RC.APPROVED, {})
        if kind is _K.REVERSAL:
            return self._reversal(request)
        if kind is _K.SETTLEMENT:
            return self._settlement(request)
        if kind in (_K.BATCH_UPLOAD, _K.BATCH_UPLOAD_END):
            return self._upload(request)
        return self._financial(request, session, FINANCIAL_BY_KIND[kind])

    # -- handlers -----------------------------------------------------------------------

    def _sign_on(self, request: Request) -> Outcome:
        mode = request.f60.network_mgmt_code
        outcome = terminal_keys.sign_on(self.ctx, request.merchant_id, request.terminal_id,
                                        mode, request.software_version, self.hsm)
        fields = {"60": build_field60(Field60(_NETWORK_TYPE, int(outcome.batch_no), mode))}
        if outcome.field62 is not None:
            fields["62"] = outcome.field62.hex().upper()
        log.info("terminal host: sign-on of terminal %s: %s (key generation %d%s)",
                 request.terminal_id, outcome.response_code.value, outcome.key_generation,
                 ", pending until the terminal uses it" if outcome.pending else "")
        return Outcome(outcome.response_code, fields)

    def _financial(self, request: Request, session: TerminalSession,
                   spec: FinancialSpec) -> Outcome:
        if not session.accepts_batch(request.batch_no):
            return Outcome(RC.OPERATION_ERROR, {})
        card = self._card(request, session, spec)
        original = None
        if spec.has_original:
            f61 = parse_field61(request.fields["61"])
            original = OriginalRef(batch_no=f"{f61.batch_no:06d}", stan=f"{f61.trace:06d}",
                                   rrn=request.fields.get("37"))
        result = payments.authorize(self.ctx, PaymentRequest(
            txn_type=spec.txn_type, merchant_id=request.merchant_id,
            terminal_id=request.terminal_id, amount=self._amount(request), card=card,
            original=original, batch_no=request.batch_no, stan=request.fields["11"],
            own_batch_numbers=True))
        return Outcome(result.response_code, self._result_fields(request, result))

    def _amount(self, request: Request) -> Money | None:
        digits = request.fields.get("4")
        if digits is None:
            return None
        try:
            cur = currency(request.fields["49"]) if "49" in request.fields else None
        except ValidationError:
            raise _Refused(RC.INVALID_AMOUNT) from None
        return Money(int(digits), cur) if cur is not None else Money(int(digits))

    def _card(self, request: Request, session: TerminalSession,
              spec: FinancialSpec) -> CardInput | None:
        fields = request.fields
        pan, expiry = fields.get("2"), fields.get("14")
        track2 = fields.get("35")
        if track2 is not None:
            track_pan, _, rest = track2.partition("=")
            pan = pan or track_pan
            expiry = expiry or (rest[:4] if len(rest) >= 4 else None)
        if not pan:
            if spec.needs_card or "52" in fields:
                raise _Refused(RC.FORMAT_ERROR)
            return None
        pin = None
        if "52" in fields:
            try:
                pin = terminal_keys.reveal_pin(self.ctx, session, bytes.fromhex(fields["52"]),
                                               pan, fields.get("53"), self.hsm)
            except PinRejected:
                log.info("terminal host: PIN block rejected from terminal %s",
                         request.terminal_id)
                raise _Refused(RC.PIN_FORMAT_ERROR) from None
        return CardInput(pan, expiry, pin, entry_mode=fields.get("22"))

    def _reversal(self, request: Request) -> Outcome:
        spec = reversed_spec(request.fields)
        if spec is None or not spec.reversible:
            return Outcome(RC.INVALID_TRANSACTION, {})
        f61 = parse_field61(request.fields["61"])
        reason = request.fields.get("39", _REVERSAL_REASON_DEFAULT)
        if len(reason) != 2 or not reason.isalnum():
            reason = _REVERSAL_REASON_DEFAULT
        target = self._reversal_target(request, spec, f"{f61.batch_no:06d}",
                                       f"{f61.trace:06d}")
        if isinstance(target, ResponseCode):
            return Outcome(target, {})
        if target is None:  # never received, or not of that type: nothing to reverse
            self._tombstone_unused(request, spec, reason, f"{f61.batch_no:06d}",
                                   f"{f61.trace:06d}")
            return Outcome(RC.APPROVED, {"15": self._mmdd(None)})
        result = reversals.reverse(self.ctx, request.merchant_id, request.terminal_id,
                                  OriginalRef(txn_id=target.txn_id), reason)
        return Outcome(result.response_code, self._result_fields(request, result))

    def _tombstone_unused(self, request: Request, spec: FinancialSpec, reason: str,
                          batch_no: str, stan: str) -> None:
        """A reversal that overtook its original: mark the traces it may name that carry no
        record yet, so the original, if it still arrives, is refused and moves no money."""
        for candidate in ((batch_no, stan), (request.batch_no, request.fields["11"])):
            if terminal_batches.find_message(self.ctx, request.merchant_id,
                                             request.terminal_id, *candidate) is None:
                reversals.mark_reversed_before_seen(
                    self.ctx, request.merchant_id, request.terminal_id, *candidate, reason,
                    spec.txn_type)

    def _reversal_target(self, request: Request, spec: FinancialSpec, batch_no: str,
                         stan: str) -> BatchLine | ResponseCode | None:
        """The message a reversal undoes: named by field 61 (batch + trace), or, as some
        terminals copy the original's 61 into the reversal, by 60.2 + field 11; it must be
        of the type 60.1 says, and of the amount field 4 says."""
        for candidate in ((batch_no, stan), (request.batch_no, request.fields["11"])):
            line = terminal_batches.find_message(self.ctx, request.merchant_id,
                                                 request.terminal_id, *candidate)
            if line is None or line.txn_type != spec.txn_type.value:
                continue
            amount = request.fields.get("4")
            if amount is not None and int(amount) != line.amount_minor:
                return RC.AMOUNT_MISMATCH
            return line
        return None

    def _settlement(self, request: Request) -> Outcome:
        if request.f60.network_mgmt_code != "201":
            return Outcome(RC.INVALID_TRANSACTION, {})
        totals = parse_settlement_totals(request.fields["48"])
        outcome = terminal_batches.settle(self.ctx, request.merchant_id, request.terminal_id,
                                          request.batch_no, totals)
        log.info("terminal host: batch %s of terminal %s settled: %s (%s)",
                 request.batch_no, request.terminal_id, outcome.response_code.value,
                 "balanced" if outcome.balanced else "not balanced")
        return Outcome(outcome.response_code, {
            "48": build_settlement_totals(outcome.answer_totals), "15": self._mmdd(None)})

    def _upload(self, request: Request) -> Outcome:
        args = (self.ctx, request.merchant_id, request.terminal_id, request.batch_no)
        echo = {"48": request.fields["48"]}
        if request.kind is _K.BATCH_UPLOAD:
            entries = parse_batch_upload(request.fields["48"])
            return Outcome(terminal_batches.record_upload(*args, entries).response_code, echo)
        report = terminal_batches.finish_upload(
            *args, parse_batch_upload_end(request.fields["48"]))
        log.info("terminal host: batch upload of terminal %s batch %s: %d received, "
                 "%d terminal-only, %d host-only, %d mismatched", request.terminal_id,
                 request.batch_no, report.uploaded, len(report.terminal_only),
                 len(report.host_only), len(report.mismatched))
        return Outcome(report.response_code, echo)

    # -- answers ------------------------------------------------------------------------

    def _result_fields(self, request: Request, result: PaymentResult) -> dict[str, str]:
        record = result.record
        fields = {"15": self._mmdd(record.business_date if record else None)}
        if record is not None:
            fields["37"] = record.rrn
            if result.approved and record.auth_code:
                fields["38"] = record.auth_code
        if result.balance_minor is not None:
            numeric = request.fields.get("49") or (
                currency(record.currency).numeric if record else "156")
            # Field 54 holds 12 digits: a larger balance is shown as the largest it can hold
            # (the cardholder sees "at least"), never as a format error.
            shown = min(abs(result.balance_minor), BALANCE_SHOWN_MINOR_MAX)
            fields["54"] = build_balance_amount(BalanceAmount(
                shown, numeric, negative=result.balance_minor < 0))
        return fields

    def _mmdd(self, day: date | None) -> str:
        day = day or business_date(self.ctx.now(), self.ctx.settings.cutoff)
        return day.strftime("%m%d")

    def _fields(self, request: Request, outcome: Outcome) -> MessageFields:
        answer_mti = response_mti(request.fields[MTI_KEY])
        require(answer_mti is not None, "classify() only accepts MTIs the host serves")
        fields = self._bare(request.fields, answer_mti or "", outcome.code)
        if request.kind in (_K.BATCH_UPLOAD, _K.BATCH_UPLOAD_END, _K.SETTLEMENT):
            fields.pop("4", None)
        fields.update(outcome.fields)
        return fields

    def _bare(self, request: MessageFields, answer_mti: str,
              code: ResponseCode) -> MessageFields:
        local = self.ctx.now().astimezone(SHANGHAI)
        fields = MessageFields({MTI_KEY: answer_mti})
        fields.update({k: request[k] for k in ECHOED_FIELDS if k in request})
        fields.update({"12": local.strftime("%H%M%S"), "13": local.strftime("%m%d"),
                       "39": code.value})
        return fields

    def _encode(self, frame: Frame, fields: MessageFields,
                session: TerminalSession | None = None) -> bytes:
        if session is None:
            payload = encode_message(fields)
        else:
            payload = encode_message(fields, mac=lambda data: terminal_keys.compute_mac(
                self.ctx, session, data, self.hsm))
        return encode_frame(frame.answer(payload))


_BATCH_TOUCHING: Final = frozenset(spec.kind for spec in FINANCIAL_BY_KIND.values())
_REVERSIBLE: Final = frozenset(spec.kind for spec in FINANCIAL_BY_KIND.values()
                               if spec.reversible)


def _has_valid_60(fields: MessageFields) -> bool:
    try:
        parse_field60(fields.get("60", ""))
    except MessageFormatError:
        return False
    return True
