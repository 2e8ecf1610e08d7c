"""Terminal keys and sessions: provisioning, sign-on, MAC and PIN. The key module (software
HSM) is :mod:`autosettle.services.key_module`, the status view
:mod:`autosettle.services.terminal_status`.

Key hierarchy (see docs/terminal-integration.md)::

    data key (configuration, AES-256)        seals every key below at rest (ctx.sealer)
    └── TMK   terminal master key            one per terminal, made at provisioning and
        │                                    shown once as components (split knowledge)
        ├── PIK  PIN key        ┐ working keys, issued by a sign-on (0800), sent to the
        ├── MAK  MAC key        │ terminal in field 62 of the 0810 encrypted under the TMK,
        └── TDK  track data key ┘ each followed by its 4-byte check value

A sign-on is not authenticated (the CUP 0800 carries no MAC), so the keys it issues while
the terminal has working keys are *pending*: the current keys stay valid until the
terminal's next MAC'd message verifies under the pending MAK, which proves it decrypted
field 62 with the TMK; then the pending keys become current and the old ones are dropped.
A repeated sign-on gets the same pending keys again. A stranger who knows the merchant and
terminal ids (they are printed on every slip) therefore cannot knock a terminal off.

Every key is stored sealed (AES-GCM) with associated data naming the terminal, the key's
role and its generation, so a sealed blob copied to another row or kept from an older
generation does not open. Clear keys exist only inside :class:`SoftwareHsm` methods, for
the duration of one call; they are never returned (except a new TMK's components, once,
to the operator), stored or logged. A hardware HSM implements :class:`TerminalHsm` with
key blocks under its own master key instead of the sealer.

The PIN of a field 52 block is decrypted here (and only here) and handed to the payment
service in memory; it is never stored or logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Final

from autosettle.domain.errors import (
    ConflictError,
    ErrorCode,
    NotFoundError,
    ValidationError,
)
from autosettle.domain.iso8583 import crypto
from autosettle.domain.iso8583.fields import NetworkManagementCode
from autosettle.domain.merchants import TerminalStatus
from autosettle.domain.response_codes import ResponseCode
from autosettle.domain.terminal_records import KeyRecord
from autosettle.services.audit import record as audit
from autosettle.services.context import Principal, ServiceContext
from autosettle.services.key_module import (
    KeyComponent,
    KeyRole,
    KeyStatus,
    MacAlgorithm,
    PinRejected,
    SealedKey,
    TerminalHsm,
    default_hsm,
    key_label,
)
from autosettle.store.uow import UnitOfWork

RC = ResponseCode

FIRST_BATCH_NO: Final = "000001"
BATCH_NO_MODULUS: Final = 999_999


# -- provisioning --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ProvisionedTerminal:
    """Shown once to the operator: the TMK's components (and the TMK under a transport key)."""

    merchant_id: str
    terminal_id: str
    tmk_kcv: str
    tmk_generation: int
    mac_algorithm: MacAlgorithm
    components: tuple[KeyComponent, ...] = field(repr=False)
    tmk_under_transport_key_hex: str | None = field(default=None, repr=False)

    def tmk(self) -> bytes:
        """The TMK combined from its components, as a key loading device does."""
        return crypto.combine_components([bytes.fromhex(c.value_hex) for c in self.components])


