"""Many-row INSERTs at the cost of one statement, for the settlement run's writes.

A run writes a few rows per merchant into five tables; with thousands of merchants per
transaction, how those rows travel matters more than the SQL:

* **PostgreSQL**: one ``INSERT .. SELECT * FROM unnest(array, array, ..)`` per table, one
  array parameter per column, whatever the number of rows. (psycopg's pipelined
  ``executemany`` sends one INSERT per row; a multi-row ``VALUES`` list with thousands of
  placeholders costs psycopg more to parse than the server to run.)
* **SQLite**: the DB-API's ``executemany`` on one prepared statement, in process.

Values go through each column type's own bind processing (e.g. ``UTCDateTime``), exactly
as SQLAlchemy would send them. ``ON CONFLICT`` and ``RETURNING`` are supported where the
callers need them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import sqlite


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], *,
                conflict: Sequence[str] = (), update: Sequence[str] = (),
                returning: Sequence[str] = ()) -> list[Any]:
    """Insert ``rows`` (all with the same keys) into ``table``.

    ``conflict``: the unique columns of ``ON CONFLICT``; then ``update`` names the columns
    to overwrite from the new row (``DO UPDATE``), or none for ``DO NOTHING``.
    ``returning``: columns to return, one row per inserted row (order not guaranteed).
    """
    if not rows:
        return []
    names = list(rows[0])
    columns = [table.c[n] for n in names]
    dialect = conn.dialect
    processors = [c.type._cached_bind_processor(dialect) for c in columns]
    tail = _conflict_clause(conflict, update)
    if returning:
        tail += " RETURNING " + ", ".join(returning)
    listed = ", ".join(names)
    if dialect.name == "postgresql":
        arrays = [[p(r[n]) if p else r[n] for r in rows] for n, p in zip(names, processors,
                                                                          strict=True)]
        casts = ", ".join(f"CAST(%s AS {c.type.compile(dialect=dialect)}[])" for c in columns)
        result = conn.exec_driver_sql(
            f"INSERT INTO {table.name} ({listed}) SELECT * FROM unnest({casts}){tail}",
            tuple(arrays))
        return list(result) if returning else []
    if returning:  # sqlite3's executemany returns nothing: SQLAlchemy batches it instead
        statement: Any = sqlite.insert(table)
        if conflict and update:
            statement = statement.on_conflict_do_update(
                index_elements=list(conflict),
                set_={n: statement.excluded[n] for n in update})
        elif conflict:
            statement = statement.on_conflict_do_nothing(index_elements=list(conflict))
        statement = statement.returning(*[table.c[n] for n in returning])
        return list(conn.execute(statement, [dict(r) for r in rows]))
    values = [tuple(p(r[n]) if p else r[n] for n, p in zip(names, processors, strict=True))
              for r in rows]
    conn.exec_driver_sql(
        f"INSERT INTO {table.name} ({listed}) VALUES ({', '.join('?' * len(names))}){tail}",
        values)
    return []


def _conflict_clause(conflict: Sequence[str], update: Sequence[str]) -> str:
    if not conflict:
        return ""
    target = f" ON CONFLICT ({', '.join(conflict)})"
    if not update:
        return target + " DO NOTHING"
    return target + " DO UPDATE SET " + ", ".join(f"{n} = excluded.{n}" for n in update)
