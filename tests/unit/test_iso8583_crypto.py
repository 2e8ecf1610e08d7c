"""Keys, MACs and PIN blocks: published known-answer vectors first, then properties.

Vector sources:
* DES: FIPS 81 / Schneier example, key 0123456789ABCDEF, "Now is the time for all ".
* KCV 08D7B4: the classic check value of 0123456789ABCDEFFEDCBA9876543210.
* CUP ECB MAC: worked example in solo123/pgate, test/integration/pos_mac_test.rb.
* X9.19: psec tests/test_mac.py, pyemv tests/test_mac.py, Bouncy Castle
  ISO9797Alg3MacTest.
* PIN block: domain.md §1 (PIN 1234, PAN 5544332211009966) and psec
  tests/test_pinblock.py.
"""

from __future__ import annotations

import doctest
import string

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from hypothesis import given
from hypothesis import strategies as st

from autosettle.domain.errors import ErrorCode, ValidationError
from autosettle.domain.iso8583 import crypto
from autosettle.domain.iso8583.crypto import (
    KeyCheckValueError,
    KeyFormatError,
    PinBlockError,
    WorkingKeys,
    adjust_odd_parity,
    build_working_keys_field,
    decrypt_key_under,
    decrypt_pin_block,
    des_ecb_decrypt,
    des_ecb_encrypt,
    encrypt_key_under,
    encrypt_pin_block,
    generate_key,
    has_odd_parity,
    key_check_value,
    mac_cup_ecb,
    mac_x919,
    macs_equal,
    parse_working_keys_field,
    pin_block_iso0,
    pin_from_iso0,
)

CLASSIC_KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
TMK = bytes.fromhex("2315208C9110AD402315208C9110AD40")

keys8 = st.binary(min_size=8, max_size=8)
keys16 = st.binary(min_size=16, max_size=16)
any_keys = st.sampled_from([8, 16, 24]).flatmap(lambda n: st.binary(min_size=n, max_size=n))
blocks = st.integers(0, 8).flatmap(lambda n: st.binary(min_size=8 * n, max_size=8 * n))


def _h(text: str) -> bytes:
    return bytes.fromhex(text)


# -- DES, KCV, key generation ---------------------------------------------------------------
def test_single_des_known_answer() -> None:
    cipher = des_ecb_encrypt(_h("0123456789ABCDEF"), b"Now is the time for all ")
    assert cipher.hex().upper() == "3FA40E8A984D48156A271787AB8883F9893D51EC4B563B53"


def test_kcv_of_the_classic_double_length_key() -> None:
    assert key_check_value(CLASSIC_KEY)[:3].hex().upper() == "08D7B4"
    assert key_check_value(CLASSIC_KEY).hex().upper() == "08D7B4FB"
    assert len(key_check_value(CLASSIC_KEY)) == crypto.KCV_SIZE_BYTES


@given(keys8, keys8, blocks)
def test_double_length_is_ede_with_the_left_half_twice(k1: bytes, k2: bytes, data: bytes) -> None:
    encryptor = Cipher(TripleDES(k1 + k2 + k1), modes.ECB()).encryptor()
    assert des_ecb_encrypt(k1 + k2, data) == encryptor.update(data) + encryptor.finalize()


@given(keys8, blocks)
def test_single_length_equals_double_with_equal_halves(key: bytes, data: bytes) -> None:
    assert des_ecb_encrypt(key, data) == des_ecb_encrypt(key + key, data)


@given(any_keys, blocks)
def test_des_round_trips(key: bytes, data: bytes) -> None:
    assert des_ecb_decrypt(key, des_ecb_encrypt(key, data)) == data


@pytest.mark.parametrize("size", [0, 7, 9, 15, 32])
def test_des_rejects_bad_key_lengths(size: int) -> None:
    with pytest.raises(KeyFormatError):
        des_ecb_encrypt(bytes(size), bytes(8))
    with pytest.raises(KeyFormatError):
        generate_key(size)