def provision_terminal(ctx: ServiceContext, who: Principal, merchant_id: str,
                       terminal_id: str, *, mac_algorithm: MacAlgorithm = MacAlgorithm.CUP_ECB,
                       components: int = crypto.KEY_COMPONENTS_MIN,
                       transport_key: bytes | None = None,
                       hsm: TerminalHsm | None = None) -> ProvisionedTerminal:
    """Give a terminal a new TMK (operator). Refused while a TMK is active: reset it first.

    The components (and the TMK under ``transport_key`` when given) are returned once and
    never again; only the sealed TMK and its check value are stored.
    """
    who.require_operator()
    hsm = hsm or default_hsm(ctx)
    algorithm = MacAlgorithm(mac_algorithm)
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        if uow.terminals.get(merchant_id, terminal_id) is None:
            raise NotFoundError(f"terminal {merchant_id}/{terminal_id} not found")
        keys = uow.terminal_host.get_keys(merchant_id, terminal_id, for_update=True)
        if keys is not None and keys.status == KeyStatus.ACTIVE:
            raise ConflictError(f"terminal {terminal_id} has an active TMK "
                                f"(kcv {keys.tmk_kcv}); reset it first")
        generation = (keys.tmk_generation if keys else 0) + 1
        made = hsm.generate_tmk(key_label(KeyRole.TMK, merchant_id, terminal_id, generation),
                                components, transport_key)
        uow.terminal_host.put_tmk(merchant_id, terminal_id, made.sealed.blob, made.sealed.kcv,
                                  generation, now)
        uow.terminal_host.upsert_state(merchant_id, terminal_id, now, signed_on=False,
                                       mac_algorithm=algorithm.value)
        audit(uow, who, "terminal.provision", f"terminal:{merchant_id}/{terminal_id}", now,
              detail={"tmk_kcv": made.sealed.kcv, "generation": generation,
                      "mac_algorithm": algorithm.value})
    return ProvisionedTerminal(merchant_id, terminal_id, made.sealed.kcv, generation,
                               algorithm, made.components, made.under_transport_key_hex)


def tmk_check_value(ctx: ServiceContext, who: Principal, merchant_id: str,
                    terminal_id: str) -> str | None:
    """The TMK check value of a terminal that has keys (None once reset) (operator);
    ``not_found`` otherwise.
    Read-only: what :func:`reset_tmk` acts on, for a caller that asks before resetting."""
    who.require_operator()
    with ctx.db.unit_of_work() as uow:
        keys = uow.terminal_host.get_keys(merchant_id, terminal_id)
    if keys is None:
        raise NotFoundError(f"terminal {merchant_id}/{terminal_id} has no keys")
    return keys.tmk_kcv


def reset_tmk(ctx: ServiceContext, who: Principal, merchant_id: str, terminal_id: str) -> None:
    """Forget a terminal's TMK and working keys (operator): locked out until re-provisioned."""
    who.require_operator()
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        keys = uow.terminal_host.get_keys(merchant_id, terminal_id, for_update=True)
        if keys is None:
            raise NotFoundError(f"terminal {merchant_id}/{terminal_id} has no keys")
        uow.terminal_host.reset(merchant_id, terminal_id, now)
        uow.terminal_host.upsert_state(merchant_id, terminal_id, now, signed_on=False)
        audit(uow, who, "terminal.reset_tmk", f"terminal:{merchant_id}/{terminal_id}", now,
              detail={"old_tmk_kcv": keys.tmk_kcv})


# -- sessions ------------------------------------------------------------------------------

class SessionStatus(StrEnum):
    READY = "ready"
    UNKNOWN_TERMINAL = "unknown_terminal"
    MERCHANT_MISMATCH = "merchant_mismatch"
    NOT_PROVISIONED = "not_provisioned"
    NOT_SIGNED_ON = "not_signed_on"
    """Provisioned, but no working keys yet (never signed on since the TMK was made)."""

    @property
    def response_code(self) -> ResponseCode:
        """What a financial request gets when the session is not ready."""
        return _SESSION_CODES[self]


_SESSION_CODES: Final = {
    SessionStatus.READY: RC.APPROVED,
    SessionStatus.UNKNOWN_TERMINAL: RC.TERMINAL_NOT_REGISTERED,
    SessionStatus.MERCHANT_MISMATCH: RC.INVALID_MERCHANT,
    SessionStatus.NOT_PROVISIONED: RC.MAC_ERROR,
    SessionStatus.NOT_SIGNED_ON: RC.MAC_ERROR,
}


@dataclass(frozen=True, slots=True)
class PendingKeys:
    """Working keys a sign-on issued, not yet proven by a MAC of the terminal."""

    generation: int
    mak: SealedKey
    pik: SealedKey | None
    double_length: bool


