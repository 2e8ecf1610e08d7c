"""The trace counter of a terminal batch (issue 9, defect 1), statement by statement.

``next_stan`` only grows; the trace it hands out is ``(next_stan - 1) % 999999 + 1``. A
trace the terminal chose itself moves it just past that trace when the trace is at or
ahead of it in the current round, and never backwards.
"""

from __future__ import annotations

import pytest
from paytools import MID, TID, sale, seed_shop
from sqlalchemy import update

from autosettle.services.context import ServiceContext
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.store.payments import STAN_MODULUS
from autosettle.store.tables import terminal_batches

BATCH = "000001"


def _counter(ctx: ServiceContext) -> int:
    with ctx.db.unit_of_work() as uow:
        batch = uow.batches.get(MID, TID, BATCH)
    assert batch is not None
    return batch.next_stan


def _set(ctx: ServiceContext, value: int) -> None:
    with ctx.db.unit_of_work() as uow:
        uow.connection.execute(update(terminal_batches).values(next_stan=value))


@pytest.mark.parametrize(("counter", "stan", "after"), [
    (1, 1, 2), (1, 5, 6), (6, 5, 6), (6, 6, 7), (6, 999_999, 1_000_000),
    (STAN_MODULUS + 5, 3, STAN_MODULUS + 5),  # round 2 at trace 5: trace 3 is behind
    (STAN_MODULUS + 5, 9, STAN_MODULUS + 10),  # ... and 9 is ahead
])
def test_a_terminal_trace_moves_the_counter_past_it(ctx: ServiceContext, sim: IssuerSimulator,
                                                    counter: int, stan: int,
                                                    after: int) -> None:
    seed_shop(ctx, sim)
    with ctx.db.unit_of_work() as uow:
        uow.batches.add(MID, TID, BATCH, ctx.now())
    _set(ctx, counter)
    with ctx.db.unit_of_work() as uow:
        assert uow.batches.advance_stan(MID, TID, BATCH, stan)
    assert _counter(ctx) == after
    with ctx.db.unit_of_work() as uow:
        assert uow.batches.advance_open_stan(MID, TID, 0) == BATCH  # behind it: no change
        assert not uow.batches.advance_stan(MID, TID, "000002", stan)  # no such batch
        uow.batches.close(MID, TID, BATCH, ctx.now())
    with ctx.db.unit_of_work() as uow:
        assert not uow.batches.advance_stan(MID, TID, BATCH, stan + 1)  # closed: untouched
        assert uow.batches.advance_open_stan(MID, TID, stan + 1) is None
    assert _counter(ctx) == after


def test_resync_moves_a_lagging_counter_past_every_used_trace(
        ctx: ServiceContext, sim: IssuerSimulator) -> None:
    seed_shop(ctx, sim)
    for _ in range(3):
        assert sale(ctx, 100).approved
    assert _counter(ctx) == 4
    _set(ctx, 2)  # lagging, as data written before the counter was kept
    with ctx.db.unit_of_work() as uow:
        uow.batches.resync_stans(MID, TID)
    assert _counter(ctx) == 4
    _set(ctx, 9)  # ahead: left alone
    with ctx.db.unit_of_work() as uow:
        uow.batches.resync_stans(MID, TID)
    assert _counter(ctx) == 9
    result = sale(ctx, 100)
    assert result.record is not None and result.record.stan == "000009"
