"""The key module (a software HSM) of the terminal host: what the host needs from it
(:class:`TerminalHsm`) and its software implementation (:class:`SoftwareHsm`).

Every key is stored sealed (AES-GCM) with associated data naming the terminal, the key's
role and its generation (:func:`key_label`), so a sealed blob copied to another row or kept
from an older generation does not open. Clear keys exist only inside :class:`SoftwareHsm`
methods, for the duration of one call; they are never returned (except a new TMK's
components, once, to the operator), stored or logged. A hardware HSM implements
:class:`TerminalHsm` with key blocks under its own master key instead of the sealer.
Provisioning and sign-on are in :mod:`autosettle.services.terminal_keys`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Protocol

from cryptography.exceptions import InvalidTag

from autosettle.domain.errors import ErrorCode, ValidationError
from autosettle.domain.iso8583 import crypto
from autosettle.services.context import DataSealer, ServiceContext

_LABEL_PREFIX: Final = b"autosettle/terminal-key/v1"


class MacAlgorithm(StrEnum):
    """Field 64 algorithm of a terminal."""

    CUP_ECB = "cup_ecb"
    X919 = "x919"


class KeyStatus(StrEnum):
    """Whether a terminal's TMK is usable, or reset (a new one must be provisioned)."""

    ACTIVE = "active"
    RESET = "reset"


class KeyRole(StrEnum):
    """Which key a sealed blob is: master key, PIN key, MAC key or track data key."""

    TMK = "tmk"
    PIK = "pik"
    MAK = "mak"
    TDK = "tdk"


class PinRejected(ValidationError):
    """Field 52 does not decrypt to a valid ISO 9564 format 0 block (answer 99)."""


@dataclass(frozen=True, slots=True)
class SealedKey:
    """A key handle: the sealed blob, the label it is bound to, and its check value."""

    blob: bytes = field(repr=False)
    label: bytes
    kcv: str


@dataclass(frozen=True, slots=True)
class KeyComponent:
    """One TMK component for key loading, with its own check value (shown once)."""

    value_hex: str = field(repr=False)
    kcv: str


@dataclass(frozen=True, slots=True)
class GeneratedTmk:
    sealed: SealedKey
    components: tuple[KeyComponent, ...] = field(repr=False)
    under_transport_key_hex: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class IssuedKeys:
    """New working keys: sealed for storage, and field 62 for the 0810 answer."""

    pik: SealedKey
    mak: SealedKey
    tdk: SealedKey | None
    field62: bytes = field(repr=False)


class TerminalHsm(Protocol):
    """What the host needs from a key module; clear keys never cross this interface."""

    def generate_tmk(self, label: bytes, components: int,
                     transport_key: bytes | None = None) -> GeneratedTmk:
        """A new TMK, sealed, with its components (and optionally under a transport key)."""
        ...

    def issue_working_keys(self, tmk: SealedKey, labels: dict[KeyRole, bytes],
                           double_length: bool, with_tdk: bool) -> IssuedKeys:
        """New PIK, MAK (and TDK), sealed, and field 62 (keys under the TMK + KCVs)."""
        ...

    def mac(self, mak: SealedKey, algorithm: MacAlgorithm, data: bytes) -> bytes:
        """Field 64 over ``data`` (MTI to field 63)."""
        ...

    def reveal_pin(self, pik: SealedKey, block: bytes, pan: str) -> str:
        """Decrypt a format 0 PIN block; :class:`PinRejected` when it is not valid."""
        ...

    def deliver_working_keys(self, tmk: SealedKey, pik: SealedKey, mak: SealedKey,
                             tdk: SealedKey | None, double_length: bool) -> bytes:
        """Field 62 for working keys issued before (a repeated sign-on gets them again)."""
        ...


class SoftwareHsm:
    """The key module in software: keys sealed under the data key with ``DataSealer``."""

    def __init__(self, sealer: DataSealer) -> None:
        self._sealer = sealer

    def __repr__(self) -> str:
        return "SoftwareHsm(<sealer>)"

    def _open(self, key: SealedKey) -> bytes:
        try:
            return self._sealer.open(key.blob, key.label)
        except InvalidTag as exc:
            raise ValidationError("a stored terminal key does not open (tampered or moved)",
                                  ErrorCode.INTERNAL) from exc

    def _seal(self, key: bytes, label: bytes) -> SealedKey:
        return SealedKey(self._sealer.seal(key, label), label, _kcv(key))

    def generate_tmk(self, label: bytes, components: int,
                     transport_key: bytes | None = None) -> GeneratedTmk:
        tmk = crypto.generate_key(crypto.DOUBLE_KEY_SIZE_BYTES)
        parts = crypto.split_key(tmk, components)
        under = (crypto.encrypt_key_under(transport_key, tmk).hex().upper()
                 if transport_key is not None else None)
        return GeneratedTmk(
            self._seal(tmk, label),
            tuple(KeyComponent(p.hex().upper(), _kcv(p)) for p in parts),
            under)

    def issue_working_keys(self, tmk: SealedKey, labels: dict[KeyRole, bytes],
                           double_length: bool, with_tdk: bool) -> IssuedKeys:
        size = crypto.DOUBLE_KEY_SIZE_BYTES if double_length else crypto.SINGLE_KEY_SIZE_BYTES
        pik, mak = crypto.generate_key(size), crypto.generate_key(size)
        tdk = crypto.generate_key(size) if with_tdk else None
        field62 = crypto.build_working_keys_field(self._open(tmk), pik, mak, tdk,
                                                  double_length)
        return IssuedKeys(self._seal(pik, labels[KeyRole.PIK]),
                          self._seal(mak, labels[KeyRole.MAK]),
                          self._seal(tdk, labels[KeyRole.TDK]) if tdk is not None else None,
                          field62)

    def deliver_working_keys(self, tmk: SealedKey, pik: SealedKey, mak: SealedKey,
                             tdk: SealedKey | None, double_length: bool) -> bytes:
        return crypto.build_working_keys_field(
            self._open(tmk), self._open(pik), self._open(mak),
            self._open(tdk) if tdk is not None else None, double_length)

    def mac(self, mak: SealedKey, algorithm: MacAlgorithm, data: bytes) -> bytes:
        key = self._open(mak)
        if algorithm is MacAlgorithm.X919:
            return crypto.mac_x919(key, data)
        return crypto.mac_cup_ecb(key, data)

    def reveal_pin(self, pik: SealedKey, block: bytes, pan: str) -> str:
        try:
            clear = crypto.decrypt_pin_block(self._open(pik), block)
            return crypto.pin_from_iso0(clear, pan)
        except crypto.PinBlockError as exc:
            raise PinRejected(exc.message) from None
        except crypto.KeyFormatError:
            raise PinRejected("PIN block has the wrong size") from None


def _kcv(key: bytes) -> str:
    return crypto.key_check_value(key).hex().upper()


def key_label(role: KeyRole, merchant_id: str, terminal_id: str, generation: int) -> bytes:
    """The associated data a key is sealed with: terminal, role and generation."""
    return b"/".join((_LABEL_PREFIX, role.value.encode(), merchant_id.encode("ascii"),
                      terminal_id.encode("ascii"), str(generation).encode()))


def default_hsm(ctx: ServiceContext) -> TerminalHsm:
    """The software key module over the context's data key."""
    return SoftwareHsm(ctx.sealer)
