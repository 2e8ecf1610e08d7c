"""The China UnionPay (CUP) POS field layout as a ``pyiso8583`` spec dict.

Layout (docs/terminal-integration.md, "The frame"): MTI as 2 bytes of BCD, an 8-byte binary
primary bitmap (no secondary bitmap), variable-length prefixes in BCD (one byte for
LLVAR, two for LLLVAR). Numeric fields are BCD:

* fixed-length odd numeric fields are right-aligned (one ``0`` nibble on the left),
  except field 22, which CUP sends left-aligned (``0`` nibble on the right);
* variable-length odd numeric and track fields are left-aligned (``0`` nibble on the
  right), as the open-source CUP terminals pack them.

``max_len`` counts nibbles for BCD fields (``len_count="nibbles"``) and bytes for the
others, exactly as the CUP notation ``n..19`` / ``ans...999`` counts characters.

Binary fields (52, 55, 62, 64) appear in decoded dicts as upper-case hex strings; track
fields (35, 36) as digits with ``=`` for the separator (the codec maps ``=`` to the ``D``
nibble on the wire).

>>> CUP_POS_SPEC["22"]["right_pad"], CUP_POS_SPEC["23"]["left_pad"]
('0', '0')
>>> sorted(int(k) for k in CUP_POS_SPEC if k.isdigit())[:5]
[2, 3, 4, 11, 12]
"""

from __future__ import annotations

from typing import Any, Final

FieldSpec = dict[str, Any]
"""One field's pyiso8583 spec (keys: data_enc, len_enc, len_type, max_len, ...)."""

BCD_LL_PREFIX_SIZE_BYTES: Final = 1
BCD_LLL_PREFIX_SIZE_BYTES: Final = 2
MTI_SIZE_BYTES: Final = 2
BITMAP_SIZE_BYTES: Final = 8
MAC_FIELD_SIZE_BYTES: Final = 8

TEXT_ENCODING: Final = "ascii"
"""Encoding of the an/ans fields terminals fill with identifiers and codes."""

FREE_TEXT_ENCODING: Final = "gbk"
"""Field 63 may carry Chinese text (issuer names) in GBK on the answer side."""


def _numeric(digits: int, desc: str, *, left_aligned: bool = False) -> FieldSpec:
    """Fixed-length BCD field of ``digits`` digits."""
    spec: FieldSpec = {
        "data_enc": "b",
        "len_enc": "bcd",
        "len_type": 0,
        "max_len": digits,
        "len_count": "nibbles",
        "desc": desc,
    }
    if digits % 2:
        spec["right_pad" if left_aligned else "left_pad"] = "0"
    return spec


def _numeric_var(max_digits: int, prefix_bytes: int, desc: str) -> FieldSpec:
    """Variable-length BCD field (also used for track data), left-aligned."""
    return {
        "data_enc": "b",
        "len_enc": "bcd",
        "len_type": prefix_bytes,
        "max_len": max_digits,
        "len_count": "nibbles",
        "right_pad": "0",
        "desc": desc,
    }


def _text(size: int, desc: str) -> FieldSpec:
    """Fixed-length ASCII field of ``size`` bytes."""
    return {
        "data_enc": TEXT_ENCODING,
        "len_enc": "bcd",
        "len_type": 0,
        "max_len": size,
        "desc": desc,
    }


def _text_var(
    max_size: int, prefix_bytes: int, desc: str, encoding: str = TEXT_ENCODING
) -> FieldSpec:
    """Variable-length text field of at most ``max_size`` bytes."""
    return {
        "data_enc": encoding,
        "len_enc": "bcd",
        "len_type": prefix_bytes,
        "max_len": max_size,
        "desc": desc,
    }


def _binary(size: int, desc: str) -> FieldSpec:
    """Fixed-length binary field of ``size`` bytes."""
    return {"data_enc": "b", "len_enc": "bcd", "len_type": 0, "max_len": size, "desc": desc}


def _binary_var(max_size: int, prefix_bytes: int, desc: str) -> FieldSpec:
    """Variable-length binary field of at most ``max_size`` bytes."""
    return {
        "data_enc": "b",
        "len_enc": "bcd",
        "len_type": prefix_bytes,
        "max_len": max_size,
        "desc": desc,
    }


_LL = BCD_LL_PREFIX_SIZE_BYTES
_LLL = BCD_LLL_PREFIX_SIZE_BYTES

