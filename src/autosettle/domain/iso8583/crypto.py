"""Key and MAC algorithms of CUP POS terminals, as pure functions over bytes.

DES is run through ``cryptography``'s TripleDES with the key always expanded to three
parts (``K`` -> ``K K K``, ``K1 K2`` -> ``K1 K2 K1``), so single, double and triple
length keys share one code path and no deprecated short-key form is used.

* Keys: :func:`des_ecb_encrypt` / :func:`des_ecb_decrypt`, :func:`key_check_value`,
  :func:`generate_key` (odd parity), :func:`encrypt_key_under` / :func:`decrypt_key_under`,
  :func:`split_key` / :func:`combine_components` (split knowledge for key loading).
* MACs over the bytes from the MTI to field 63: :func:`mac_cup_ecb` (the CUP "ECB"
  algorithm, the default) and :func:`mac_x919` (ISO 9797-1 algorithm 3, ANSI X9.19);
  compare with :func:`macs_equal` (constant time).
* PINs: :func:`pin_block_iso0` / :func:`pin_from_iso0` (ISO 9564 format 0, clear
  blocks) and :func:`encrypt_pin_block` / :func:`decrypt_pin_block` under the PIK.
* Working keys of the sign-on answer (field 62): :func:`build_working_keys_field` and
  :func:`parse_working_keys_field`.

No error message or repr contains a key, PIN or PAN; a key's check value (which is
public by design) is the only thing shown.

>>> key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
>>> key_check_value(key).hex().upper()
'08D7B4FB'
>>> pin_block_iso0("1234", "5544332211009966").hex().upper()
'041277CDDEEFF669'
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from autosettle.domain.errors import ErrorCode, ValidationError

DES_BLOCK_SIZE_BYTES: Final = 8
SINGLE_KEY_SIZE_BYTES: Final = 8
DOUBLE_KEY_SIZE_BYTES: Final = 16
TRIPLE_KEY_SIZE_BYTES: Final = 24
KEY_SIZES_BYTES: Final = frozenset(
    {SINGLE_KEY_SIZE_BYTES, DOUBLE_KEY_SIZE_BYTES, TRIPLE_KEY_SIZE_BYTES}
)
KCV_SIZE_BYTES: Final = 4
MAC_SIZE_BYTES: Final = 8
PIN_DIGITS_MIN: Final = 4
PIN_DIGITS_MAX: Final = 12
PAN_DIGITS_MIN: Final = 13
"""ISO 9564 format 0 needs 12 PAN digits besides the check digit."""
PAN_DIGITS_MAX: Final = 19
_PAN_BLOCK_DIGITS: Final = 12
_PIN_FORMAT_0: Final = 0
_PIN_FILLER: Final = "F"
_GENERATE_ATTEMPTS_MAX: Final = 16
"""A random double-length key with equal halves has odds 2**-56; retrying is a formality."""


class KeyFormatError(ValidationError):
    """A key or encrypted block has the wrong length or form."""


class KeyCheckValueError(ValidationError):
    """A key's check value does not match: wrong key-encrypting key, or a tampered key."""


class PinBlockError(ValidationError):
    """A PIN, PAN or PIN block is not acceptable for ISO 9564 format 0."""


# --------------------------------------------------------------------------- DES


def _expanded(key: bytes) -> bytes:
    if len(key) not in KEY_SIZES_BYTES:
        raise KeyFormatError(f"a DES key is 8, 16 or 24 bytes, not {len(key)}")
    if len(key) == SINGLE_KEY_SIZE_BYTES:
        return key * 3
    if len(key) == DOUBLE_KEY_SIZE_BYTES:
        return key + key[:SINGLE_KEY_SIZE_BYTES]
    return key


def _check_blocks(data: bytes) -> None:
    if len(data) % DES_BLOCK_SIZE_BYTES:
        raise KeyFormatError(f"DES data must be a multiple of 8 bytes, not {len(data)}")


def des_ecb_encrypt(key: bytes, data: bytes) -> bytes:
    """Encrypt whole 8-byte blocks with DES (8-byte key) or 3DES EDE (16 or 24 bytes)."""
    _check_blocks(data)
    encryptor = Cipher(TripleDES(_expanded(key)), modes.ECB()).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def des_ecb_decrypt(key: bytes, data: bytes) -> bytes:
    """Inverse of :func:`des_ecb_encrypt`."""
    _check_blocks(data)
    decryptor = Cipher(TripleDES(_expanded(key)), modes.ECB()).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def key_check_value(key: bytes, size_bytes: int = KCV_SIZE_BYTES) -> bytes:
    """The first bytes of the key encrypting 8 zero bytes (the classic KCV).

    >>> key_check_value(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"), 3).hex()
    '08d7b4'
    """
    return des_ecb_encrypt(key, bytes(DES_BLOCK_SIZE_BYTES))[:size_bytes]


