"""Repository of the terminal host: sealed keys, terminal state, batch settlements, batch
upload items and reconciliation flags (tables of issue 5, see ``tables.py``).

Keys arrive here already sealed by the key module (``services/terminal_keys.py``); this
module never sees a clear key, PIN or PAN (upload items keep the masked PAN only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Table, and_, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from autosettle.domain.terminal_records import (
    BatchFlag,
    BatchLine,
    KeyRecord,
    SettlementRecord,
    StatusRow,
    UploadItem,
)
from autosettle.store.tables import (
    terminal_batch_flags,
    terminal_batches,
    terminal_keys,
    terminal_settlements,
    terminal_state,
    terminal_upload_items,
    terminals,
    transactions,
)

TERMINAL_MERCHANTS_MAX = 2
"""Enough to tell "unknown" (0) from "another merchant's terminal" (1 or more)."""


@dataclass(frozen=True, slots=True)
class StateRecord:
    """What the host knows of a terminal's session and health."""

    merchant_id: str
    terminal_id: str
    signed_on: bool
    mac_algorithm: str
    double_length: bool
    last_sign_on_at: datetime | None
    last_message_at: datetime | None
    open_batch_no: str | None
    software_version: str | None
    updated_at: datetime


_NO_PENDING: dict[str, Any] = {
    "pending_generation": None, "pending_double_length": None, "pending_issued_at": None,
    "pending_pik_sealed": None, "pending_pik_kcv": None, "pending_mak_sealed": None,
    "pending_mak_kcv": None, "pending_tdk_sealed": None, "pending_tdk_kcv": None,
}


def _key_values(prefix: str,
                sealed: Mapping[str, tuple[bytes, str] | None]) -> dict[str, Any]:
    """Columns ``<prefix><role>_sealed`` / ``_kcv`` of PIK, MAK and TDK (None: absent)."""
    values: dict[str, Any] = {}
    for role in ("pik", "mak", "tdk"):
        pair = sealed.get(role)
        values[f"{prefix}{role}_sealed"] = pair[0] if pair else None
        values[f"{prefix}{role}_kcv"] = pair[1] if pair else None
    return values


def _build(cls: Any, row: Row[Any] | Any) -> Any:
    m = row._mapping
    return cls(**{name: m[name] for name in cls.__dataclass_fields__ if name in m})


_LINE_COLUMNS = (
    transactions.c.txn_id, transactions.c.txn_type, transactions.c.status,
    transactions.c.amount_minor, transactions.c.stan, transactions.c.batch_no,
    transactions.c.card_brand, transactions.c.pan_masked,
)