CUP_POS_SPEC: Final[dict[str, FieldSpec]] = {
    # No pyiso8583 header: TPDU and the 6-byte CUP header are handled by frame.py.
    "h": {"data_enc": "ascii", "len_enc": "ascii", "len_type": 0, "max_len": 0, "desc": "-"},
    "t": {
        "data_enc": "b",
        "len_enc": "ascii",
        "len_type": 0,
        "max_len": MTI_SIZE_BYTES,
        "desc": "Message Type Identifier (BCD)",
    },
    "p": {
        "data_enc": "b",
        "len_enc": "ascii",
        "len_type": 0,
        "max_len": BITMAP_SIZE_BYTES,
        "desc": "Primary bitmap (binary)",
    },
    "2": _numeric_var(19, _LL, "Primary Account Number"),
    "3": _numeric(6, "Processing code"),
    "4": _numeric(12, "Amount, transaction (fen)"),
    "11": _numeric(6, "System trace audit number"),
    "12": _numeric(6, "Local time hhmmss"),
    "13": _numeric(4, "Local date MMDD"),
    "14": _numeric(4, "Expiry date YYMM"),
    "15": _numeric(4, "Settlement date MMDD"),
    "22": _numeric(3, "POS entry mode (left-aligned)", left_aligned=True),
    "23": _numeric(3, "Card sequence number"),
    "25": _numeric(2, "POS condition code"),
    "26": _numeric(2, "POS PIN capture code"),
    "32": _numeric_var(11, _LL, "Acquiring institution id"),
    "35": _numeric_var(37, _LL, "Track 2 data"),
    "36": _numeric_var(104, _LLL, "Track 3 data"),
    "37": _text(12, "Retrieval reference number"),
    "38": _text(6, "Authorization id response"),
    "39": _text(2, "Response code"),
    "41": _text(8, "Card acceptor terminal id"),
    "42": _text(15, "Card acceptor id (merchant)"),
    "44": _text_var(25, _LL, "Additional response data"),
    "48": _numeric_var(322, _LLL, "Additional data, private (totals, batch upload)"),
    "49": _text(3, "Currency code, transaction"),
    "52": _binary(8, "PIN block (encrypted)"),
    "53": _numeric(16, "Security related control information"),
    # an...020 in Cocoon-break cup8583.xml: account type (2), amount type (2), currency (3),
    # sign C/D (1), amount (12); the balance of a balance inquiry answer.
    "54": _text_var(20, _LLL, "Balance amount"),
    "55": _binary_var(255, _LLL, "ICC system related data (EMV TLV)"),
    "60": _numeric_var(19, _LLL, "Reserved private: type, batch, network mgmt code"),
    "61": _numeric_var(29, _LLL, "Original message data"),
    "62": _binary_var(999, _LLL, "Reserved private (working keys in 0810)"),
    "63": _text_var(163, _LLL, "Reserved private", FREE_TEXT_ENCODING),
    "64": _binary(MAC_FIELD_SIZE_BYTES, "Message authentication code"),
}
"""The pyiso8583 spec for CUP POS messages; pass it to ``iso8583.encode/decode``."""

FIELD_IDS: Final[frozenset[int]] = frozenset(int(k) for k in CUP_POS_SPEC if k.isdigit())
"""Data fields the layout defines; a bitmap naming any other field is malformed."""

MAC_FIELD_ID: Final = 64
MAC_FIELD_KEY: Final = str(MAC_FIELD_ID)

TRACK_FIELD_IDS: Final[frozenset[str]] = frozenset({"35", "36"})
"""Track fields: digits and the ``=`` separator (``D`` nibble on the wire)."""

NUMERIC_FIELD_IDS: Final[frozenset[str]] = frozenset(
    key
    for key, spec in CUP_POS_SPEC.items()
    if key.isdigit() and spec.get("len_count") == "nibbles" and key not in TRACK_FIELD_IDS
)
"""BCD fields whose decoded value must be decimal digits only."""

BINARY_FIELD_IDS: Final[frozenset[str]] = frozenset(
    key
    for key, spec in CUP_POS_SPEC.items()
    if key.isdigit() and spec["data_enc"] == "b" and "len_count" not in spec
)
"""Binary fields, carried in the decoded dict as upper-case hex."""

SENSITIVE_FIELD_IDS: Final[frozenset[str]] = frozenset({"2", "35", "36", "48", "52", "55", "62"})
"""Fields never shown in reprs: PAN, tracks, PANs in batch upload, PIN, ICC data, keys."""
