"""Key and PIN handling: the behaviour mutation testing found unchecked (docs/testing.md).

Component counts at their edges, PIN blocks malformed in each way a wrong key or PAN makes
them, which working key fails its check value, and the words of every refusal.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from autosettle.domain.errors import ErrorCode, ValidationError
from autosettle.domain.iso8583.crypto import (
    KEY_COMPONENTS_MAX,
    KEY_COMPONENTS_MIN,
    KeyCheckValueError,
    KeyFormatError,
    PinBlockError,
    WorkingKeys,
    adjust_odd_parity,
    build_working_keys_field,
    combine_components,
    decrypt_pin_block,
    des_ecb_encrypt,
    encrypt_pin_block,
    generate_key,
    key_check_value,
    mac_x919,
    parse_working_keys_field,
    pin_block_iso0,
    pin_from_iso0,
    split_key,
)

PAN = "4111111111111111"
KEY16 = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
KEY8 = bytes.fromhex("0123456789ABCDEF")
TMK = bytes.fromhex("11223344556677888877665544332211")


def _clear_block(pin_field: str, pan: str = PAN) -> bytes:
    """The clear block whose PIN field (16 hex nibbles) is ``pin_field`` for ``pan``."""
    pan_block = bytes.fromhex("0000" + pan[-13:-1])
    return bytes(a ^ b for a, b in zip(bytes.fromhex(pin_field), pan_block, strict=True))


def _refusal(action: Callable[[], object]) -> ValidationError:
    with pytest.raises(ValidationError) as excinfo:
        action()
    return excinfo.value


@pytest.mark.parametrize(
    ("action", "kind", "message"),
    [(lambda: des_ecb_encrypt(KEY8[:7], bytes(8)), KeyFormatError,
      "a DES key is 8, 16 or 24 bytes, not 7"),
     (lambda: des_ecb_encrypt(KEY8, bytes(7)), KeyFormatError,
      "DES data must be a multiple of 8 bytes, not 7"),
     (lambda: generate_key(10), KeyFormatError, "a DES key is 8, 16 or 24 bytes, not 10"),
     (lambda: split_key(KEY16, KEY_COMPONENTS_MAX + 1), KeyFormatError,
      "a key is split into 2 to 3 components"),
     (lambda: split_key(KEY16[:10], 2), KeyFormatError, "a DES key is 8, 16 or 24 bytes, not 10"),
     (lambda: combine_components([KEY16]), KeyFormatError,
      "a key is combined from 2 to 3 components"),
     (lambda: combine_components([KEY16, KEY8]), KeyFormatError,
      "key components must all be 8, 16 or 24 bytes long"),
     (lambda: mac_x919(KEY8, b"data"), KeyFormatError, "an X9.19 MAK is 16 bytes, not 8"),
     (lambda: pin_block_iso0("123", PAN), PinBlockError, "PIN must be 4 to 12 digits"),
     (lambda: pin_from_iso0(bytes(7), PAN), PinBlockError, "PIN block must be 8 bytes"),
     (lambda: encrypt_pin_block(KEY16, bytes(7)), PinBlockError, "PIN block must be 8 bytes"),
     (lambda: decrypt_pin_block(KEY16, bytes(9)), PinBlockError, "PIN block must be 8 bytes"),
     (lambda: build_working_keys_field(TMK, KEY8, KEY8, KEY8, double_length=False),
      KeyFormatError, "the single-length key layout has no track data key"),
     (lambda: build_working_keys_field(TMK, KEY16, KEY8, None, double_length=True),
      KeyFormatError, "working keys must be 16 bytes for this layout"),
     (lambda: parse_working_keys_field(TMK, bytes(41), double_length=True), KeyFormatError,
      "working keys field is 41 bytes, expecting 40")],
)
def test_refusals_say_why(action: Callable[[], object], kind: type[ValidationError],
                          message: str) -> None:
    error = _refusal(action)
    assert type(error) is kind
    assert error.message == message


def test_a_pin_block_for_a_bad_pan_is_an_invalid_pan() -> None:
    error = _refusal(lambda: pin_block_iso0("1234", "4111"))
    assert error.code is ErrorCode.INVALID_PAN
    assert error.message == "PAN must be 13 to 19 digits"


# -- key components ---------------------------------------------------------------------------
@pytest.mark.parametrize("parts", [KEY_COMPONENTS_MIN, KEY_COMPONENTS_MAX])
def test_split_gives_that_many_components_which_combine_to_the_key(parts: int) -> None:
    components = split_key(KEY16, parts)
    assert len(components) == parts
    assert len(set(components)) == parts
    assert combine_components(components) == adjust_odd_parity(KEY16)
    assert combine_components(list(components)) == adjust_odd_parity(KEY16)


# -- PIN blocks ---------------------------------------------------------------------------------
def test_a_well_formed_block_gives_its_pin() -> None:
    assert pin_from_iso0(_clear_block("041234FFFFFFFFFF"), PAN) == "1234"
    assert pin_from_iso0(_clear_block("0C123456789012FF"), PAN) == "123456789012"


@pytest.mark.parametrize(
    ("pin_field", "message"),
    [("141234FFFFFFFFFF", "PIN block is not ISO format 0 (wrong PIK or PAN?)"),
     ("03123FFFFFFFFFFF", "PIN length in the block is out of range (wrong PIK or PAN?)"),
     ("0D1234567890123F", "PIN length in the block is out of range (wrong PIK or PAN?)"),
     ("0412340FFFFFFFFF", "PIN block content is malformed (wrong PIK or PAN?)"),
     ("041234FFFFFFFFF0", "PIN block content is malformed (wrong PIK or PAN?)"),
     ("0412A4FFFFFFFFFF", "PIN block content is malformed (wrong PIK or PAN?)")],
)
def test_a_malformed_block_is_refused_and_says_how(pin_field: str, message: str) -> None:
    assert _refusal(lambda: pin_from_iso0(_clear_block(pin_field), PAN)).message == message


# -- working keys -------------------------------------------------------------------------------
def _field_with_tdk() -> bytes:
    return build_working_keys_field(TMK, KEY16, KEY16[::-1], adjust_odd_parity(TMK),
                                    double_length=True)


@pytest.mark.parametrize(("name", "kcv_at"), [("PIK", 16), ("MAK", 36), ("TDK", 56)])
def test_a_wrong_check_value_names_its_key(name: str, kcv_at: int) -> None:
    field = bytearray(_field_with_tdk())
    field[kcv_at] ^= 0xFF
    error = _refusal(lambda: parse_working_keys_field(TMK, bytes(field), double_length=True))
    assert type(error) is KeyCheckValueError
    assert error.message == f"{name} check value does not match"


def test_working_keys_show_check_values_only() -> None:
    keys = parse_working_keys_field(TMK, _field_with_tdk(), double_length=True)
    kcv = {k: key_check_value(k).hex().upper() for k in (keys.pik, keys.mak)}
    assert keys.tdk is not None
    assert repr(keys) == (f"WorkingKeys(pik=<kcv {kcv[keys.pik]}>, mak=<kcv {kcv[keys.mak]}>, "
                          f"tdk=<kcv {key_check_value(keys.tdk).hex().upper()}>)")
    assert repr(WorkingKeys(KEY16, KEY16)).endswith(", tdk=None)")