def adjust_odd_parity(key: bytes) -> bytes:
    """Set each byte's low bit so every byte has an odd number of 1 bits (DES parity)."""
    return bytes(b & 0xFE | (bin(b >> 1).count("1") + 1) % 2 for b in key)


def has_odd_parity(key: bytes) -> bool:
    """True when every byte of the key has odd parity."""
    return all(bin(b).count("1") % 2 == 1 for b in key)


def generate_key(length_bytes: int = DOUBLE_KEY_SIZE_BYTES) -> bytes:
    """A random DES key of 8, 16 or 24 bytes with odd parity (random from ``secrets``).

    Multi-part keys are drawn again if two parts are equal, which would silently reduce
    3DES to single DES.
    """
    if length_bytes not in KEY_SIZES_BYTES:
        raise KeyFormatError(f"a DES key is 8, 16 or 24 bytes, not {length_bytes}")
    for _ in range(_GENERATE_ATTEMPTS_MAX):
        key = adjust_odd_parity(secrets.token_bytes(length_bytes))
        parts = {
            key[i : i + SINGLE_KEY_SIZE_BYTES]
            for i in range(0, length_bytes, SINGLE_KEY_SIZE_BYTES)
        }
        if len(parts) == length_bytes // SINGLE_KEY_SIZE_BYTES:
            return key
    raise KeyFormatError("could not draw a key with distinct parts")  # pragma: no cover


def encrypt_key_under(kek: bytes, key: bytes) -> bytes:
    """Encrypt a key under a key-encrypting key (TMK, or the store's KEK), ECB."""
    return des_ecb_encrypt(kek, key)


def decrypt_key_under(kek: bytes, encrypted_key: bytes) -> bytes:
    """Inverse of :func:`encrypt_key_under`."""
    return des_ecb_decrypt(kek, encrypted_key)


KEY_COMPONENTS_MIN: Final = 2
KEY_COMPONENTS_MAX: Final = 3


def split_key(key: bytes, parts: int = KEY_COMPONENTS_MIN) -> tuple[bytes, ...]:
    """Split a key into ``parts`` random components for split knowledge (PCI DSS 3.6.1.2).

    Every component has odd parity; :func:`combine_components` gives the key back (with
    odd parity; DES ignores the parity bits, so the key's check value is the same).

    >>> key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    >>> combine_components(split_key(key, 3)) == adjust_odd_parity(key)
    True
    """
    if not KEY_COMPONENTS_MIN <= parts <= KEY_COMPONENTS_MAX:
        raise KeyFormatError(
            f"a key is split into {KEY_COMPONENTS_MIN} to {KEY_COMPONENTS_MAX} components"
        )
    if len(key) not in KEY_SIZES_BYTES:
        raise KeyFormatError(f"a DES key is 8, 16 or 24 bytes, not {len(key)}")
    randoms = [adjust_odd_parity(secrets.token_bytes(len(key))) for _ in range(parts - 1)]
    last = key
    for component in randoms:
        last = _xor(last, component)
    return (*randoms, adjust_odd_parity(last))


def combine_components(components: tuple[bytes, ...] | list[bytes]) -> bytes:
    """XOR key components together into the key, with odd parity (key loading)."""
    if not KEY_COMPONENTS_MIN <= len(components) <= KEY_COMPONENTS_MAX:
        raise KeyFormatError(
            f"a key is combined from {KEY_COMPONENTS_MIN} to {KEY_COMPONENTS_MAX} components"
        )
    size = len(components[0])
    if size not in KEY_SIZES_BYTES or any(len(c) != size for c in components):
        raise KeyFormatError("key components must all be 8, 16 or 24 bytes long")
    key = components[0]
    for component in components[1:]:
        key = _xor(key, component)
    return adjust_odd_parity(key)


# --------------------------------------------------------------------------- MACs


def _pad_zero(data: bytes) -> bytes:
    """ISO 9797-1 padding method 1: zero bytes up to a whole block (none if already)."""
    return data + bytes(-len(data) % DES_BLOCK_SIZE_BYTES)


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


