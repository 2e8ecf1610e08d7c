"""Printer profiles and print jobs as the layers above the store see them (issue 14).

The store maps its rows to and from these values (``store/printing.py``); the printing
services, the API and the command line use them and never a row class.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class JobKind(StrEnum):
    """What a print job prints."""

    RECEIPT = "receipt"
    DECLINE = "decline"
    SETTLEMENT = "settlement"
    TEST = "test"


class JobState(StrEnum):
    """A job waits (``pending``, retried with backoff) until printed or cancelled."""

    PENDING = "pending"
    PRINTED = "printed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class PrinterProfile:
    """One terminal's (or cash register's) printer, and how far its follower has read."""

    name: str
    merchant_id: str
    terminal_id: str
    interface: str
    address: str
    width_cols: int
    encoding: str
    copies: int
    enabled: bool
    txn_cursor_at: datetime
    settlement_cursor_at: datetime
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PrintJob:
    """One slip to print: its content (slip data as JSON, masked card number only)."""

    job_id: int
    job_key: str
    printer_name: str
    merchant_id: str
    terminal_id: str
    kind: JobKind
    copy: str | None
    duplicate: bool
    txn_id: str | None
    batch_no: str | None
    stan: str | None
    rrn: str | None
    content: str
    state: JobState
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    printed_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewPrintJob:
    """A job to enqueue; ``job_key`` makes enqueueing idempotent."""

    job_key: str
    printer_name: str
    merchant_id: str
    terminal_id: str
    kind: JobKind
    content: str
    copy: str | None = None
    duplicate: bool = False
    txn_id: str | None = None
    batch_no: str | None = None
    stan: str | None = None
    rrn: str | None = None