def test_des_rejects_partial_blocks() -> None:
    with pytest.raises(KeyFormatError):
        des_ecb_encrypt(CLASSIC_KEY, bytes(7))
    with pytest.raises(KeyFormatError):
        des_ecb_decrypt(CLASSIC_KEY, bytes(9))


def test_odd_parity_adjustment() -> None:
    assert adjust_odd_parity(_h("0000FFFE7F")) == _h("0101FEFE7F")
    assert has_odd_parity(_h("0123456789ABCDEE")) is False
    assert has_odd_parity(CLASSIC_KEY) is True
    assert has_odd_parity(_h("0123456789ABCDEF")) is True


@given(st.binary(max_size=24))
def test_parity_adjustment_only_touches_the_low_bit(data: bytes) -> None:
    adjusted = adjust_odd_parity(data)
    assert has_odd_parity(adjusted)
    assert all(a & 0xFE == b & 0xFE for a, b in zip(adjusted, data, strict=True))


@pytest.mark.parametrize("size", [8, 16, 24])
def test_generate_key(size: int) -> None:
    key = generate_key(size)
    assert len(key) == size
    assert has_odd_parity(key)
    parts = {key[i : i + 8] for i in range(0, size, 8)}
    assert len(parts) == size // 8
    assert generate_key(size) != key


@given(any_keys, any_keys)
def test_key_wrapping_round_trips(kek: bytes, key: bytes) -> None:
    wrapped = encrypt_key_under(kek, key)
    assert len(wrapped) == len(key)
    assert decrypt_key_under(kek, wrapped) == key


# -- MACs ----------------------------------------------------------------------------------
def test_cup_ecb_mac_worked_example() -> None:
    """Every intermediate of the published example, then the result."""
    mak = _h("2222222222222222")
    data = _h("1234567890ABCDEFABCDEF1234567890")
    xored = bytes(a ^ b for a, b in zip(data[:8], data[8:], strict=True))
    assert xored.hex().upper() == "B9F9B96AA4FDB57F"
    ascii_hex = xored.hex().upper().encode()
    assert ascii_hex.hex().upper() == "42394639423936414134464442353746"
    first = des_ecb_encrypt(mak, ascii_hex[:8])
    assert first.hex().upper() == "9FDE90A34CF73B2E"
    temp = bytes(a ^ b for a, b in zip(first, ascii_hex[8:], strict=True))
    assert temp.hex().upper() == "DEEAD6E70EC20C68"
    assert des_ecb_encrypt(mak, temp).hex().upper() == "E267B6E21913D339"
    assert mac_cup_ecb(mak, data) == b"E267B6E2"


def test_cup_ecb_mac_zero_pads_the_last_block() -> None:
    mak = _h("2222222222222222")
    assert mac_cup_ecb(mak, b"\x12\x34") == mac_cup_ecb(mak, b"\x12\x34" + bytes(6))
    assert mac_cup_ecb(mak, b"") == mac_cup_ecb(mak, bytes(8))


@given(keys8, st.binary(max_size=200))
def test_cup_ecb_mac_shape_and_key_length_equivalence(mak: bytes, data: bytes) -> None:
    mac = mac_cup_ecb(mak, data)
    assert len(mac) == crypto.MAC_SIZE_BYTES
    assert set(mac.decode()) <= set(string.hexdigits.upper())
    # A double-length MAK with equal halves is single DES: EDE2 reduces to E.
    assert mac_cup_ecb(mak + mak, data) == mac


def test_cup_ecb_mac_with_double_length_mak_uses_3des() -> None:
    data = b"0200 some message bytes"
    assert mac_cup_ecb(CLASSIC_KEY, data) != mac_cup_ecb(CLASSIC_KEY[:8], data)


