"""The message catalogue of the terminal host, shared by the server and the terminal client.

Which request is which (MTI, processing code field 3, field 25, transaction type 60.1 and
network management code 60.3), the answer MTI, the fields each request must carry, and which
requests carry a MAC (field 64); docs/terminal-integration.md ("Messages") shows the table.

Pure values: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from autosettle.domain.iso8583.fields import NetworkManagementCode, TransactionType, parse_field60
from autosettle.domain.iso8583.message import MTI_KEY, MessageFormatError
from autosettle.domain.transactions import TxnType


class MessageKind(StrEnum):
    SIGN_ON = "sign_on"
    SIGN_OFF = "sign_off"
    ECHO = "echo"
    SALE = "sale"
    VOID = "void"
    REFUND = "refund"
    PREAUTH = "preauth"
    PREAUTH_VOID = "preauth_void"
    COMPLETION = "completion"
    COMPLETION_VOID = "completion_void"
    BALANCE_INQUIRY = "balance_inquiry"
    REVERSAL = "reversal"
    SETTLEMENT = "settlement"
    BATCH_UPLOAD = "batch_upload"
    BATCH_UPLOAD_END = "batch_upload_end"


@dataclass(frozen=True, slots=True)
class FinancialSpec:
    """One row of the domain table of card transactions."""

    kind: MessageKind
    txn_type: TxnType
    mti: str
    processing_code: str
    condition_code: str
    type_code: TransactionType
    needs_card: bool
    has_original: bool

    @property
    def reversible(self) -> bool:
        return self.kind is not MessageKind.BALANCE_INQUIRY


_K, _T, _TT = MessageKind, TxnType, TransactionType
FINANCIAL: Final[tuple[FinancialSpec, ...]] = (
    FinancialSpec(_K.SALE, _T.SALE, "0200", "000000", "00", _TT.SALE, True, False),
    FinancialSpec(_K.VOID, _T.VOID, "0200", "200000", "00", _TT.VOID, False, True),
    FinancialSpec(_K.REFUND, _T.REFUND, "0220", "200000", "00", _TT.REFUND, False, True),
    FinancialSpec(_K.PREAUTH, _T.PREAUTH, "0100", "030000", "06", _TT.PRE_AUTH, True, False),
    FinancialSpec(_K.PREAUTH_VOID, _T.PREAUTH_VOID, "0100", "200000", "06", _TT.PRE_AUTH_VOID,
                  False, True),
    FinancialSpec(_K.COMPLETION, _T.COMPLETION, "0200", "000000", "06", _TT.COMPLETION,
                  False, True),
    FinancialSpec(_K.COMPLETION_VOID, _T.COMPLETION_VOID, "0200", "200000", "06",
                  _TT.COMPLETION_VOID, False, True),
    FinancialSpec(_K.BALANCE_INQUIRY, _T.BALANCE_INQUIRY, "0200", "310000", "00",
                  _TT.BALANCE_INQUIRY, True, False),
)
FINANCIAL_BY_KIND: Final[Mapping[MessageKind, FinancialSpec]] = MappingProxyType(
    {spec.kind: spec for spec in FINANCIAL})
FINANCIAL_BY_TYPE_CODE: Final[Mapping[str, FinancialSpec]] = MappingProxyType(
    {spec.type_code.value: spec for spec in FINANCIAL})

REVERSAL_MTIS: Final = frozenset({"0400", "0420"})
RESPONSE_MTI: Final[Mapping[str, str]] = MappingProxyType({
    "0100": "0110", "0200": "0210", "0220": "0230", "0320": "0330", "0400": "0410",
    "0420": "0430", "0500": "0510", "0800": "0810", "0820": "0830",
})
"""Every request MTI the host serves, with its answer MTI."""

UPLOAD_END_CODES: Final = frozenset({"202", "207"})
"""60.3 of the last 0320: ``202`` in one open-source terminal, ``207`` in the other."""

_IDS: Final = frozenset({"41", "42"})
_FINANCIAL_FIELDS: Final = _IDS | {"3", "11", "25", "60", "64"}
MANDATORY: Final[Mapping[MessageKind, frozenset[str]]] = MappingProxyType({
    _K.SIGN_ON: _IDS | {"11", "60"},
    _K.SIGN_OFF: _IDS | {"60"},
    _K.ECHO: _IDS | {"60"},
    _K.SALE: _FINANCIAL_FIELDS | {"4", "22"},
    _K.VOID: _FINANCIAL_FIELDS | {"4", "61"},
    _K.REFUND: _FINANCIAL_FIELDS | {"4", "61"},
    _K.PREAUTH: _FINANCIAL_FIELDS | {"4", "22"},
    _K.PREAUTH_VOID: _FINANCIAL_FIELDS | {"4", "61"},
    _K.COMPLETION: _FINANCIAL_FIELDS | {"4", "61"},
    _K.COMPLETION_VOID: _FINANCIAL_FIELDS | {"4", "61"},
    _K.BALANCE_INQUIRY: _FINANCIAL_FIELDS | {"22"},
    _K.REVERSAL: _FINANCIAL_FIELDS | {"61"},
    _K.SETTLEMENT: _IDS | {"11", "48", "60"},
    _K.BATCH_UPLOAD: _IDS | {"11", "48", "60"},
    _K.BATCH_UPLOAD_END: _IDS | {"11", "48", "60"},
})
"""Fields a request must carry; one missing is answered 30 (format error). A card comes in
field 2 or in track 2 (35), so neither is listed; field 64 is listed where a MAC is
required (a missing one is answered A0, not 30)."""

MAC_REQUIRED: Final = frozenset(
    {spec.kind for spec in FINANCIAL} | {MessageKind.REVERSAL})
"""Requests that must carry field 64; their answers carry it too."""
MAC_IF_PRESENT: Final = frozenset(
    {MessageKind.SETTLEMENT, MessageKind.BATCH_UPLOAD, MessageKind.BATCH_UPLOAD_END})
"""Requests whose field 64 is checked when present (answers then carry one too)."""
SIGNED_ON_REQUIRED: Final = MAC_REQUIRED | MAC_IF_PRESENT
"""Requests accepted only from a signed-on terminal (A0 otherwise)."""


def response_mti(mti: str) -> str | None:
    """The answer MTI of a request MTI the host serves, else None."""
    return RESPONSE_MTI.get(mti)


def classify(fields: Mapping[str, str]) -> MessageKind | None:
    """Which request this is, or None when the host does not serve it.

    Financial messages are told apart by 60.1 and checked against their MTI and the first
    two digits of the processing code (the last four carry account types some terminals
    fill in). 0800/0820/0320 by 60.3.
    """
    mti = fields.get(MTI_KEY, "")
    try:
        f60 = parse_field60(fields.get("60", ""))
    except MessageFormatError:
        return None
    if mti == "0800":
        return _K.SIGN_ON
    if mti == "0820":
        return {NetworkManagementCode.SIGN_OFF.value: _K.SIGN_OFF,
                NetworkManagementCode.ECHO.value: _K.ECHO}.get(f60.network_mgmt_code)
    if mti == "0500":
        return _K.SETTLEMENT
    if mti == "0320":
        if f60.network_mgmt_code == NetworkManagementCode.SETTLEMENT.value:
            return _K.BATCH_UPLOAD
        return _K.BATCH_UPLOAD_END if f60.network_mgmt_code in UPLOAD_END_CODES else None
    spec = FINANCIAL_BY_TYPE_CODE.get(f60.txn_type)
    if spec is None or fields.get("3", "")[:2] != spec.processing_code[:2]:
        return None
    if mti in REVERSAL_MTIS:
        return _K.REVERSAL
    return spec.kind if mti == spec.mti else None


def reversed_spec(fields: Mapping[str, str]) -> FinancialSpec | None:
    """For a 0400/0420: the kind of message it reverses (from 60.1), if known."""
    try:
        return FINANCIAL_BY_TYPE_CODE.get(parse_field60(fields.get("60", "")).txn_type)
    except MessageFormatError:
        return None
