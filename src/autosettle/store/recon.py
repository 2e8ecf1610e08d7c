"""Reconciliation storage: imported files and lines, matches, discrepancies, business dates.

The bulk goes through columnar frames (polars), never a row object per line:

* reading: one statement per frame; on PostgreSQL ``COPY (SELECT ..) TO STDOUT`` as CSV,
  read by polars in one go; on SQLite the cursor's rows straight into a frame;
* writing: on PostgreSQL ``COPY .. FROM STDIN`` of the frame as CSV; on SQLite the DB-API's
  ``executemany`` on one prepared statement.

Queries are SQLAlchemy Core statements rendered with their (trusted, typed) values inline,
so one text serves both paths.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import polars as pl
from sqlalchemy import (
    BigInteger,
    Connection,
    Select,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from autosettle.domain.recon import DiscrepancyRecord
from autosettle.store.tables import (
    recon_days,
    recon_discrepancies,
    recon_files,
    recon_lines,
    recon_matches,
    recon_quarantine,
    settlement_items,
    transactions,
)

FINANCIAL_TYPES = ("sale", "completion", "void", "completion_void", "refund")
LIVE_STATUSES = ("approved", "voided", "completed")
"""Our financial records the channel should clear: approved (or since voided: the void is a
record of its own). ``reversed`` records are read too, to tell a status mismatch."""

LINE_COLUMNS = ("line_id", "file_id", "line_no", "txn_type", "line_date", "txn_at_s",
                "merchant_id", "terminal_id", "order_ref", "rrn", "trace", "batch_no",
                "pan_last4", "amount_minor", "fee_minor", "currency", "result", "reason")
MATCH_LINE_COLUMNS = tuple(c for c in LINE_COLUMNS if c not in ("file_id", "line_no"))
OUR_COLUMNS = ("txn_id", "merchant_id", "terminal_id", "txn_type", "status", "amount_minor",
               "currency", "business_date", "rrn", "trace", "batch_no", "pan_last4",
               "original_txn_id", "at_s", "fee_minor")
SMALL_COLUMNS = frozenset({"merchant_id", "terminal_id", "txn_type", "status", "currency",
                           "batch_no", "pan_last4", "result", "reason"})
"""Columns of few distinct values, read as categoricals (four bytes a row instead of a
sixteen-byte string view: a day of a million rows on each side is held in memory)."""
SQLITE_CACHE_KIB = 128 * 1024
READ_ROWS = 20_000
"""Rows fetched at a time from SQLite (a frame per batch, not a Python row per line)."""
READ_BYTES = 8 * 1024 * 1024
"""CSV bytes of PostgreSQL's COPY parsed at a time."""
WRITE_ROWS = 100_000
_INTS = {"line_id", "file_id", "line_no", "txn_at_s", "amount_minor", "fee_minor", "at_s",
         "discrepancy_id", "our_amount_minor", "their_amount_minor", "our_fee_minor",
         "their_fee_minor", "match_id"}
_DATES = {"line_date", "business_date", "file_date"}


@dataclass(frozen=True, slots=True)
class FileRow:
    file_id: int
    source: str
    channel: str
    file_name: str
    file_date: date | None
    line_count: int
    total_minor: int
    bad_count: int
    imported_at: datetime


@dataclass(frozen=True, slots=True)
class DayRow:
    channel: str
    business_date: date
    state: str
    matched_count: int
    cleared_minor: int
    currency: str
    runs: int
    run_at: datetime | None
    closed_at: datetime | None
    closed_by: str | None
    first_match_id: int | None = None
    last_match_id: int | None = None
    """The id range of the day's rows in ``recon_matches`` (None: none)."""


@dataclass(frozen=True, slots=True)
class Replaced:
    """What :meth:`ReconRepository.replace_results` wrote."""

    written: int
    """Discrepancies written."""
    first_match_id: int | None
    last_match_id: int | None
    """The id range of the matches written (to keep on the day's row), None for none."""



class ReconRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._pg = conn.dialect.name == "postgresql"
        self._cache_set = False

    def _big_cache(self) -> None:
        """SQLite: a page cache that holds a day's bulk writes. With the default (2 MiB) a
        transaction of a million lines spills its pages to the WAL over and over (tens of
        times the data written); set once per unit of work that writes in bulk."""
        if not self._pg and not self._cache_set:
            self._conn.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
            self._cache_set = True

    # -- frames ---------------------------------------------------------------------------
    def _sql(self, statement: Any) -> str:
        return str(statement.compile(dialect=self._conn.dialect,
                                     compile_kwargs={"literal_binds": True}))

    def read_frame(self, statement: Select[Any], names: Sequence[str],
                   small: Collection[str] = ()) -> pl.DataFrame:
        """The rows of ``statement`` as a frame with columns ``names`` (ints and dates typed,
        the ``small`` ones categorical, the rest text)."""
        return self.read_frame_sql(self._sql(statement), names, small)

    def read_frame_sql(self, sql: str, names: Sequence[str],
                       small: Collection[str] = ()) -> pl.DataFrame:
        """:meth:`read_frame` of a query's text."""
        schema: dict[str, Any] = {n: (pl.Categorical if n in small else pl.Utf8)
                                  for n in names}
        if self._pg:
            raw = self._conn.connection.driver_connection
            parts = [pl.DataFrame(schema=schema)]

            def parse(data: bytes | bytearray) -> None:
                parts.append(pl.read_csv(io.BytesIO(data), has_header=False,
                                         new_columns=list(names), schema=schema))

            # the CSV a few megabytes at a time, cut after a line end outside quotes (an
            # even number of quote characters before it): never the whole text in memory
            pending = bytearray()
            with raw.cursor() as cur, cur.copy(  # type: ignore[union-attr]
                    f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
                for block in copy:
                    pending += block
                    if len(pending) < READ_BYTES:
                        continue
                    cut = pending.rfind(b"\n") + 1
                    if cut and pending.count(b'"', 0, cut) % 2 == 0:
                        parse(pending[:cut])
                        del pending[:cut]
            if pending:
                parse(pending)
            frame = pl.concat(parts, rechunk=False)
        else:
            # the DB-API cursor of this transaction's connection, column by column: no
            # row objects of SQLAlchemy's, no frame built row-wise
            cursor = self._conn.connection.driver_connection.execute(  # type: ignore[union-attr]
                sql)
            typed = {n: (pl.Int64 if n in _INTS else pl.Utf8) for n in names}
            parts = [pl.DataFrame(schema=typed).cast({n: pl.Categorical for n in small
                                                      if n in typed})]
            while rows := cursor.fetchmany(READ_ROWS):
                columns = list(zip(*rows, strict=True))
                del rows
                parts.append(pl.DataFrame([
                    pl.Series(n, c, dtype=typed[n], strict=False).cast(schema[n])
                    if n in small else pl.Series(n, c, dtype=typed[n], strict=False)
                    for n, c in zip(names, columns, strict=True)]))
                del columns
            cursor.close()
            frame = pl.concat(parts, rechunk=False)
        casts = [pl.col(n).cast(pl.Int64) for n in names if n in _INTS]
        casts += [pl.col(n).str.slice(0, 10).str.to_date("%Y-%m-%d")
                  for n in names if n in _DATES]
        return frame.with_columns(casts) if casts else frame

    def write_frame(self, table_name: str, frame: pl.DataFrame) -> None:
        """Append ``frame``'s rows to ``table_name`` (columns by name)."""
        self.write_frames(table_name, [frame])

    def write_frames(self, table_name: str, frames: Iterable[pl.DataFrame]) -> None:
        """Append the rows of every frame of ``frames`` (the same columns; made one at a
        time by the caller, so never all in memory) to ``table_name``, in one statement on
        PostgreSQL (one ``COPY``) and one prepared statement on SQLite."""
        parts = (f for f in frames if f.height)
        first = next(parts, None)
        if first is None:
            return
        self._big_cache()
        names = first.columns
        if self._pg:
            raw = self._conn.connection.driver_connection
            with raw.cursor() as cur, cur.copy(  # type: ignore[union-attr]
                    f"COPY {table_name} ({', '.join(names)}) FROM STDIN WITH (FORMAT csv)",
            ) as copy:
                for frame in itertools.chain([first], parts):
                    frame = self._as_text(frame)
                    for start in range(0, frame.height, WRITE_ROWS):  # a slice at a time
                        buffer = io.BytesIO()
                        frame.slice(start, WRITE_ROWS).write_csv(
                            buffer, include_header=False, null_value="")
                        copy.write(buffer.getbuffer())
            return
        # the DB-API's executemany on this transaction's connection takes the rows as an
        # iterator: streamed from the frames, never a list of a million tuples
        rows = itertools.chain.from_iterable(
            self._as_text(frame).select(names).iter_rows()
            for frame in itertools.chain([first], parts))
        self._conn.connection.driver_connection.executemany(  # type: ignore[union-attr]
            f"INSERT INTO {table_name} ({', '.join(names)}) VALUES "
            f"({', '.join('?' * len(names))})", rows)

    def _as_text(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Datetimes as UTC text; on SQLite dates and categoricals as text too."""
        casts = [_utc_text(n, t, self._pg) for n, t in frame.schema.items()
                 if isinstance(t, pl.Datetime)]
        if not self._pg:  # (the DB-API takes text: a categorical's rows would be looked up)
            casts += [pl.col(n).cast(pl.Utf8) for n, t in frame.schema.items()
                      if t == pl.Date or t == pl.Categorical]
        return frame.with_columns(casts) if casts else frame

    # -- files ----------------------------------------------------------------------------
    def file_by_hash(self, source: str, content_hash: str) -> FileRow | None:
        row = self._conn.execute(select(*_file_cols()).where(
            recon_files.c.source == source, recon_files.c.content_hash == content_hash)).first()
        return FileRow(*row) if row else None

    def add_file(self, *, source: str, channel: str, file_name: str, content_hash: str,
                 file_date: date | None, line_count: int, total_minor: int, bad_count: int,
                 at: datetime, by: str) -> int:
        result = self._conn.execute(insert(recon_files).values(
            source=source, channel=channel, file_name=file_name[:200],
            content_hash=content_hash, file_date=file_date, line_count=line_count,
            total_minor=total_minor, bad_count=bad_count, imported_at=at, imported_by=by,
        ).returning(recon_files.c.file_id))
        return int(result.scalar_one())

    def set_file(self, file_id: int, **values: Any) -> None:
        self._conn.execute(update(recon_files).where(recon_files.c.file_id == file_id)
                           .values(**values))

    def files(self, channel: str | None = None) -> list[FileRow]:
        q = select(*_file_cols()).order_by(recon_files.c.file_id)
        if channel:
            q = q.where(recon_files.c.channel == channel)
        return [FileRow(*r) for r in self._conn.execute(q)]

    def add_quarantine(self, file_id: int, bad: Iterable[tuple[int, str]]) -> None:
        rows = [{"file_id": file_id, "line_no": n, "reason": r[:200]} for n, r in bad]
        if rows:
            self._conn.execute(insert(recon_quarantine), rows)

    def quarantined(self, file_id: int) -> list[tuple[int, str]]:
        return [(r.line_no, r.reason) for r in self._conn.execute(
            select(recon_quarantine).where(recon_quarantine.c.file_id == file_id)
            .order_by(recon_quarantine.c.line_no))]

    # -- the two sides --------------------------------------------------------------------
    def lines(self, channel: str, file_date: date,
              columns: Sequence[str] = LINE_COLUMNS) -> pl.DataFrame:
        """Every imported line of ``channel``'s files for ``file_date`` (``columns`` of
        them; a match needs :data:`MATCH_LINE_COLUMNS`)."""
        q = select(*[recon_lines.c[n] for n in columns]).where(
            recon_lines.c.channel == channel, recon_lines.c.file_date == file_date)
        return self.read_frame(q, columns, SMALL_COLUMNS)

    def _epoch(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        if self._pg:
            return cast(func.extract("epoch", column), BigInteger)
        return cast(func.strftime("%s", column), BigInteger)

    def our_records(self, channel: str, on: date,
                    carried: Sequence[str] = ()) -> pl.DataFrame:
        """Our financial records of ``channel`` for ``on`` (plus the ``carried`` txn ids of
        earlier days still waiting for their line), with each one's fee from its
        settlement item."""
        t = transactions
        i = settlement_items
        which = t.c.business_date == on
        if carried:
            which = or_(which, t.c.txn_id.in_(list(carried)))
        q = select(
            t.c.txn_id, t.c.merchant_id, t.c.terminal_id, t.c.txn_type, t.c.status,
            t.c.amount_minor, t.c.currency, t.c.business_date, t.c.rrn, t.c.stan,
            t.c.batch_no, t.c.pan_last4, t.c.original_txn_id,
            self._epoch(func.coalesce(t.c.answered_at, t.c.created_at)), i.c.fee_minor,
        ).select_from(t.outerjoin(i, and_(
            # a record's own item (one per record: its capture, void or refund), found by
            # the unique (merchant, txn, kind) index; reversal items belong to reversals
            i.c.merchant_id == t.c.merchant_id, i.c.txn_id == t.c.txn_id,
            i.c.kind.in_(("capture", "void", "refund"))))).where(
            which, t.c.channel == channel, t.c.txn_type.in_(FINANCIAL_TYPES),
            t.c.status.in_((*LIVE_STATUSES, "reversed")))
        return self.read_frame(q, OUR_COLUMNS, SMALL_COLUMNS)

    def carried_txn_ids(self, channel: str, before: date) -> list[str]:
        """Our records of earlier open days still reported ours-only (a late line may
        clear them)."""
        d = recon_discrepancies
        return [r[0] for r in self._conn.execute(select(d.c.txn_id).where(
            d.c.channel == channel, d.c.business_date < before, d.c.klass == "ours_only",
            d.c.state == "open", d.c.txn_id.is_not(None)))]

    def carried_reversals(self, channel: str, before: date) -> list[tuple[str, int]]:
        """(txn id, the channel's amount) of earlier days' status mismatches (a line for a
        record we reversed) still open: the channel's reversal line may come a day later.
        Those a line of ``before`` resolved already come too (a repeated run of ``before``
        pairs them again)."""
        d = recon_discrepancies
        mine = select(d.c.txn_id).where(
            d.c.channel == channel, d.c.business_date == before,
            d.c.klass == "status_mismatch", d.c.resolution == "auto",
            d.c.txn_id.is_not(None))
        return [(r[0], int(r[1])) for r in self._conn.execute(select(
            d.c.txn_id, d.c.their_amount_minor).where(
            d.c.channel == channel, d.c.business_date < before,
            d.c.klass == "status_mismatch", d.c.txn_id.is_not(None),
            d.c.their_amount_minor.is_not(None),
            or_(d.c.state == "open",
                and_(d.c.resolution == "auto", d.c.txn_id.in_(mine)))))]

    def terminal_batches_of_day(self, on: date) -> list[tuple[str, str, str]]:
        """(merchant, terminal, batch) of every terminal batch holding a record of ``on``."""
        t = transactions
        return [(r[0], r[1], r[2]) for r in self._conn.execute(
            select(t.c.merchant_id, t.c.terminal_id, t.c.batch_no).where(
                t.c.business_date == on).distinct().order_by(
                t.c.merchant_id, t.c.terminal_id, t.c.batch_no))]

    # -- results --------------------------------------------------------------------------
    def replace_results(self, channel: str, on: date,
                        matches: pl.DataFrame | Iterable[pl.DataFrame], found: pl.DataFrame,
                        match_count: int | None = None) -> Replaced:
        """Replace the day's matches (a frame, or frames made one at a time: then
        ``match_count`` says how many rows they hold) and open discrepancies with a new
        run's; a discrepancy already resolved (same class, record and line) is not reported
        again. The day's earlier matches are found by the id range on its row (the caller
        keeps the new range there: :class:`Replaced`)."""
        m = recon_matches
        day = self.day(channel, on)
        if day is not None and day.first_match_id is not None:
            self._conn.execute(delete(m).where(
                m.c.match_id.between(day.first_match_id, day.last_match_id),
                m.c.channel == channel, m.c.business_date == on))
        d = recon_discrepancies
        self._conn.execute(delete(d).where(d.c.channel == channel, d.c.business_date == on,
                                           d.c.state == "open"))
        if isinstance(matches, pl.DataFrame):
            parts: Iterable[pl.DataFrame] = [matches]
            count = matches.height
        else:
            parts, count = matches, match_count or 0
        first: int | None = None
        last: int | None = None
        if self._pg and count:
            # the ids of the day's matches taken in one step, not a sequence call per row
            first = self._reserve_ids("recon_matches", "match_id", count)
            last = first + count - 1
            parts = _numbered(parts, first, count)
            self.write_frames("recon_matches", parts)
        elif count:
            # SQLite: one writer at a time; the new rows' ids follow the highest there was
            before = self._conn.execute(select(func.max(m.c.match_id))).scalar() or 0
            self.write_frames("recon_matches", parts)
            first, last = self._conn.execute(select(
                func.min(m.c.match_id), func.max(m.c.match_id)).where(
                m.c.match_id > before)).one()
        if found.height:
            resolved = self.read_frame(select(d.c.klass, d.c.txn_id, d.c.line_id).where(
                d.c.channel == channel, d.c.business_date == on), ("klass", "txn_id",
                                                                   "line_id"))
            if resolved.height:
                found = found.join(resolved, on=["klass", "txn_id", "line_id"], how="anti",
                                   nulls_equal=True)
            self.write_frame("recon_discrepancies", found)
        return Replaced(found.height, first, last)

    def _reserve_ids(self, table: str, column: str, count: int) -> int:
        """PostgreSQL: the first of ``count`` consecutive new ids of ``table.column``'s
        sequence. Sequences are not transactional: the step (next value, then moved on by
        ``count``) is guarded by an advisory lock that every writer of the table takes (the
        results of a run are its only writer); the lock is released at once."""
        sequence = self._conn.exec_driver_sql(
            f"SELECT pg_get_serial_sequence('{table}', '{column}')").scalar_one()
        lock = f"SELECT %s(hashtext('{sequence}'))"
        self._conn.exec_driver_sql(lock % "pg_advisory_lock")
        try:
            first = int(self._conn.exec_driver_sql(
                f"SELECT nextval('{sequence}')").scalar_one())
            self._conn.exec_driver_sql(f"SELECT setval('{sequence}', {first + count - 1})")
        finally:
            self._conn.exec_driver_sql(lock % "pg_advisory_unlock")
        return first

    def resolve_ours_only(self, channel: str, txn_ids: Sequence[str], note: str,
                          at: datetime, *, klass: str = "ours_only",
                          before: date | None = None) -> list[int]:
        """Auto-resolve earlier days' open discrepancies of ``klass`` (ours-only records a
        later line cleared; status mismatches a later line reversed); their ids."""
        if not txn_ids:
            return []
        d = recon_discrepancies
        where = and_(d.c.channel == channel, d.c.klass == klass, d.c.state == "open",
                     d.c.txn_id.in_(list(txn_ids)))
        if before is not None:
            where = and_(where, d.c.business_date < before)
        ids = [r[0] for r in self._conn.execute(select(d.c.discrepancy_id).where(where))]
        if ids:
            self._conn.execute(update(d).where(d.c.discrepancy_id.in_(ids)).values(
                state="resolved", resolution="auto", owner="system", note=note[:500],
                resolved_at=at))
        return ids

    def discrepancies(self, *, channel: str | None = None, on: date | None = None,
                      state: str | None = None, klass: str | None = None,
                      owner: str | None = None, after_id: int | None = None,
                      limit: int | None = 500) -> list[DiscrepancyRecord]:
        """The queue in id order, every filter in SQL; a page starts after ``after_id``."""
        d = recon_discrepancies
        q = select(d).order_by(d.c.discrepancy_id)
        for column, value in ((d.c.channel, channel), (d.c.business_date, on),
                              (d.c.state, state), (d.c.klass, klass), (d.c.owner, owner)):
            if value is not None:
                q = q.where(column == value)
        if after_id is not None:
            q = q.where(d.c.discrepancy_id > after_id)
        if limit is not None:
            q = q.limit(limit)
        return [DiscrepancyRecord(*r) for r in self._conn.execute(q)]

    def discrepancy(self, discrepancy_id: int, *, lock: bool = False) -> DiscrepancyRecord | None:
        q = select(recon_discrepancies).where(
            recon_discrepancies.c.discrepancy_id == discrepancy_id)
        if lock and self._pg:
            q = q.with_for_update()
        row = self._conn.execute(q).first()
        return DiscrepancyRecord(*row) if row else None

    def set_discrepancy(self, discrepancy_id: int, **values: Any) -> None:
        self._conn.execute(update(recon_discrepancies).where(
            recon_discrepancies.c.discrepancy_id == discrepancy_id).values(**values))

    def class_counts(self, channel: str, on: date) -> dict[tuple[str, str], tuple[int, int]]:
        """(class, state) -> (count, money in question) of a day's discrepancies: the
        fee difference for a fee mismatch; the amount cleared for a status or date mismatch
        (the amounts agree there); the amount difference for an amount mismatch; the one
        side's amount for ours only and theirs only."""
        d = recon_discrepancies
        diff = case(
            (d.c.klass == "fee_mismatch",
             func.abs(func.coalesce(d.c.their_fee_minor, 0)
                      - func.coalesce(d.c.our_fee_minor, 0))),
            (d.c.klass.in_(("status_mismatch", "date_mismatch")),
             func.abs(func.coalesce(d.c.their_amount_minor, d.c.our_amount_minor, 0))),
            else_=func.abs(func.coalesce(d.c.their_amount_minor, 0)
                           - func.coalesce(d.c.our_amount_minor, 0)))
        rows = self._conn.execute(select(d.c.klass, d.c.state, func.count(),
                                         func.coalesce(func.sum(diff), 0)).where(
            d.c.channel == channel, d.c.business_date == on).group_by(d.c.klass, d.c.state))
        return {(r[0], r[1]): (int(r[2]), int(r[3])) for r in rows}

    # -- days -----------------------------------------------------------------------------
    def day(self, channel: str, on: date, *, lock: bool = False) -> DayRow | None:
        q = select(recon_days).where(recon_days.c.channel == channel,
                                     recon_days.c.business_date == on)
        if lock and self._pg:
            q = q.with_for_update()
        row = self._conn.execute(q).first()
        return DayRow(*row) if row else None

    def days(self, channel: str | None = None) -> list[DayRow]:
        q = select(recon_days).order_by(recon_days.c.business_date, recon_days.c.channel)
        if channel:
            q = q.where(recon_days.c.channel == channel)
        return [DayRow(*r) for r in self._conn.execute(q)]

    def save_day(self, channel: str, on: date, values: Mapping[str, Any]) -> None:
        if self.day(channel, on) is None:
            self._conn.execute(insert(recon_days).values(channel=channel, business_date=on,
                                                         **values))
        else:
            self._conn.execute(update(recon_days).where(
                recon_days.c.channel == channel, recon_days.c.business_date == on)
                .values(**values))

    def line(self, line_id: int) -> dict[str, Any] | None:
        row = self._conn.execute(select(recon_lines).where(recon_lines.c.line_id == line_id)
                                 ).first()
        return dict(row._mapping) if row else None


def _numbered(frames: Iterable[pl.DataFrame], first: int,
              count: int) -> Iterator[pl.DataFrame]:
    """``frames`` with ``match_id`` numbered from ``first`` (``count`` ids in all)."""
    at = first
    for frame in frames:
        yield frame.with_columns(pl.int_range(at, at + frame.height, dtype=pl.Int64)
                                 .alias("match_id"))
        at += frame.height
    if at != first + count:
        raise ValueError(f"{at - first} match rows, {count} ids reserved")


def _utc_text(name: str, dtype: Any, postgres: bool) -> pl.Expr:
    """A datetime column as text in UTC, as ``UTCDateTime`` stores it: naive values are UTC
    already; PostgreSQL gets the offset spelled out (whatever the session's time zone)."""
    column = pl.col(name)
    if dtype.time_zone is not None:
        column = column.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return column.dt.strftime("%Y-%m-%d %H:%M:%S%.6f" + ("+00:00" if postgres else "")
                              ).alias(name)


def _file_cols() -> list[Any]:
    c = recon_files.c
    return [c.file_id, c.source, c.channel, c.file_name, c.file_date, c.line_count,
            c.total_minor, c.bad_count, c.imported_at]