@dataclass(frozen=True, slots=True)
class TerminalSession:
    """One terminal as the host sees it for one message: keys (sealed) and batch.

    ``mak``/``pik`` are the current working keys; ``pending`` the keys of a later sign-on
    the terminal has not used yet (see :func:`authenticate`).
    """

    merchant_id: str
    terminal_id: str
    status: SessionStatus
    mac_algorithm: MacAlgorithm = MacAlgorithm.CUP_ECB
    double_length: bool = True
    key_generation: int = 0
    mak: SealedKey | None = None
    pik: SealedKey | None = None
    expected_batch_no: str | None = None
    pending: PendingKeys | None = None
    signed_on: bool = True

    @property
    def known(self) -> bool:
        """The terminal is registered for this merchant."""
        return self.status not in (SessionStatus.UNKNOWN_TERMINAL,
                                   SessionStatus.MERCHANT_MISMATCH)

    @property
    def ready(self) -> bool:
        """Has working keys (current or pending): MACs can be checked."""
        return self.status is SessionStatus.READY and (
            self.mak is not None or self.pending is not None)

    def with_pending_keys(self) -> TerminalSession | None:
        """This session with the pending keys as its keys (None without pending keys)."""
        if self.pending is None:
            return None
        p = self.pending
        return replace(self, key_generation=p.generation, mak=p.mak, pik=p.pik,
                       double_length=p.double_length, pending=None, signed_on=True)

    def accepts_batch(self, batch_no: str) -> bool:
        """A financial message must carry the open batch, or the next after a close."""
        return self.expected_batch_no is None or batch_no == self.expected_batch_no


def next_batch_no(batch_no: str) -> str:
    """The batch number after ``batch_no`` (999999 wraps to 000001)."""
    return f"{int(batch_no) % BATCH_NO_MODULUS + 1:06d}"


def _expected_batch(uow: UnitOfWork, merchant_id: str, terminal_id: str) -> str | None:
    latest = uow.terminal_host.latest_batch_no(merchant_id, terminal_id)
    if latest is None:
        return None
    open_batch = uow.batches.open_batch(merchant_id, terminal_id)
    if open_batch is not None:
        return open_batch.batch_no
    return next_batch_no(latest[0])


def _identify(uow: UnitOfWork, merchant_id: str, terminal_id: str) -> SessionStatus | None:
    """UNKNOWN_TERMINAL / MERCHANT_MISMATCH, or None when the terminal is registered."""
    if uow.terminals.get(merchant_id, terminal_id) is not None:
        return None
    if uow.terminal_host.merchants_of_terminal(terminal_id):
        return SessionStatus.MERCHANT_MISMATCH
    return SessionStatus.UNKNOWN_TERMINAL


def open_session(ctx: ServiceContext, merchant_id: str, terminal_id: str) -> TerminalSession:
    """Everything the host needs to authenticate and route one message of a terminal."""
    with ctx.db.unit_of_work() as uow:
        unknown = _identify(uow, merchant_id, terminal_id)
        if unknown is not None:
            return TerminalSession(merchant_id, terminal_id, unknown)
        keys = uow.terminal_host.get_keys(merchant_id, terminal_id)
        state = uow.terminal_host.get_state(merchant_id, terminal_id)
        expected = _expected_batch(uow, merchant_id, terminal_id)
    algorithm = MacAlgorithm(state.mac_algorithm) if state else MacAlgorithm.CUP_ECB
    if keys is None or keys.status != KeyStatus.ACTIVE or keys.tmk_sealed is None:
        return TerminalSession(merchant_id, terminal_id, SessionStatus.NOT_PROVISIONED,
                               algorithm, expected_batch_no=expected)
    # A sign-off carries no MAC (anyone can send one), so it does not revoke the keys:
    # the MAC of each message is what authenticates the terminal.
    mak, pending = _handle(keys, KeyRole.MAK), _pending(keys)
    status = (SessionStatus.READY if mak is not None or pending is not None
              else SessionStatus.NOT_SIGNED_ON)
    return TerminalSession(
        merchant_id, terminal_id, status, algorithm,
        double_length=state.double_length if state else True,
        key_generation=keys.key_generation, mak=mak, pik=_handle(keys, KeyRole.PIK),
        expected_batch_no=expected, pending=pending,
        signed_on=state is not None and state.signed_on)


