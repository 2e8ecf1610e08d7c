"""Engines for SQLite (embedded) and PostgreSQL (production), configured alike.

SQLite: WAL, foreign keys on, a busy timeout, and ``BEGIN IMMEDIATE`` for every transaction,
so that two writers queue on the lock instead of failing when a reader upgrades to a
writer. Within one process, the threads also queue on a lock of their own per database file
(taken before ``BEGIN IMMEDIATE``, given back after ``COMMIT``/``ROLLBACK``): SQLite's busy
handler makes a waiting writer sleep and poll (up to 100 ms a nap), which under a few
concurrent writers turns into seconds of tail latency while the database sits idle. Other
processes still meet on SQLite's lock and its busy timeout. PostgreSQL: psycopg 3, READ
COMMITTED, pool pre-ping.

A SQLite file is created 0600 (in a 0700 folder if the folder is new) before SQLite opens
it: SQLite gives the ``-wal`` and ``-shm`` files the permissions of the database file, so
they are 0600 too. A file an older version left readable by others is tightened, with its
WAL and SHM (autosettle/private_files.py).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from autosettle.private_files import create_private_file, private_dir, tighten_file

SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_POOL_SIZE = 32
"""Connections kept open: one per concurrent request up to 32 (a connection beyond the pool
is closed when given back, so a busier process would connect and disconnect all the time)."""
PG_POOL_OVERFLOW_MAX = 18
"""Beyond the pool, for bursts: 50 connections at most per engine, as before."""

_file_locks: dict[str, threading.Lock] = {}
_file_locks_guard = threading.Lock()


def _file_lock(database: str) -> threading.Lock:
    """The one in-process write lock of the SQLite file ``database``."""
    key = os.path.realpath(database)
    with _file_locks_guard:
        return _file_locks.setdefault(key, threading.Lock())


class _QueuedConnection(sqlite3.Connection):
    """A pysqlite connection that holds its file's in-process lock for a transaction.

    :meth:`hold` is called before ``BEGIN IMMEDIATE``; the lock is given back once the
    transaction has ended (after the COMMIT or ROLLBACK, so the next writer never meets the
    busy handler), or when the connection closes. A thread that cannot get the lock within
    the busy timeout goes on without it and meets SQLite's own lock, as before.
    """

    file_lock: threading.Lock | None = None
    holding: bool = False

    def hold(self) -> None:
        if self.file_lock is not None and not self.holding:
            self.holding = self.file_lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)

    def _give_back(self, closing: bool = False) -> None:
        if self.holding and (closing or not self.in_transaction):
            self.holding = False
            assert self.file_lock is not None
            self.file_lock.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._give_back()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._give_back()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._give_back(closing=True)


def normalize_url(url: str) -> str:
    """Use the psycopg 3 driver for plain ``postgresql://`` URLs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with the settings autosettle relies on."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database, **kwargs)
    kwargs.setdefault("pool_size", PG_POOL_SIZE)
    kwargs.setdefault("max_overflow", PG_POOL_OVERFLOW_MAX)
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_engine(url: str, database: str | None, **kwargs: Any) -> Engine:
    file_lock: threading.Lock | None = None
    if database and database != ":memory:" and not database.startswith("file:"):
        _private_database_file(Path(database))
        file_lock = _file_lock(database)
    engine = create_engine(url, connect_args={"check_same_thread": False,
                                              "factory": _QueuedConnection}, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, _QueuedConnection):
            dbapi_connection.file_lock = file_lock
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        dbapi_connection = connection.connection.dbapi_connection
        if isinstance(dbapi_connection, _QueuedConnection):
            dbapi_connection.hold()
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _private_database_file(path: Path) -> None:
    """Create the SQLite file ``path`` 0600 (its folder 0700 when new), or tighten it and
    the WAL and SHM files an older version left readable by others."""
    private_dir(path.parent, tighten=False)
    create_private_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        tighten_file(path.with_name(path.name + suffix))


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def display_url(url: str) -> str:
    """``url`` with its password hidden, for banners and messages."""
    return make_url(url).render_as_string(hide_password=True)