class TerminalHostRepository:
    """Everything the terminal host stores, keyed by (merchant id, terminal id)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def _insert_ignore(self, table: Table, values: Mapping[str, Any]) -> None:
        """Insert a row unless one with the same key exists (retries are harmless)."""
        name = self._conn.dialect.name
        if name == "postgresql":
            self._conn.execute(postgresql.insert(table).values(**values)
                               .on_conflict_do_nothing())
        elif name == "sqlite":
            self._conn.execute(sqlite.insert(table).values(**values).on_conflict_do_nothing())
        else:  # pragma: no cover - only the two supported databases
            self._conn.execute(insert(table).values(**values))

    # -- lookups ------------------------------------------------------------------------

    def merchants_of_terminal(self, terminal_id: str) -> list[str]:
        """Merchants that have a terminal with this id (to tell 97 from 03)."""
        rows = self._conn.execute(select(terminals.c.merchant_id).where(
            terminals.c.terminal_id == terminal_id).limit(TERMINAL_MERCHANTS_MAX))
        return [r[0] for r in rows]

    # -- keys ---------------------------------------------------------------------------

    def get_keys(self, merchant_id: str, terminal_id: str,
                 for_update: bool = False) -> KeyRecord | None:
        query = select(terminal_keys).where(terminal_keys.c.merchant_id == merchant_id,
                                            terminal_keys.c.terminal_id == terminal_id)
        if for_update:
            query = query.with_for_update()
        row = self._conn.execute(query).first()
        return _build(KeyRecord, row) if row else None

    def put_tmk(self, merchant_id: str, terminal_id: str, sealed: bytes, kcv: str,
                generation: int, at: datetime) -> None:
        """A new TMK: active, and no working keys until the next sign-on."""
        values = dict(status="active", tmk_sealed=sealed, tmk_kcv=kcv,
                      tmk_generation=generation, pik_sealed=None, pik_kcv=None,
                      mak_sealed=None, mak_kcv=None, tdk_sealed=None, tdk_kcv=None,
                      provisioned_at=at, keys_issued_at=None, reset_at=None, **_NO_PENDING)
        if self.get_keys(merchant_id, terminal_id) is None:
            self._conn.execute(insert(terminal_keys).values(
                merchant_id=merchant_id, terminal_id=terminal_id, key_generation=0, **values))
        else:
            self._conn.execute(update(terminal_keys).where(
                terminal_keys.c.merchant_id == merchant_id,
                terminal_keys.c.terminal_id == terminal_id).values(**values))

    def put_working_keys(self, merchant_id: str, terminal_id: str, generation: int,
                         sealed: Mapping[str, tuple[bytes, str] | None], at: datetime) -> None:
        """Replace the working keys (and drop pending ones); ``sealed`` maps
        ``pik``/``mak``/``tdk`` to (blob, kcv)."""
        values: dict[str, Any] = {"key_generation": generation, "keys_issued_at": at,
                                  **_NO_PENDING, **_key_values("", sealed)}
        self._update_keys(merchant_id, terminal_id, values)

    def put_pending_keys(self, merchant_id: str, terminal_id: str, generation: int,
                         sealed: Mapping[str, tuple[bytes, str] | None], double_length: bool,
                         at: datetime) -> None:
        """Store keys a sign-on issued beside the current ones (replacing pending ones)."""
        self._update_keys(merchant_id, terminal_id, {
            "pending_generation": generation, "pending_double_length": double_length,
            "pending_issued_at": at, **_key_values("pending_", sealed)})

    def promote_pending(self, merchant_id: str, terminal_id: str, generation: int,
                        at: datetime) -> bool:
        """Make the pending keys of ``generation`` the current ones (the old ones are gone).

        False when there is no such pending set (promoted or replaced meanwhile).
        """
        k = terminal_keys.c
        result = self._conn.execute(update(terminal_keys).where(
            k.merchant_id == merchant_id, k.terminal_id == terminal_id,
            k.pending_generation == generation).values(
            key_generation=k.pending_generation, keys_issued_at=at,
            pik_sealed=k.pending_pik_sealed, pik_kcv=k.pending_pik_kcv,
            mak_sealed=k.pending_mak_sealed, mak_kcv=k.pending_mak_kcv,
            tdk_sealed=k.pending_tdk_sealed, tdk_kcv=k.pending_tdk_kcv, **_NO_PENDING))
        return result.rowcount == 1

    def reset(self, merchant_id: str, terminal_id: str, at: datetime) -> None:
        """Forget the TMK and the working keys: the terminal is locked out."""
        self._update_keys(merchant_id, terminal_id, dict(
            status="reset", tmk_sealed=None, tmk_kcv=None, pik_sealed=None, pik_kcv=None,
            mak_sealed=None, mak_kcv=None, tdk_sealed=None, tdk_kcv=None, reset_at=at,
            **_NO_PENDING))

    def _update_keys(self, merchant_id: str, terminal_id: str,
                     values: Mapping[str, Any]) -> None:
        self._conn.execute(update(terminal_keys).where(
            terminal_keys.c.merchant_id == merchant_id,
            terminal_keys.c.terminal_id == terminal_id).values(**values))

    # -- state --------------------------------------------------------------------------

    def get_state(self, merchant_id: str, terminal_id: str) -> StateRecord | None:
        row = self._conn.execute(select(terminal_state).where(
            terminal_state.c.merchant_id == merchant_id,
            terminal_state.c.terminal_id == terminal_id)).first()
        return _build(StateRecord, row) if row else None

    def upsert_state(self, merchant_id: str, terminal_id: str, at: datetime,
                     **values: Any) -> None:
        """Update the state row (created with defaults on first use)."""
        self._insert_ignore(terminal_state, dict(
            merchant_id=merchant_id, terminal_id=terminal_id, signed_on=False,
            mac_algorithm="cup_ecb", double_length=False, updated_at=at))
        self._conn.execute(update(terminal_state).where(
            terminal_state.c.merchant_id == merchant_id,
            terminal_state.c.terminal_id == terminal_id).values(updated_at=at, **values))

    def status_rows(self, merchant_id: str | None, after: tuple[str, str] | None,
                    limit: int) -> list[StatusRow]:
        """Every terminal with its keys and state, by (merchant id, terminal id)."""
        t, k, s = terminals.c, terminal_keys.c, terminal_state.c
        query = (
            select(t.merchant_id, t.terminal_id, t.status.label("terminal_status"),
                   k.status.label("key_status"), k.key_generation, k.pending_generation,
                   s.signed_on,
                   s.mac_algorithm, s.last_sign_on_at, s.last_message_at, s.open_batch_no,
                   s.software_version)
            .select_from(terminals.outerjoin(terminal_keys, and_(
                k.merchant_id == t.merchant_id, k.terminal_id == t.terminal_id))
                .outerjoin(terminal_state, and_(
                    s.merchant_id == t.merchant_id, s.terminal_id == t.terminal_id)))
            .order_by(t.merchant_id, t.terminal_id).limit(limit))
        if merchant_id is not None:
            query = query.where(t.merchant_id == merchant_id)
        if after is not None:
            m, tid = after
            query = query.where(or_(t.merchant_id > m,
                                    and_(t.merchant_id == m, t.terminal_id > tid)))
        return [StatusRow(
            merchant_id=r.merchant_id, terminal_id=r.terminal_id,
            terminal_status=r.terminal_status, key_status=r.key_status,
            key_generation=r.key_generation, pending_generation=r.pending_generation,
            signed_on=bool(r.signed_on),
            mac_algorithm=r.mac_algorithm, last_sign_on_at=r.last_sign_on_at,
            last_message_at=r.last_message_at, open_batch_no=r.open_batch_no,
            software_version=r.software_version) for r in self._conn.execute(query)]

    # -- batches and settlement -----------------------------------------------------------

    def latest_batch_no(self, merchant_id: str, terminal_id: str) -> tuple[str, str] | None:
        """(batch number, status) of the terminal's highest batch, if any."""
        row = self._conn.execute(select(terminal_batches.c.batch_no, terminal_batches.c.status)
                                 .where(terminal_batches.c.merchant_id == merchant_id,
                                        terminal_batches.c.terminal_id == terminal_id)
                                 .order_by(terminal_batches.c.batch_no.desc())).first()
        return (row[0], row[1]) if row else None

    def batch_lines(self, merchant_id: str, terminal_id: str, batch_no: str,
                    limit: int) -> list[BatchLine]:
        """The transactions of one terminal batch, by trace number."""
        rows = self._conn.execute(select(*_LINE_COLUMNS).where(
            transactions.c.merchant_id == merchant_id,
            transactions.c.terminal_id == terminal_id,
            transactions.c.batch_no == batch_no).order_by(transactions.c.stan).limit(limit))
        return [_build(BatchLine, r) for r in rows]

    def find_line(self, merchant_id: str, terminal_id: str, batch_no: str,
                  stan: str) -> BatchLine | None:
        row = self._conn.execute(select(*_LINE_COLUMNS).where(
            transactions.c.merchant_id == merchant_id,
            transactions.c.terminal_id == terminal_id,
            transactions.c.batch_no == batch_no, transactions.c.stan == stan)).first()
        return _build(BatchLine, row) if row else None

    def get_settlement(self, merchant_id: str, terminal_id: str,
                       batch_no: str) -> SettlementRecord | None:
        row = self._conn.execute(select(terminal_settlements).where(
            terminal_settlements.c.merchant_id == merchant_id,
            terminal_settlements.c.terminal_id == terminal_id,
            terminal_settlements.c.batch_no == batch_no)).first()
        return _build(SettlementRecord, row) if row else None

    def add_settlement(self, record: SettlementRecord) -> None:
        self._conn.execute(insert(terminal_settlements).values(
            **{name: getattr(record, name) for name in SettlementRecord.__dataclass_fields__}))

    def update_settlement(self, merchant_id: str, terminal_id: str, batch_no: str,
                          **values: Any) -> None:
        self._conn.execute(update(terminal_settlements).where(
            terminal_settlements.c.merchant_id == merchant_id,
            terminal_settlements.c.terminal_id == terminal_id,
            terminal_settlements.c.batch_no == batch_no).values(**values))

    def add_upload_item(self, item: UploadItem) -> None:
        """Record an uploaded transaction; a repeated upload of the same trace is ignored."""
        self._insert_ignore(terminal_upload_items, {
            name: getattr(item, name) for name in UploadItem.__dataclass_fields__})

    def upload_items(self, merchant_id: str, terminal_id: str, batch_no: str,
                     limit: int) -> list[UploadItem]:
        rows = self._conn.execute(select(terminal_upload_items).where(
            terminal_upload_items.c.merchant_id == merchant_id,
            terminal_upload_items.c.terminal_id == terminal_id,
            terminal_upload_items.c.batch_no == batch_no)
            .order_by(terminal_upload_items.c.stan).limit(limit))
        return [_build(UploadItem, r) for r in rows]

    def add_flag(self, flag: BatchFlag) -> None:
        """Record a reconciliation exception once (unique per batch, trace and kind)."""
        values = {name: getattr(flag, name) for name in BatchFlag.__dataclass_fields__
                  if name != "flag_id"}
        self._insert_ignore(terminal_batch_flags, values)

    def flags(self, merchant_id: str | None, terminal_id: str | None = None,
              batch_no: str | None = None, open_only: bool = True,
              limit: int = 500) -> Sequence[BatchFlag]:
        f = terminal_batch_flags.c
        query = select(terminal_batch_flags).order_by(f.flag_id).limit(limit)
        for column, value in ((f.merchant_id, merchant_id), (f.terminal_id, terminal_id),
                              (f.batch_no, batch_no)):
            if value is not None:
                query = query.where(column == value)
        if open_only:
            query = query.where(f.resolved_at.is_(None))
        return [_build(BatchFlag, r) for r in self._conn.execute(query)]