def _handle(keys: KeyRecord, role: KeyRole, pending: bool = False) -> SealedKey | None:
    """The current (or pending) key of ``role``, bound to its generation's label."""
    prefix = "pending_" if pending else ""
    blob: bytes | None = getattr(keys, f"{prefix}{role.value}_sealed")
    kcv: str | None = getattr(keys, f"{prefix}{role.value}_kcv")
    if blob is None or kcv is None:
        return None
    if role is KeyRole.TMK:
        generation = keys.tmk_generation
    else:
        generation = (keys.pending_generation or 0) if pending else keys.key_generation
    return SealedKey(blob, key_label(role, keys.merchant_id, keys.terminal_id, generation), kcv)


def _pending(keys: KeyRecord) -> PendingKeys | None:
    mak = _handle(keys, KeyRole.MAK, pending=True)
    if mak is None or keys.pending_generation is None:
        return None
    return PendingKeys(keys.pending_generation, mak, _handle(keys, KeyRole.PIK, pending=True),
                       bool(keys.pending_double_length))


# -- sign-on, sign-off, heartbeat --------------------------------------------------------

_SIGN_ON_LAYOUTS: Final = {
    # 60.3 -> (double length, with TDK)
    NetworkManagementCode.SIGN_ON_SINGLE_LENGTH.value: (False, False),
    NetworkManagementCode.SIGN_ON_DOUBLE_LENGTH.value: (True, False),
    NetworkManagementCode.SIGN_ON_DOUBLE_LENGTH_WITH_TDK.value: (True, True),
}
SIGN_ON_CODES: Final = frozenset(_SIGN_ON_LAYOUTS)


@dataclass(frozen=True, slots=True)
class SignOnOutcome:
    """The 0810: a code, the working keys (field 62) when approved, the expected batch.

    ``pending``: the keys wait for the terminal's next MAC'd message to become current.
    """

    response_code: ResponseCode
    batch_no: str
    field62: bytes | None = field(default=None, repr=False)
    key_generation: int = 0
    pending: bool = False


def sign_on(ctx: ServiceContext, merchant_id: str, terminal_id: str, mode: str,
            software_version: str | None = None,
            hsm: TerminalHsm | None = None) -> SignOnOutcome:
    """Deliver working keys in field 62: new ones, or the pending ones again.

    A terminal without working keys gets new keys at once (nothing to knock off). One with
    working keys gets *pending* keys: its current keys stay valid until a message MAC'd
    under the pending MAK proves the terminal holds them (:func:`authenticate`). While a
    pending set exists, a sign-on asking for the same key length gets that set again (a
    stranger's sign-on cannot replace the keys a real terminal just received); another
    length gets a new pending set (only the latest is kept).

    97 for an unknown terminal and for one without a TMK (never provisioned, or reset);
    03 when the terminal belongs to another merchant; 58 when it is not active; 12 for an
    X9.19 terminal asking for single-length keys (X9.19 needs a double-length MAK).
    """
    hsm = hsm or default_hsm(ctx)
    layout = _SIGN_ON_LAYOUTS.get(mode)
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        expected = _expected_batch(uow, merchant_id, terminal_id) or FIRST_BATCH_NO
        unknown = _identify(uow, merchant_id, terminal_id)
        if unknown is not None:
            return SignOnOutcome(unknown.response_code, expected)
        terminal = uow.terminals.get(merchant_id, terminal_id)
        if terminal is not None and terminal.status is not TerminalStatus.ACTIVE:
            return SignOnOutcome(RC.NOT_PERMITTED_TO_TERMINAL, expected)
        keys = uow.terminal_host.get_keys(merchant_id, terminal_id, for_update=True)
        tmk = _handle(keys, KeyRole.TMK) if keys and keys.status == KeyStatus.ACTIVE else None
        if keys is None or tmk is None:
            return SignOnOutcome(RC.TERMINAL_NOT_REGISTERED, expected)
        state = uow.terminal_host.get_state(merchant_id, terminal_id)
        algorithm = MacAlgorithm(state.mac_algorithm) if state else MacAlgorithm.CUP_ECB
        if layout is None or (algorithm is MacAlgorithm.X919 and not layout[0]):
            return SignOnOutcome(RC.INVALID_TRANSACTION, expected)
        double_length, with_tdk = layout
        delivery = _deliver(uow, hsm, keys, tmk, double_length, with_tdk, now)
        proven: dict[str, bool] = ({} if delivery.pending else
                                   {"signed_on": True, "double_length": double_length})
        uow.terminal_host.upsert_state(
            merchant_id, terminal_id, now, last_sign_on_at=now, last_message_at=now,
            open_batch_no=expected, **proven, **_version(software_version))
    return SignOnOutcome(RC.APPROVED, expected, delivery.field62, delivery.generation,
                         delivery.pending)