@pytest.mark.parametrize(
    ("mak", "data", "expected", "source"),
    [
        (b"A" * 8 + b"B" * 8, b"hello world", "3DDE5C5511661CBF", "psec"),
        (_h("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB"), b"hello world", "78DA3D3DEB48FD4D", "pyemv"),
        (_h("7CA110454A1A6E570131D9619DC1376E"), b"Hello World !!!!", "F09B856213BAB83B", "BC"),
    ],
)
def test_x919_known_answers(mak: bytes, data: bytes, expected: str, source: str) -> None:
    assert mac_x919(mak, data).hex().upper() == expected, source


@given(keys8, st.binary(min_size=1, max_size=200))
def test_x919_with_equal_halves_is_plain_cbc_mac(key: bytes, data: bytes) -> None:
    padded = data + bytes(-len(data) % 8)
    encryptor = Cipher(TripleDES(key * 3), modes.CBC(bytes(8))).encryptor()
    cbc_mac = (encryptor.update(padded) + encryptor.finalize())[-8:]
    assert mac_x919(key + key, data) == cbc_mac


def test_x919_needs_a_double_length_key() -> None:
    with pytest.raises(KeyFormatError):
        mac_x919(bytes(8), b"data")
    assert mac_x919(CLASSIC_KEY, b"") == mac_x919(CLASSIC_KEY, bytes(8))


def test_macs_equal() -> None:
    assert macs_equal(b"E267B6E2", b"E267B6E2")
    assert not macs_equal(b"E267B6E2", b"E267B6E3")
    assert not macs_equal(b"E267B6E2", b"E267B6")


# -- PIN blocks ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pin", "pan", "block"),
    [
        ("1234", "5544332211009966", "041277CDDEEFF669"),  # domain.md §1
        ("1234", "5555555551234567", "041261AAAAEDCBA9"),  # psec
        ("123456789", "5555555551234567", "091261032D8DCBA9"),  # psec
        ("123456789012", "5555555551234567", "0C1261032D8226A9"),  # psec
    ],
)
def test_pin_block_iso0_vectors(pin: str, pan: str, block: str) -> None:
    assert pin_block_iso0(pin, pan).hex().upper() == block
    assert pin_from_iso0(_h(block), pan) == pin


@given(
    st.text(string.digits, min_size=4, max_size=12),
    st.text(string.digits, min_size=13, max_size=19),
    keys16,
)
def test_pin_round_trips_through_the_pik(pin: str, pan: str, pik: bytes) -> None:
    encrypted = encrypt_pin_block(pik, pin_block_iso0(pin, pan))
    assert pin_from_iso0(decrypt_pin_block(pik, encrypted), pan) == pin


@pytest.mark.parametrize(
    ("pin", "pan", "code"),
    [
        ("123", "5544332211009966", ErrorCode.VALIDATION_FAILED),
        ("1234567890123", "5544332211009966", ErrorCode.VALIDATION_FAILED),
        ("12a4", "5544332211009966", ErrorCode.VALIDATION_FAILED),
        ("١٢٣٤", "5544332211009966", ErrorCode.VALIDATION_FAILED),  # non-ASCII digits
        ("1234", "554433221100", ErrorCode.INVALID_PAN),
        ("1234", "55443322110099X6", ErrorCode.INVALID_PAN),
    ],
)
def test_pin_block_rejects_bad_input(pin: str, pan: str, code: ErrorCode) -> None:
    with pytest.raises(PinBlockError) as excinfo:
        pin_block_iso0(pin, pan)
    assert excinfo.value.code == code
    assert pin not in str(excinfo.value)
    assert pan not in str(excinfo.value)


@pytest.mark.parametrize(
    "block",
    [
        "241277CDDEEFF669",  # control field 2, not format 0
        "021277CDDEEFF669",  # PIN length 2
        "0F1277CDDEEFF669",  # PIN length 15
        "041277CDDEEFF66A",  # filler is not all F
        "051277CDDEEFF669",  # PIN "1234F" is not numeric
        "041277CDDEEFF6",  # 7 bytes
    ],
)
def test_pin_from_iso0_rejects_malformed_blocks(block: str) -> None:
    with pytest.raises(PinBlockError) as excinfo:
        pin_from_iso0(_h(block), "5544332211009966")
    assert "1234" not in str(excinfo.value)


