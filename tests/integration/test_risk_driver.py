"""The risk counters' statements run on the driver's own cursor (``store.risk._at_driver``:
SQLAlchemy's execution objects cost every sale about 65 µs). They must still fail the way
every other statement does: a clash of the payment's record is ``AlreadyExists`` and
changes nothing; a lost PostgreSQL connection is ``UnavailableError``, rolls the work back
and leaves the pool; a bad statement is SQLAlchemy's own exception.

No mock: real databases; the connection is killed with ``pg_terminate_backend``.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date

import pytest
from paytools import DEBIT, MID, TID, get_record, record_count, sale, seed_shop, txn_id
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from autosettle.domain import risk as rk
from autosettle.domain import risk_shards as rs
from autosettle.domain.errors import AlreadyExists, UnavailableError
from autosettle.domain.payment_records import TransactionRecord
from autosettle.domain.response_codes import ResponseCode as RC
from autosettle.services.context import ServiceContext
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.store.risk import _at_driver
from autosettle.store.uow import UnitOfWork


def _reserve(uow: UnitOfWork, day: date, keys: list[rk.CounterKey], amount: int,
             record: TransactionRecord | None = None) -> None:
    """Reserve ``amount`` in ``keys`` without limits, as a sale does (sharded or not)."""
    sharded = uow.risk.merchant_sharded
    limits = [rk.CounterLimit(k, None, None) for k in keys
              if not sharded or k.subject is not rk.Subject.MERCHANT]
    mine = [k.pair for k in keys if k.subject is rk.Subject.MERCHANT]
    take = rs.Take(MID, rs.shard_of(TID), day, rs.Limits(), mine[0], mine[1]) \
        if sharded else None
    uow.risk.reserve(limits, take, amount, record=record)


def test_a_clashing_record_is_already_exists_and_changes_nothing(
        ctx: ServiceContext, sim: IssuerSimulator) -> None:
    seed_shop(ctx, sim)
    first = get_record(ctx, txn_id(sale(ctx, 1_000)))
    keys = rk.counter_keys(MID, TID, first.card_token, first.business_date)
    with ctx.db.unit_of_work() as uow:
        before = uow.risk.usage(keys)
    assert before[keys[0].pair] == (1_000, 1)  # the card's day
    clash = replace(first, txn_id=uuid.uuid4().hex)  # the same batch and trace number
    with pytest.raises(AlreadyExists), ctx.db.unit_of_work() as uow:
        _reserve(uow, first.business_date, keys, 500, record=clash)
    with ctx.db.unit_of_work() as uow:
        assert uow.risk.usage(keys) == before
    assert record_count(ctx) == 1


def test_a_lost_connection_is_unavailable_and_leaves_the_pool(
        ctx: ServiceContext, sim: IssuerSimulator) -> None:
    if not ctx.db.is_postgres:
        pytest.skip("a PostgreSQL connection killed by the server")
    seed_shop(ctx, sim)
    assert sale(ctx, 1_000).response_code is RC.APPROVED
    day = ctx.now().date()
    keys = rk.counter_keys(MID, TID, "ab" * 32, day)
    killed: list[int] = []
    with pytest.raises(UnavailableError), ctx.db.unit_of_work() as uow:
        pid = int(uow.connection.execute(text("SELECT pg_backend_pid()")).scalar_one())
        with ctx.db.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        killed.append(pid)
        _reserve(uow, day, keys, 700)
    with ctx.db.unit_of_work() as uow:  # a live connection, not the killed one
        assert int(uow.connection.execute(text("SELECT pg_backend_pid()")).scalar_one()) \
            not in killed
        assert uow.risk.usage(keys[:2]) == {}  # the card's rows: nothing was taken
    assert sale(ctx, 2_000, pan=DEBIT).response_code is RC.APPROVED


def test_a_failed_statement_is_sqlalchemys_own_error(ctx: ServiceContext) -> None:
    key = "%(k)s" if ctx.db.is_postgres else ":k"
    with pytest.raises(IntegrityError), ctx.db.unit_of_work() as uow:
        _at_driver(uow.connection, "INSERT INTO risk_counters (key, bucket, amount_minor, "
                   f"txn_count) VALUES ({key}, 'D2026-12-04', 1, 1)", {"k": None})
    with ctx.db.unit_of_work() as uow:  # the connection went back to the pool usable
        assert _at_driver(uow.connection, "SELECT 1", {}) == [(1,)]