@dataclass(frozen=True, slots=True)
class _Delivery:
    field62: bytes = field(repr=False)
    generation: int
    pending: bool


def _deliver(uow: UnitOfWork, hsm: TerminalHsm, keys: KeyRecord, tmk: SealedKey,
             double_length: bool, with_tdk: bool, now: datetime) -> _Delivery:
    """Field 62 of a sign-on: the pending keys again, or new keys (current or pending)."""
    mid, tid = keys.merchant_id, keys.terminal_id
    pending = _pending(keys)
    tdk = _handle(keys, KeyRole.TDK, pending=True)
    if (pending is not None and pending.pik is not None
            and pending.double_length == double_length and (tdk is not None or not with_tdk)):
        field62 = hsm.deliver_working_keys(tmk, pending.pik, pending.mak,
                                           tdk if with_tdk else None, double_length)
        return _Delivery(field62, pending.generation, True)
    generation = max(keys.key_generation, keys.pending_generation or 0) + 1
    labels = {role: key_label(role, mid, tid, generation)
              for role in (KeyRole.PIK, KeyRole.MAK, KeyRole.TDK)}
    issued = hsm.issue_working_keys(tmk, labels, double_length, with_tdk)
    sealed = {"pik": (issued.pik.blob, issued.pik.kcv), "mak": (issued.mak.blob, issued.mak.kcv),
              "tdk": (issued.tdk.blob, issued.tdk.kcv) if issued.tdk else None}
    if keys.mak_sealed is None:  # no keys in use: nothing a stranger could knock off
        uow.terminal_host.put_working_keys(mid, tid, generation, sealed, now)
        return _Delivery(issued.field62, generation, False)
    uow.terminal_host.put_pending_keys(mid, tid, generation, sealed, double_length, now)
    return _Delivery(issued.field62, generation, True)


def sign_off(ctx: ServiceContext, merchant_id: str, terminal_id: str,
             software_version: str | None = None) -> ResponseCode:
    """Record that the terminal signed off (its status shows it).

    A sign-off carries no MAC, so anyone could send one: it does not revoke the working
    keys (a stranger's sign-off must not knock the terminal off). A terminal that signed
    off signs on before its next sale anyway; to lock a terminal out, reset its TMK.
    """
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        unknown = _identify(uow, merchant_id, terminal_id)
        if unknown is not None:
            return unknown.response_code
        uow.terminal_host.upsert_state(merchant_id, terminal_id, now, signed_on=False,
                                       last_message_at=now, **_version(software_version))
    return RC.APPROVED


