"""The terminal host's stored facts as the layers above the store see them: sealed keys,
the status view, batch settlements, batch upload items, reconciliation flags and the lines
of a batch. The store maps its rows to and from these values (``store/terminal_keys.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One terminal's keys as stored: sealed blobs (opaque) and public check values."""

    merchant_id: str
    terminal_id: str
    status: str
    tmk_sealed: bytes | None = field(repr=False)
    tmk_kcv: str | None
    tmk_generation: int
    key_generation: int
    pik_sealed: bytes | None = field(repr=False)
    pik_kcv: str | None
    mak_sealed: bytes | None = field(repr=False)
    mak_kcv: str | None
    tdk_sealed: bytes | None = field(repr=False)
    tdk_kcv: str | None
    provisioned_at: datetime | None
    keys_issued_at: datetime | None
    reset_at: datetime | None
    pending_generation: int | None = None
    pending_pik_sealed: bytes | None = field(default=None, repr=False)
    pending_pik_kcv: str | None = None
    pending_mak_sealed: bytes | None = field(default=None, repr=False)
    pending_mak_kcv: str | None = None
    pending_tdk_sealed: bytes | None = field(default=None, repr=False)
    pending_tdk_kcv: str | None = None
    pending_double_length: bool | None = None
    pending_issued_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StatusRow:
    """One line of the terminal status view: the terminal, its keys and its state."""

    merchant_id: str
    terminal_id: str
    terminal_status: str
    key_status: str | None
    key_generation: int | None
    pending_generation: int | None
    signed_on: bool
    mac_algorithm: str | None
    last_sign_on_at: datetime | None
    last_message_at: datetime | None
    open_batch_no: str | None
    software_version: str | None


@dataclass(frozen=True, slots=True)
class SettlementRecord:
    """The outcome of one 0500 batch close (field 48 strings of 62 digits each)."""

    merchant_id: str
    terminal_id: str
    batch_no: str
    terminal_totals: str
    host_totals: str
    answer_totals: str
    verdict: str
    upload_state: str
    uploaded_count: int
    settled_at: datetime
    upload_finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class UploadItem:
    """One transaction a terminal listed in its 0320 batch upload (masked PAN only)."""

    merchant_id: str
    terminal_id: str
    batch_no: str
    stan: str
    card_org: str
    pan_masked: str
    amount_minor: int
    received_at: datetime


@dataclass(frozen=True, slots=True)
class BatchFlag:
    """A reconciliation exception found by a batch upload; resolved by an operator."""

    merchant_id: str
    terminal_id: str
    batch_no: str
    stan: str
    kind: str
    terminal_amount_minor: int | None
    host_amount_minor: int | None
    txn_id: str | None
    pan_masked: str | None
    created_at: datetime
    resolved_at: datetime | None = None
    flag_id: int | None = None


@dataclass(frozen=True, slots=True)
class BatchLine:
    """The columns of a stored transaction that batch reconciliation needs."""

    txn_id: str
    txn_type: str
    status: str
    amount_minor: int
    stan: str
    batch_no: str
    card_brand: str | None
    pan_masked: str | None