def test_wrong_pik_is_detected_as_a_malformed_block() -> None:
    encrypted = encrypt_pin_block(CLASSIC_KEY, pin_block_iso0("1234", "5544332211009966"))
    with pytest.raises(PinBlockError):
        pin_from_iso0(decrypt_pin_block(TMK, encrypted), "5544332211009966")


def test_pin_block_encryption_needs_one_block() -> None:
    with pytest.raises(PinBlockError):
        encrypt_pin_block(CLASSIC_KEY, bytes(16))
    with pytest.raises(PinBlockError):
        decrypt_pin_block(CLASSIC_KEY, bytes(4))


# -- working keys (field 62) ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("double_length", "with_tdk", "size"),
    [(True, True, 60), (True, False, 40), (False, False, 24)],
)
def test_working_keys_round_trip(double_length: bool, with_tdk: bool, size: int) -> None:
    key_size = 16 if double_length else 8
    keys = WorkingKeys(
        generate_key(key_size), generate_key(key_size), generate_key(16) if with_tdk else None
    )
    field = build_working_keys_field(TMK, keys.pik, keys.mak, keys.tdk, double_length)
    assert len(field) == size
    assert parse_working_keys_field(TMK, field, double_length) == keys


def test_working_keys_layout() -> None:
    pik, mak = generate_key(16), generate_key(16)
    field = build_working_keys_field(TMK, pik, mak, None, True)
    assert field[:16] == encrypt_key_under(TMK, pik)
    assert field[16:20] == key_check_value(pik)
    assert field[20:36] == encrypt_key_under(TMK, mak)
    assert field[36:40] == key_check_value(mak)


@pytest.mark.parametrize(("position", "name"), [(17, "PIK"), (38, "MAK"), (59, "TDK"), (3, "PIK")])
def test_tampered_working_keys_are_detected(position: int, name: str) -> None:
    keys = [generate_key(16) for _ in range(3)]
    pik, mak, tdk = keys
    field = bytearray(build_working_keys_field(TMK, pik, mak, tdk, double_length=True))
    field[position] ^= 0x01
    with pytest.raises(KeyCheckValueError, match=name) as excinfo:
        parse_working_keys_field(TMK, bytes(field), double_length=True)
    assert isinstance(excinfo.value, ValidationError)
    for key in keys:
        assert key.hex() not in str(excinfo.value).lower()


def test_working_keys_under_the_wrong_tmk_are_detected() -> None:
    field = build_working_keys_field(TMK, generate_key(16), generate_key(16), None, True)
    with pytest.raises(KeyCheckValueError):
        parse_working_keys_field(CLASSIC_KEY, field, double_length=True)


def test_working_keys_reject_wrong_shapes() -> None:
    with pytest.raises(KeyFormatError):
        build_working_keys_field(TMK, bytes(8), bytes(8), bytes(8), double_length=False)
    with pytest.raises(KeyFormatError):
        build_working_keys_field(TMK, bytes(16), bytes(8), None, double_length=True)
    with pytest.raises(KeyFormatError):
        parse_working_keys_field(TMK, bytes(24), double_length=True)
    with pytest.raises(KeyFormatError):
        parse_working_keys_field(TMK, bytes(40), double_length=False)


def test_working_keys_repr_shows_check_values_only() -> None:
    keys = WorkingKeys(CLASSIC_KEY, generate_key(16))
    text = repr(keys)
    assert "08D7B4FB" in text
    assert CLASSIC_KEY.hex() not in text.lower()
    assert keys.mak.hex() not in text.lower()
    assert "tdk=None" in text


# -- docs ----------------------------------------------------------------------------------
def test_docstring_examples() -> None:
    failures, _ = doctest.testmod(crypto)
    assert failures == 0
