"""The ledger repository: append-only journal entries and lines; balances are sums."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, delete, func, insert, select, text, union_all
from sqlalchemy.dialects import postgresql, sqlite

from autosettle.domain.errors import ConflictError, ErrorCode, InvariantViolation
from autosettle.domain.ledger import JournalEntry
from autosettle.domain.ledger_records import (
    BalanceRow,
    CheckpointMismatch,
    CheckpointWritten,
    PostedEntry,
)
from autosettle.store.bulk import insert_rows
from autosettle.store.tables import journal_entries, journal_lines, ledger_checkpoints


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


_CP = ledger_checkpoints.c
_JL = journal_lines.c


def _newest_mark() -> Any:
    """The newest checkpoint's high-water mark (0 without any), as a scalar subquery."""
    return select(func.coalesce(func.max(_CP.through_entry_id), 0)).scalar_subquery()


def derived_balances(conn: Connection, *, merchant_id: str | None = None,
                     account_codes: Sequence[str] | None = None,
                     currency: str | None = None) -> dict[tuple[str, str], int]:
    """THE balance read: (account code, currency) → balance, for one merchant's accounts
    and/or the accounts named, optionally in one currency. Every balance that would sum the
    journal's history reads through here.

    A balance is the newest checkpoint's balance plus the account's lines of entries above
    the checkpoint's mark (few, and found by the ``(merchant_id, entry_id)`` or
    ``(entry_id)`` index), in ONE statement, so that a checkpoint written meanwhile cannot
    be counted together with the lines it covers (one statement, one snapshot on
    PostgreSQL). Without any checkpoint the mark is 0: the full sum, as before. Accounts with
    lines but a zero balance are included (like a sum of lines)."""
    mark = _newest_mark()
    at_mark = select(_CP.account_code, _CP.currency,
                     _CP.balance_minor.label("amount")).where(_CP.through_entry_id == mark)
    above: Select[Any] = select(_JL.account_code, _JL.currency,
                                _JL.amount_minor.label("amount")).where(_JL.entry_id > mark)
    if merchant_id is not None:
        at_mark = at_mark.where(_CP.merchant_id == merchant_id)
        above = above.where(_JL.merchant_id == merchant_id)
    if account_codes is not None:
        codes = sorted(set(account_codes))
        if not codes:
            return {}
        at_mark = at_mark.where(_CP.account_code.in_(codes))
        above = above.where(_JL.account_code.in_(codes))
    if currency is not None:
        at_mark = at_mark.where(_CP.currency == currency)
        above = above.where(_JL.currency == currency)
    both = union_all(at_mark, above).subquery()
    rows = conn.execute(
        select(both.c.account_code, both.c.currency, func.sum(both.c.amount))
        .group_by(both.c.account_code, both.c.currency))
    return {(r[0], r[1]): int(r[2]) for r in rows}


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
        """Balances of every account of one merchant (derived: :func:`derived_balances`)."""
        found = derived_balances(self._conn, merchant_id=merchant_id)
        return [BalanceRow(code, cur, amount) for (code, cur), amount in sorted(found.items())]

    def balance(self, account_code: str, currency: str) -> int:
        found = derived_balances(self._conn, account_codes=[account_code], currency=currency)
        return found.get((account_code, currency), 0)

    def account_balances(self, account_codes: Sequence[str]) -> dict[tuple[str, str], int]:
        """Balances of several accounts by (account code, currency) (:func:`derived_balances`)."""
        return derived_balances(self._conn, account_codes=account_codes)

    # -- balance checkpoints (docs/ledger.md, "Balance checkpoints") ------------------------
    def newest_checkpoint(self) -> int:
        """The newest checkpoint's high-water mark; 0 when there is none."""
        return int(self._conn.execute(select(_newest_mark())).scalar() or 0)

    def safe_high_water_mark(self, wait_s: float, poll_s: float = 0.05) -> int | None:
        """The highest entry id below which no entry can still be committed, or ``None``
        when that could not be established within ``wait_s`` seconds.

        SQLite serialises writers: every id up to the committed maximum is final (an id
        rolled back is reused above it). PostgreSQL hands out ids at INSERT and commits in any
        order, so the committed maximum M can sit above an id still in flight. Any such
        transaction took its id before M's transaction committed, so it is in progress in
        the snapshot that saw M: read M and that snapshot's in-progress transaction ids in
        one statement, then wait until none of them is still in progress (they may commit
        ids below M; later transactions only get ids above M). Nothing is locked; a
        transaction that stays open longer than ``wait_s`` makes this run give up.

        A snapshot lists the in-progress transactions of the whole server; one that
        ``pg_stat_activity`` shows in another database cannot write this database's journal
        and is not waited for (an open session elsewhere on a shared server would otherwise
        stall every checkpoint). A transaction whose database cannot be seen (another
        role's session without ``pg_read_all_stats``, a prepared transaction) is waited for."""
        if self._conn.dialect.name != "postgresql":
            return int(self._conn.execute(
                select(func.coalesce(func.max(journal_entries.c.entry_id), 0))).scalar() or 0)
        row = self._conn.execute(text(
            "SELECT coalesce((SELECT max(entry_id) FROM journal_entries), 0), "
            "array(SELECT pg_snapshot_xip(pg_current_snapshot()))::text")).one()
        mark, xip = int(row[0]), str(row[1])
        if xip == "{}":
            return mark
        deadline = time.monotonic() + wait_s
        while True:
            busy = self._conn.execute(text(
                "SELECT count(*) FROM unnest(CAST(:xip AS xid8[])) AS x "
                "WHERE pg_xact_status(x) = 'in progress' AND NOT EXISTS ("
                " SELECT 1 FROM pg_stat_activity a WHERE a.backend_xid IS NOT NULL"
                " AND a.datname IS DISTINCT FROM current_database()"
                " AND a.backend_xid::text = (x::text::numeric % 4294967296)::text)"),
                {"xip": xip}).scalar()
            if not busy:
                return mark
            if time.monotonic() >= deadline:
                return None
            time.sleep(poll_s)

    def write_checkpoint(self, through_entry_id: int, at: datetime,
                         keep: int = 2) -> CheckpointWritten:
        """Write the checkpoint at ``through_entry_id`` (which must be a safe high-water
        mark): the newest checkpoint's balances plus the lines in between; every account
        seen so far gets a row, zero balances included. Idempotent: nothing happens unless
        the mark is above the newest checkpoint's. Checkpoints older than the newest
        ``keep`` are deleted (they are derived)."""
        previous = self.newest_checkpoint()
        if through_entry_id <= previous:
            return CheckpointWritten(previous, previous, 0, False)
        both = union_all(
            select(_CP.account_code, _CP.currency, _CP.merchant_id,
                   _CP.balance_minor.label("amount")).where(_CP.through_entry_id == previous),
            select(_JL.account_code, _JL.currency, _JL.merchant_id,
                   _JL.amount_minor.label("amount"))
            .where(_JL.entry_id > previous, _JL.entry_id <= through_entry_id),
        ).subquery()
        rows = self._conn.execute(
            select(both.c.account_code, both.c.currency, func.max(both.c.merchant_id),
                   func.sum(both.c.amount))
            .group_by(both.c.account_code, both.c.currency)).all()
        insert_rows(self._conn, ledger_checkpoints, [
            {"through_entry_id": through_entry_id, "account_code": r[0], "currency": r[1],
             "merchant_id": r[2], "balance_minor": int(r[3]), "created_at": at}
            for r in rows], conflict=["through_entry_id", "account_code", "currency"])
        marks = [int(m) for m in self._conn.execute(
            select(_CP.through_entry_id).distinct()
            .order_by(_CP.through_entry_id.desc()).limit(keep + 1)).scalars()]
        if len(marks) > keep:
            self._conn.execute(delete(ledger_checkpoints)
                               .where(_CP.through_entry_id <= marks[keep]))
        return CheckpointWritten(through_entry_id, previous, len(rows), True)

    def verify_checkpoint(self) -> tuple[int, list[CheckpointMismatch]]:
        """Recompute the newest checkpoint from every line up to its mark: its mark and the
        (account, currency) pairs that differ (empty: it is right)."""
        mark = self.newest_checkpoint()
        if mark == 0:
            return 0, []
        stored = {(r[0], r[1]): int(r[2]) for r in self._conn.execute(
            select(_CP.account_code, _CP.currency, _CP.balance_minor)
            .where(_CP.through_entry_id == mark))}
        summed = {(r[0], r[1]): int(r[2]) for r in self._conn.execute(
            select(_JL.account_code, _JL.currency, func.sum(_JL.amount_minor))
            .where(_JL.entry_id <= mark).group_by(_JL.account_code, _JL.currency))}
        wrong = [CheckpointMismatch(code, cur, stored.get((code, cur), 0),
                                    summed.get((code, cur), 0))
                 for code, cur in sorted({*stored, *summed})
                 if stored.get((code, cur)) != summed.get((code, cur))]
        return mark, wrong

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
