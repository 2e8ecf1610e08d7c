"""The unit of work: one database transaction, with the repositories bound to it.

Usage::

    with db.unit_of_work() as uow:
        uow.merchants.add(...)
        uow.ledger.post(entry, at)
    # committed here; any exception inside the block rolls everything back
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from autosettle.domain.errors import InvariantViolation
from autosettle.store.auth import ApiKeyRepository, AuditRepository, IdempotencyRepository
from autosettle.store.engine import make_engine
from autosettle.store.ledger import LedgerRepository
from autosettle.store.merchants import (
    MerchantRepository,
    SettlementAccountRepository,
    TerminalRepository,
)
from autosettle.store.outage import is_outage, outage_as_unavailable, unavailable
from autosettle.store.payments import (
    BatchRepository,
    PaymentRulesRepository,
    ReversalQueue,
    TransactionRepository,
)
from autosettle.store.printing import PrintingRepository
from autosettle.store.recon import ReconRepository
from autosettle.store.reports import ReportRepository
from autosettle.store.risk import RiskRepository
from autosettle.store.settlement import (
    AlertRepository,
    ConfigRepository,
    JobLeaseRepository,
    SettlementRepository,
)
from autosettle.store.settlement_claims import ClaimRepository
from autosettle.store.terminal_keys import TerminalHostRepository
from autosettle.store.users import ConsoleReads, ConsoleSessionRepository, UserRepository

_active = threading.local()


class UnitOfWork:
    """Repositories sharing one connection and one transaction.

    Units of work do not nest within a thread: on SQLite the inner one would wait forever
    for the write lock the outer one holds, and on PostgreSQL it would commit separately.
    Nesting is refused at once instead.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None

    def __enter__(self) -> UnitOfWork:
        if getattr(_active, "depth", 0):
            raise InvariantViolation("a unit of work is already active in this thread")
        with outage_as_unavailable():
            conn = self._engine.connect()
            conn.begin()
        self._conn = conn
        _active.depth = 1
        self.merchants = MerchantRepository(conn)
        self.settlement_accounts = SettlementAccountRepository(conn)
        self.terminals = TerminalRepository(conn)
        self.ledger = LedgerRepository(conn)
        self.api_keys = ApiKeyRepository(conn)
        self.idempotency = IdempotencyRepository(conn)
        self.audit = AuditRepository(conn)
        self.transactions = TransactionRepository(conn)
        self.batches = BatchRepository(conn)
        self.reversals = ReversalQueue(conn)
        self.payment_rules = PaymentRulesRepository(conn)
        self.settlement = SettlementRepository(conn)
        self.claims = ClaimRepository(conn)
        self.alerts = AlertRepository(conn)
        self.config = ConfigRepository(conn)
        self.leases = JobLeaseRepository(conn)
        self.terminal_host = TerminalHostRepository(conn)
        self.users = UserRepository(conn)
        self.console_sessions = ConsoleSessionRepository(conn)
        self.console_reads = ConsoleReads(conn)
        self.reports = ReportRepository(conn)
        self.printing = PrintingRepository(conn)
        self.risk = RiskRepository(conn)
        self.recon = ReconRepository(conn)
        return self

    @property
    def connection(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("unit of work is not active")
        return self._conn

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        conn = self.connection
        try:
            if exc_type is None:
                conn.commit()
            else:
                conn.rollback()
        except DBAPIError as failed:
            if is_outage(failed):
                raise unavailable(failed) from (exc or failed)
            raise
        finally:
            conn.close()
            self._conn = None
            _active.depth = 0
        if isinstance(exc, DBAPIError) and is_outage(exc):
            raise unavailable(exc) from exc


class Database:
    """An engine plus the factory for units of work."""

    def __init__(self, url: str, echo: bool = False, pool_size: int | None = None,
                 pool_overflow_max: int | None = None) -> None:
        """``pool_size``/``pool_overflow_max``: PostgreSQL connections kept / opened beyond
        them at most (default ``store.engine.PG_POOL_SIZE``/``PG_POOL_OVERFLOW_MAX``)."""
        self.url = url
        options: dict[str, int] = {}
        if pool_size is not None:
            options["pool_size"] = pool_size
        if pool_overflow_max is not None:
            options["max_overflow"] = pool_overflow_max
        self.engine = make_engine(url, echo=echo, **options)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.engine)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def dispose(self) -> None:
        self.engine.dispose()