def mac_cup_ecb(mak: bytes, data: bytes) -> bytes:
    """The CUP POS "ECB" MAC: 8 ASCII hex characters for field 64.

    1. zero-pad ``data`` to whole 8-byte blocks and XOR all blocks together;
    2. write the 8-byte result as 16 upper-case hex characters;
    3. encrypt the first 8 characters with the MAK, XOR with the last 8 characters;
    4. encrypt again; the first 8 upper-case hex characters of the result are the MAC.

    An 8-byte MAK runs single DES. A 16-byte MAK runs 3DES EDE2 (the CUP double-length
    key scheme, 60.3 ``003``/``004``); a terminal that only keys single DES with the left
    half needs an 8-byte MAK passed in.

    Worked example published with solo123/pgate (test/integration/pos_mac_test.rb):

    >>> mac_cup_ecb(bytes.fromhex("2222222222222222"),
    ...             bytes.fromhex("1234567890ABCDEFABCDEF1234567890"))
    b'E267B6E2'
    """
    result = bytes(DES_BLOCK_SIZE_BYTES)
    padded = _pad_zero(data)
    for start in range(0, len(padded), DES_BLOCK_SIZE_BYTES):
        result = _xor(result, padded[start : start + DES_BLOCK_SIZE_BYTES])
    ascii_hex = result.hex().upper().encode()
    first = des_ecb_encrypt(mak, ascii_hex[:DES_BLOCK_SIZE_BYTES])
    second = des_ecb_encrypt(mak, _xor(first, ascii_hex[DES_BLOCK_SIZE_BYTES:]))
    return second.hex().upper().encode()[:MAC_SIZE_BYTES]


def mac_x919(mak: bytes, data: bytes) -> bytes:
    """ANSI X9.19 / ISO 9797-1 MAC algorithm 3 ("retail MAC"), padding method 1, 8 bytes.

    ``mak`` is double length ``K1 K2``: single-DES CBC with K1 over all blocks, then the
    last block is decrypted with K2 and encrypted with K1. Empty data is one zero block.

    >>> mac_x919(bytes.fromhex("7CA110454A1A6E570131D9619DC1376E"),
    ...          b"Hello World !!!!").hex().upper()
    'F09B856213BAB83B'
    """
    if len(mak) != DOUBLE_KEY_SIZE_BYTES:
        raise KeyFormatError(f"an X9.19 MAK is 16 bytes, not {len(mak)}")
    left, right = mak[:SINGLE_KEY_SIZE_BYTES], mak[SINGLE_KEY_SIZE_BYTES:]
    padded = _pad_zero(data) or bytes(DES_BLOCK_SIZE_BYTES)
    chain = bytes(DES_BLOCK_SIZE_BYTES)
    for start in range(0, len(padded), DES_BLOCK_SIZE_BYTES):
        block = padded[start : start + DES_BLOCK_SIZE_BYTES]
        chain = des_ecb_encrypt(left, _xor(chain, block))
    return des_ecb_encrypt(left, des_ecb_decrypt(right, chain))


def macs_equal(expected: bytes, received: bytes) -> bool:
    """Compare two MACs in constant time."""
    return hmac.compare_digest(expected, received)


# --------------------------------------------------------------------------- PIN blocks


def _pan_block(pan: str) -> bytes:
    if not (PAN_DIGITS_MIN <= len(pan) <= PAN_DIGITS_MAX and pan.isascii() and pan.isdigit()):
        raise PinBlockError(
            f"PAN must be {PAN_DIGITS_MIN} to {PAN_DIGITS_MAX} digits", ErrorCode.INVALID_PAN
        )
    return bytes.fromhex("0000" + pan[-_PAN_BLOCK_DIGITS - 1 : -1])


def pin_block_iso0(pin: str, pan: str) -> bytes:
    """The clear ISO 9564 format 0 (ANSI X9.8) PIN block.

    ``0`` + PIN length + PIN padded with ``F`` to 16 nibbles, XOR ``0000`` + the 12 PAN
    digits left of the check digit.
    """
    if not (PIN_DIGITS_MIN <= len(pin) <= PIN_DIGITS_MAX and pin.isascii() and pin.isdigit()):
        raise PinBlockError(f"PIN must be {PIN_DIGITS_MIN} to {PIN_DIGITS_MAX} digits")
    pin_field = f"{_PIN_FORMAT_0:X}{len(pin):X}{pin}".ljust(16, _PIN_FILLER)
    return _xor(bytes.fromhex(pin_field), _pan_block(pan))


def pin_from_iso0(block: bytes, pan: str) -> str:
    """The PIN inside a clear format 0 block; checks format, length, digits and filler."""
    if len(block) != DES_BLOCK_SIZE_BYTES:
        raise PinBlockError("PIN block must be 8 bytes")
    pin_field = _xor(block, _pan_block(pan)).hex().upper()
    if pin_field[0] != f"{_PIN_FORMAT_0:X}":
        raise PinBlockError("PIN block is not ISO format 0 (wrong PIK or PAN?)")
    length = int(pin_field[1], 16)
    if not PIN_DIGITS_MIN <= length <= PIN_DIGITS_MAX:
        raise PinBlockError("PIN length in the block is out of range (wrong PIK or PAN?)")
    pin, filler = pin_field[2 : 2 + length], pin_field[2 + length :]
    if not pin.isdigit() or filler != _PIN_FILLER * len(filler):
        raise PinBlockError("PIN block content is malformed (wrong PIK or PAN?)")
    return pin