def touch(ctx: ServiceContext, merchant_id: str, terminal_id: str,
          software_version: str | None = None, batch_no: str | None = None) -> None:
    """Heartbeat: record that an authenticated message arrived (and its batch, version)."""
    now = ctx.now()
    values = _version(software_version)
    if batch_no is not None:
        values["open_batch_no"] = batch_no
    with ctx.db.unit_of_work() as uow:
        if uow.terminals.get(merchant_id, terminal_id) is None:
            return
        uow.terminal_host.upsert_state(merchant_id, terminal_id, now, last_message_at=now,
                                       **values)


def _version(software_version: str | None) -> dict[str, str]:
    return {"software_version": software_version[:16]} if software_version else {}


# -- MAC and PIN ---------------------------------------------------------------------------

def _mak(session: TerminalSession) -> SealedKey:
    if session.mak is None:
        raise ValidationError("the terminal has no MAC key: sign on first", ErrorCode.INVALID_STATE)
    return session.mak


def compute_mac(ctx: ServiceContext, session: TerminalSession, data: bytes,
                hsm: TerminalHsm | None = None) -> bytes:
    """Field 64 for an answer to this terminal."""
    return (hsm or default_hsm(ctx)).mac(_mak(session), session.mac_algorithm, data)


def verify_mac(ctx: ServiceContext, session: TerminalSession, data: bytes, received: bytes,
               hsm: TerminalHsm | None = None) -> bool:
    """True when ``received`` is the MAC of ``data`` under the terminal's current MAK."""
    if session.mak is None:
        return False
    expected = compute_mac(ctx, session, data, hsm)
    return crypto.macs_equal(expected, received)


def authenticate(ctx: ServiceContext, session: TerminalSession, data: bytes,
                 received: bytes, hsm: TerminalHsm | None = None) -> TerminalSession | None:
    """The session whose MAK made ``received`` over ``data``, or None (answer A0).

    The current keys first; then the pending keys of a later sign-on: a MAC under them
    proves the terminal decrypted field 62 with its TMK, so they become the current keys
    (the old ones are dropped) and the returned session carries them, for the PIN block
    and the answer's MAC.
    """
    hsm = hsm or default_hsm(ctx)
    if verify_mac(ctx, session, data, received, hsm):
        if not session.signed_on:  # it signed off but still holds its keys: in session
            _mark_signed_on(ctx, session)
        return session
    proven = session.with_pending_keys()
    if proven is None or not verify_mac(ctx, proven, data, received, hsm):
        return None
    _promote(ctx, proven)
    return proven


def _promote(ctx: ServiceContext, proven: TerminalSession) -> None:
    now = ctx.now()
    mid, tid = proven.merchant_id, proven.terminal_id
    with ctx.db.unit_of_work() as uow:
        # False when another message of the terminal promoted them first: same keys.
        if uow.terminal_host.promote_pending(mid, tid, proven.key_generation, now):
            uow.terminal_host.upsert_state(mid, tid, now, signed_on=True,
                                           double_length=proven.double_length)


def _mark_signed_on(ctx: ServiceContext, session: TerminalSession) -> None:
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        uow.terminal_host.upsert_state(session.merchant_id, session.terminal_id, now,
                                       signed_on=True)


_PIN_KEY_SCHEMES: Final = frozenset("06")
"""Second digit of field 53: ``0`` single DES, ``6`` double-length 3DES (``3`` is SM4)."""


def reveal_pin(ctx: ServiceContext, session: TerminalSession, block: bytes, pan: str,
               security_control: str | None = None, hsm: TerminalHsm | None = None) -> str:
    """The PIN in a field 52 block, for the payment service only (never stored or logged).

    Raises :class:`PinRejected` (answer 99) when the terminal has no PIK, field 53 names a
    scheme we do not run, or the block does not decrypt to a valid format 0 block.
    """
    if session.pik is None:
        raise PinRejected("the terminal has no PIN key: sign on first")
    if security_control is not None and (len(security_control) < 2
                                         or security_control[1] not in _PIN_KEY_SCHEMES):
        raise PinRejected("field 53 names a PIN encryption scheme this host does not run")
    return (hsm or default_hsm(ctx)).reveal_pin(session.pik, block, pan)
