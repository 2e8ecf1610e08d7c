"""The ledger repository: append-only journal entries and lines; balances are sums."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from autosettle.domain.errors import ConflictError, ErrorCode, InvariantViolation
from autosettle.domain.ledger import JournalEntry
from autosettle.domain.ledger_records import BalanceRow, PostedEntry
from autosettle.store.bulk import insert_rows
from autosettle.store.tables import journal_entries, journal_lines


def _insert_entry(module: Any, *returning: Any) -> Any:
    return (module.insert(journal_entries)
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(*returning))


_DIALECTS: dict[str, Any] = {"postgresql": postgresql, "sqlite": sqlite}
_INSERT_ENTRY_RETURNING_ID = {name: _insert_entry(module, journal_entries.c.entry_id)
                              for name, module in _DIALECTS.items()}
_INSERT_LINES = insert(journal_lines)


def _entry_row(entry: JournalEntry, at: datetime, fingerprint: str) -> dict[str, Any]:
    return {"idempotency_key": entry.idempotency_key, "fingerprint": fingerprint,
            "kind": entry.kind, "merchant_id": entry.merchant_id,
            "reference": entry.reference, "created_at": at}


def _line_rows(entry_id: int, entry: JournalEntry) -> list[dict[str, Any]]:
    return [{"entry_id": entry_id, "account_code": line.account.code,
             "merchant_id": line.account.merchant_id, "currency": line.amount.currency.code,
             "amount_minor": line.amount.amount_minor} for line in entry.lines]


class LedgerRepository:
    """Posts entries exactly once per idempotency key and derives balances from lines."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def post(self, entry: JournalEntry, at: datetime) -> PostedEntry:
        """Insert ``entry`` unless its key exists; a same-key, different-content retry is a
        409-style :class:`ConflictError`.

        ``INSERT .. ON CONFLICT DO NOTHING`` makes a concurrent duplicate wait for the first
        transaction and then find its row, so two racing posts give one entry. The
        statements are built once per dialect (building them costs more than running them).
        """
        fingerprint = entry.fingerprint()
        entry_id = self._conn.execute(_INSERT_ENTRY_RETURNING_ID[self._conn.dialect.name],
                                      _entry_row(entry, at, fingerprint)).scalar()
        if entry_id is None:
            existing = self._conn.execute(
                select(journal_entries.c.entry_id, journal_entries.c.fingerprint)
                .where(journal_entries.c.idempotency_key == entry.idempotency_key)
            ).first()
            if existing is None:
                raise InvariantViolation("idempotency key conflicted but no entry was found")
            if existing.fingerprint != fingerprint:
                raise ConflictError(
                    f"idempotency key {entry.idempotency_key!r} was used for a different entry",
                    ErrorCode.IDEMPOTENCY_CONFLICT,
                )
            return PostedEntry(existing.entry_id, entry.idempotency_key, created=False)
        self._conn.execute(_INSERT_LINES, _line_rows(entry_id, entry))
        return PostedEntry(entry_id, entry.idempotency_key, created=True)

    def post_batch(self, entries: list[JournalEntry], at: datetime) -> list[PostedEntry]:
        """Post many entries with one bulk INSERT for the entries and one for the lines
        (:func:`autosettle.store.bulk.insert_rows`); keys seen before fall back to
        :meth:`post` (replay or conflict)."""
        if not entries:
            return []
        keys = [e.idempotency_key for e in entries]
        if len(set(keys)) != len(keys):
            return [self.post(entry, at) for entry in entries]
        rows = [_entry_row(e, at, e.fingerprint()) for e in entries]
        created = {key: entry_id for entry_id, key in insert_rows(
            self._conn, journal_entries, rows, conflict=["idempotency_key"],
            returning=["entry_id", "idempotency_key"])}
        insert_rows(self._conn, journal_lines, [
            row for e in entries if e.idempotency_key in created
            for row in _line_rows(created[e.idempotency_key], e)])
        return [
            PostedEntry(created[e.idempotency_key], e.idempotency_key, created=True)
            if e.idempotency_key in created else self.post(e, at)
            for e in entries
        ]

    def balances_for_merchant(self, merchant_id: str) -> list[BalanceRow]:
        """Balances of every account of one merchant (derived, never stored)."""
        total = func.sum(journal_lines.c.amount_minor)
        rows = self._conn.execute(
            select(journal_lines.c.account_code, journal_lines.c.currency, total)
            .where(journal_lines.c.merchant_id == merchant_id)
            .group_by(journal_lines.c.account_code, journal_lines.c.currency)
            .order_by(journal_lines.c.account_code, journal_lines.c.currency))
        return [BalanceRow(r[0], r[1], int(r[2])) for r in rows]

    def balance(self, account_code: str, currency: str) -> int:
        value = self._conn.execute(
            select(func.coalesce(func.sum(journal_lines.c.amount_minor), 0)).where(
                journal_lines.c.account_code == account_code,
                journal_lines.c.currency == currency)).scalar()
        return int(value or 0)

    def imbalance_by_currency(self) -> dict[str, int]:
        """Sum of all lines per currency: every value is zero in a healthy ledger."""
        rows = self._conn.execute(
            select(journal_lines.c.currency, func.sum(journal_lines.c.amount_minor))
            .group_by(journal_lines.c.currency))
        return {r[0]: int(r[1]) for r in rows}

    def unbalanced_entries(self, limit: int = 100) -> list[int]:
        """Ids of entries whose lines do not sum to zero in some currency (should be none)."""
        rows = self._conn.execute(
            select(journal_lines.c.entry_id)
            .group_by(journal_lines.c.entry_id, journal_lines.c.currency)
            .having(func.sum(journal_lines.c.amount_minor) != 0).limit(limit))
        return [r[0] for r in rows]

    def entry_count(self) -> int:
        return int(self._conn.execute(select(func.count()).select_from(journal_entries))
                   .scalar() or 0)

    def net_lines_for_reference(self, reference: str) -> list[BalanceRow]:
        """Net amount per account and currency of every entry that names ``reference``."""
        total = func.sum(journal_lines.c.amount_minor)
        rows = self._conn.execute(
            select(journal_lines.c.account_code, journal_lines.c.currency, total)
            .join(journal_entries, journal_entries.c.entry_id == journal_lines.c.entry_id)
            .where(journal_entries.c.reference == reference)
            .group_by(journal_lines.c.account_code, journal_lines.c.currency)
            .order_by(journal_lines.c.account_code, journal_lines.c.currency))
        return [BalanceRow(r[0], r[1], int(r[2])) for r in rows if int(r[2]) != 0]
