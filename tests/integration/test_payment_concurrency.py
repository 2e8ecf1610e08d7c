"""Concurrent requests: replays charge once, and racing operations on one original never
both move money.

Threads start together on a barrier. On PostgreSQL they really run at once (row locks and
unique constraints decide); SQLite serialises writers, which must give the same answers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from typing import TypeVar

import pytest
from paytools import (
    DEBIT,
    MID,
    OPENING_BALANCE_MINOR,
    TID,
    assert_ledger_balanced,
    entry_count,
    get_record,
    on_original,
    preauth,
    record_count,
    sale,
    seed_shop,
    txn_id,
    unsettled,
)

from autosettle.domain.response_codes import ResponseCode as RC
from autosettle.domain.transactions import TxnType
from autosettle.services import reversals
from autosettle.services.context import ServiceContext
from autosettle.services.payments import OriginalRef, PaymentResult
from autosettle.simulators.issuer import FaultKind, IssuerSimulator
from autosettle.store.payments import TransactionRepository

T = TypeVar("T")
ISSUER_LATENCY_MS = 300
"""Long enough that the first request is still in flight when its twins arrive."""


def _together(calls: list[Callable[[], T]]) -> list[T]:
    """Run every call in its own thread, released at once by a barrier; re-raise errors."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def _replay_storm(ctx: ServiceContext, sim: IssuerSimulator, threads: int) -> None:
    seed_shop(ctx, sim)  # no batch yet: the twins also race to open the terminal's batch
    sim.inject(FaultKind.LATENCY, latency_ms=ISSUER_LATENCY_MS)
    results = _together([lambda: sale(ctx, 1_234, key="order-42")] * threads)

    assert {r.response_code for r in results} == {RC.APPROVED}, \
        {(r.response_code, r.message) for r in results}
    assert len({txn_id(r) for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert record_count(ctx) == 1
    assert sim.card(DEBIT).balance_minor == OPENING_BALANCE_MINOR - 1_234
    assert sim.auth_state(txn_id(results[0])) == "applied"
    assert entry_count(ctx) == 1
    assert unsettled(ctx) == 1_234
    assert_ledger_balanced(ctx)


def test_100_concurrent_replays_make_one_transaction_and_one_charge(
        ctx: ServiceContext, sim: IssuerSimulator) -> None:
    if not ctx.db.is_postgres:
        pytest.skip("100 truly concurrent writers is a PostgreSQL property; SQLite serialises "
                    "writers (the 10-thread test covers it)")
    _replay_storm(ctx, sim, 100)


def test_10_concurrent_replays_make_one_transaction_and_one_charge(
        ctx: ServiceContext, sim: IssuerSimulator) -> None:
    _replay_storm(ctx, sim, 10)


def _one_approved(results: list[PaymentResult]) -> PaymentResult:
    approved = [r for r in results if r.approved]
    assert len(approved) == 1, [(r.response_code, r.message) for r in results]
    return approved[0]


@pytest.mark.parametrize("latency_ms", [0, ISSUER_LATENCY_MS])
def test_two_partial_refunds_over_the_sale_one_approved(
        ctx: ServiceContext, sim: IssuerSimulator, latency_ms: int) -> None:
    seed_shop(ctx, sim)
    original = txn_id(sale(ctx, 10_000))
    if latency_ms:
        sim.inject(FaultKind.LATENCY, count=2, latency_ms=latency_ms)
    results = _together([lambda: on_original(ctx, TxnType.REFUND, original, 6_000)] * 2)

    _one_approved(results)
    refused = [r for r in results if not r.approved]
    assert refused[0].response_code is RC.EXCEEDS_AMOUNT_LIMIT
    assert get_record(ctx, original).refunded_minor == 6_000
    assert sim.card(DEBIT).balance_minor == OPENING_BALANCE_MINOR - 10_000 + 6_000
    assert unsettled(ctx) == 4_000
    assert_ledger_balanced(ctx)


@pytest.mark.parametrize(("first", "second"), [
    (TxnType.VOID, TxnType.VOID),
    (TxnType.VOID, TxnType.REFUND),
])
def test_racing_void_and_refund_move_money_once(
        ctx: ServiceContext, sim: IssuerSimulator, first: TxnType, second: TxnType) -> None:
    seed_shop(ctx, sim)
    original = txn_id(sale(ctx, 10_000))
    sim.inject(FaultKind.LATENCY, count=2, latency_ms=ISSUER_LATENCY_MS)
    amount = {TxnType.VOID: None, TxnType.REFUND: 10_000}
    results = _together([partial(on_original, ctx, kind, original, amount[kind])
                         for kind in (first, second)])

    _one_approved(results)
    # Checked at once, not after a reversal run: the issuer never paid back twice.
    assert sim.card(DEBIT).balance_minor == OPENING_BALANCE_MINOR
    assert unsettled(ctx) == 0
    with ctx.db.unit_of_work() as uow:
        assert uow.reversals.pending_count() == 0
    assert_ledger_balanced(ctx)


@pytest.mark.parametrize(("first", "second"), [
    (TxnType.COMPLETION, TxnType.PREAUTH_VOID),
    (TxnType.COMPLETION, TxnType.COMPLETION),
])
def test_racing_completion_and_cancel_move_money_once(
        ctx: ServiceContext, sim: IssuerSimulator, first: TxnType, second: TxnType) -> None:
    seed_shop(ctx, sim)
    hold = txn_id(preauth(ctx, 10_000))
    sim.inject(FaultKind.LATENCY, count=2, latency_ms=ISSUER_LATENCY_MS)
    amount = {TxnType.COMPLETION: 9_000, TxnType.PREAUTH_VOID: None}
    results = _together([partial(on_original, ctx, kind, hold, amount[kind])
                         for kind in (first, second)])

    winner = _one_approved(results)
    state = sim.card(DEBIT)
    assert state.held_minor == 0
    captured = 9_000 if winner.record and winner.record.txn_type == "completion" else 0
    assert state.balance_minor == OPENING_BALANCE_MINOR - captured
    assert unsettled(ctx) == captured
    with ctx.db.unit_of_work() as uow:
        assert uow.reversals.pending_count() == 0
    assert_ledger_balanced(ctx)


def test_recovery_leaves_a_sale_answered_meanwhile_alone(
        ctx: ServiceContext, sim: IssuerSimulator, clock: object,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """recover_stuck lists a pending sale; the sale's own process then gets its approval
    before recovery locks it. Recovery must not reverse an approved sale at the issuer."""
    seed_shop(ctx, sim)
    answered = sale(ctx, 2_500)
    assert answered.approved and answered.record is not None
    as_listed = replace(answered.record, status="pending", response_code=None, auth_code=None,
                        answered_at=None)
    monkeypatch.setattr(TransactionRepository, "stuck_pending",
                        lambda self, older_than, limit: [as_listed])
    clock.advance(minutes=5)  # type: ignore[attr-defined]

    reversals.recover_stuck(ctx)
    reversals.process_reversals(ctx)

    assert get_record(ctx, txn_id(answered)).status == "approved"
    assert sim.auth_state(txn_id(answered)) == "applied"
    assert sim.card(DEBIT).balance_minor == OPENING_BALANCE_MINOR - 2_500
    assert unsettled(ctx) == 2_500
    with ctx.db.unit_of_work() as uow:
        assert uow.reversals.get(MID, txn_id(answered)) is None
    assert_ledger_balanced(ctx)


def test_late_approval_after_the_original_was_reversed_is_undone_at_once(
        ctx: ServiceContext, sim: IssuerSimulator) -> None:
    """A void is approved at the issuer while the terminal reverses its sale: the void's
    approval cannot be applied, and the issuer is told to undo it before the void is
    answered, not at the next run of the reversal queue."""
    seed_shop(ctx, sim)
    original = txn_id(sale(ctx, 3_000))
    sim.inject(FaultKind.LATE_ANSWER, latency_ms=ISSUER_LATENCY_MS)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending_void = pool.submit(on_original, ctx, TxnType.VOID, original)
        void_id = _wait_until_applied_at_issuer(ctx, sim, original)
        assert reversals.reverse(ctx, MID, TID, OriginalRef(txn_id=original)).approved
        void = pending_void.result()

    assert not void.approved
    assert get_record(ctx, void_id).status == "declined"
    assert get_record(ctx, original).status == "reversed"
    assert sim.auth_state(void_id) == "reversed"
    assert sim.card(DEBIT).balance_minor == OPENING_BALANCE_MINOR
    assert unsettled(ctx) == 0
    with ctx.db.unit_of_work() as uow:
        assert uow.reversals.pending_count() == 0
    assert_ledger_balanced(ctx)


def _wait_until_applied_at_issuer(ctx: ServiceContext, sim: IssuerSimulator,
                                  original: str) -> str:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with ctx.db.unit_of_work() as uow:
            children = uow.transactions.children(MID, original)
        if children and sim.auth_state(children[0].txn_id) == "applied":
            return children[0].txn_id
        time.sleep(0.01)
    raise AssertionError("the void never reached the issuer")