def encrypt_pin_block(pik: bytes, clear_block: bytes) -> bytes:
    """Encrypt a clear PIN block under the PIK (field 52)."""
    if len(clear_block) != DES_BLOCK_SIZE_BYTES:
        raise PinBlockError("PIN block must be 8 bytes")
    return des_ecb_encrypt(pik, clear_block)


def decrypt_pin_block(pik: bytes, encrypted_block: bytes) -> bytes:
    """Decrypt field 52 with the PIK into the clear PIN block."""
    if len(encrypted_block) != DES_BLOCK_SIZE_BYTES:
        raise PinBlockError("PIN block must be 8 bytes")
    return des_ecb_decrypt(pik, encrypted_block)


# --------------------------------------------------------------------------- working keys


@dataclass(frozen=True, slots=True)
class WorkingKeys:
    """Clear working keys of one sign-on: PIN key, MAC key, optional track data key.

    The repr shows check values only.
    """

    pik: bytes
    mak: bytes
    tdk: bytes | None = None

    def __repr__(self) -> str:
        tdk = "None" if self.tdk is None else f"<kcv {_kcv_hex(self.tdk)}>"
        return (
            f"WorkingKeys(pik=<kcv {_kcv_hex(self.pik)}>, "
            f"mak=<kcv {_kcv_hex(self.mak)}>, tdk={tdk})"
        )


def _kcv_hex(key: bytes) -> str:
    try:
        return key_check_value(key).hex().upper()
    except KeyFormatError:
        return f"invalid length {len(key)}"


WORKING_KEYS_FIELD_SIZES_BYTES: Final = {
    # (double_length, with_tdk) -> size of field 62
    (True, True): 3 * (DOUBLE_KEY_SIZE_BYTES + KCV_SIZE_BYTES),
    (True, False): 2 * (DOUBLE_KEY_SIZE_BYTES + KCV_SIZE_BYTES),
    (False, False): 2 * (SINGLE_KEY_SIZE_BYTES + KCV_SIZE_BYTES),
}
"""60 bytes double length with TDK, 40 without, 24 single length (no TDK there)."""


def build_working_keys_field(
    tmk: bytes, pik: bytes, mak: bytes, tdk: bytes | None, double_length: bool
) -> bytes:
    """Field 62 of the sign-on answer: each key under the TMK, then its clear-key KCV.

    Order PIK, MAK, TDK. Double length: 16-byte keys (60 bytes with TDK, 40 without).
    Single length: 8-byte PIK and MAK, no TDK (24 bytes).
    """
    size = DOUBLE_KEY_SIZE_BYTES if double_length else SINGLE_KEY_SIZE_BYTES
    if tdk is not None and not double_length:
        raise KeyFormatError("the single-length key layout has no track data key")
    keys = [pik, mak] if tdk is None else [pik, mak, tdk]
    if any(len(key) != size for key in keys):
        raise KeyFormatError(f"working keys must be {size} bytes for this layout")
    return b"".join(encrypt_key_under(tmk, key) + key_check_value(key) for key in keys)


def parse_working_keys_field(tmk: bytes, data: bytes, double_length: bool) -> WorkingKeys:
    """Terminal side of :func:`build_working_keys_field`: decrypt and check every KCV.

    Raises :class:`KeyCheckValueError` naming the key whose check value differs.
    """
    with_tdk = double_length and len(data) == WORKING_KEYS_FIELD_SIZES_BYTES[(True, True)]
    expected = WORKING_KEYS_FIELD_SIZES_BYTES[(double_length, with_tdk)]
    if len(data) != expected:
        raise KeyFormatError(f"working keys field is {len(data)} bytes, expecting {expected}")
    size = DOUBLE_KEY_SIZE_BYTES if double_length else SINGLE_KEY_SIZE_BYTES
    step = size + KCV_SIZE_BYTES
    clear: list[bytes] = []
    for name, start in zip(("PIK", "MAK", "TDK"), range(0, len(data), step), strict=False):
        key = decrypt_key_under(tmk, data[start : start + size])
        received = data[start + size : start + step]
        if not hmac.compare_digest(key_check_value(key), received):
            raise KeyCheckValueError(f"{name} check value does not match")
        clear.append(key)
    return WorkingKeys(clear[0], clear[1], clear[2] if with_tdk else None)
