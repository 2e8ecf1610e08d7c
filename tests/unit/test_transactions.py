"""The transaction state machine: every legal move happens, every illegal one is refused."""

from __future__ import annotations

import doctest
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from autosettle.domain import transactions
from autosettle.domain.errors import InvariantViolation, ValidationError
from autosettle.domain.money import Currency, Money, apply_rate, currency
from autosettle.domain.response_codes import RESPONSE_TABLE, ResponseCode
from autosettle.domain.transactions import (
    CHAIN_DEPTH,
    COMPLETION_RATIO_MAX_DEFAULT,
    LEGAL_MOVES,
    ORIGINAL_TYPES,
    REFUSAL_CODES,
    REVERSIBLE_TYPES,
    STATUSES,
    TERMINAL_STATUSES,
    AlreadyReversed,
    Event,
    EventKind,
    NoEffect,
    Permission,
    RefundState,
    Refusal,
    RefusalReason,
    Transaction,
    Transition,
    TxnStatus,
    TxnType,
    approve,
    can_cancel_preauth,
    can_complete,
    can_refund,
    can_void,
    can_void_completion,
    completion_limit,
    decline,
    expire,
    new_transaction,
    preauth_expires_on,
    reverse,
)

DAY = date(2024, 5, 6)
BATCH = "000001"
S, A, D = TxnStatus.PENDING, TxnStatus.APPROVED, TxnStatus.DECLINED
V, R = TxnStatus.VOIDED, TxnStatus.REVERSED
CO, CA, EX = TxnStatus.COMPLETED, TxnStatus.CANCELLED, TxnStatus.EXPIRED


# -- helpers ----------------------------------------------------------------------------------

def ok(result: Transition | Refusal | AlreadyReversed) -> Transition:
    """The transition, failing the test on anything else."""
    assert isinstance(result, Transition), result
    return result


def allowed(decision: Permission | Refusal) -> Permission:
    assert isinstance(decision, Permission), decision
    return decision


def refused(result: object, reason: RefusalReason) -> Refusal:
    assert isinstance(result, Refusal), result
    assert result.reason is reason, result
    return result


def fen(amount: int) -> Money:
    return Money(amount)


def approved(txn_type: TxnType, amount: int = 10_000, txn_id: str | None = None) -> Transaction:
    """An approved record without an original (sale, pre-auth, balance inquiry)."""
    txn = new_transaction(txn_id or txn_type.value, txn_type, fen(amount), DAY, BATCH)
    return ok(approve(txn)).txn


def child(permission: Permission, txn_id: str) -> Transaction:
    return new_transaction(txn_id, permission.type, permission.amount, DAY, BATCH,
                           permission.original_id)


def completed_preauth(auth: int = 10_000, capture: int = 11_000
                      ) -> tuple[Transaction, Transaction]:
    """(completion, pre-auth), both after an approved completion of ``capture``."""
    preauth = approved(TxnType.PREAUTH, auth)
    completion = child(allowed(can_complete(preauth, fen(capture), DAY)), "c1")
    step = ok(approve(completion, (preauth,)))
    return step.txn, step.chain[0]


def with_status(txn_type: TxnType, status: TxnStatus) -> Transaction:
    """A record of any type in any status it can have (built directly, for matrix tests)."""
    original_id = "orig" if ORIGINAL_TYPES[txn_type] else None
    expires_on = preauth_expires_on(DAY) if txn_type is TxnType.PREAUTH else None
    return Transaction("t", txn_type, status, fen(10_000), fen(0), DAY, BATCH, original_id,
                       expires_on)


ALL_STATES = [(t, s) for t in TxnType for s in sorted(STATUSES[t])]


# -- tables -----------------------------------------------------------------------------------

def test_every_refusal_reason_maps_to_a_declining_code_in_the_table() -> None:
    assert set(REFUSAL_CODES) == set(RefusalReason)
    for reason, code in REFUSAL_CODES.items():
        assert code in RESPONSE_TABLE, reason
        assert not RESPONSE_TABLE[code].approved, reason
        assert Refusal(reason).code is code


def test_chosen_refusal_codes() -> None:
    expected = {
        RefusalReason.ORIGINAL_NOT_FOUND: "25",
        RefusalReason.AMOUNT_MISMATCH: "64",
        RefusalReason.WRONG_TYPE: "12",
        RefusalReason.ALREADY_VOIDED: "12",
        RefusalReason.REFUND_EXCEEDS_REMAINING: "61",
        RefusalReason.AMOUNT_OVER_COMPLETION_LIMIT: "61",
        RefusalReason.INVALID_AMOUNT: "13",
        RefusalReason.BATCH_CLOSED: "22",
        RefusalReason.PREAUTH_EXPIRED: "22",
        RefusalReason.LATE_ANSWER: "68",
    }
    assert {reason: REFUSAL_CODES[reason].value for reason in expected} == expected


def test_transition_tables_cover_every_type() -> None:
    for table in (LEGAL_MOVES, STATUSES, ORIGINAL_TYPES, CHAIN_DEPTH):
        assert set(table) == set(TxnType)
    assert set(TxnType) - REVERSIBLE_TYPES == {TxnType.BALANCE_INQUIRY}


def test_no_move_leaves_a_terminal_status_or_enters_pending() -> None:
    for moves in LEGAL_MOVES.values():
        for before, after in moves:
            assert before not in TERMINAL_STATUSES
            assert after is not TxnStatus.PENDING
            assert before is not after


def test_private_status_tables_are_total() -> None:
    assert set(transactions._STATUS_REASON) == set(TxnStatus)
    assert set(transactions._REVERSAL) == set(TxnStatus)
    assert set(transactions._SHIFTS) == set(TxnType)


def test_docstring_examples_run() -> None:
    assert doctest.testmod(transactions).failed == 0


# -- records ----------------------------------------------------------------------------------

def test_new_transaction_is_pending_and_preauth_gets_its_expiry() -> None:
    sale = new_transaction("s", TxnType.SALE, fen(100), DAY, BATCH)
    assert (sale.status, sale.refunded, sale.expires_on) == (S, fen(0), None)
    preauth = new_transaction("p", TxnType.PREAUTH, fen(100), DAY, BATCH)
    assert preauth.expires_on == DAY + timedelta(days=30)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Transaction("x", TxnType.VOID, CO, fen(1), fen(0), DAY, BATCH, "o"),
        lambda: Transaction("x", TxnType.SALE, A, fen(1), fen(2), DAY, BATCH),
        lambda: Transaction("x", TxnType.SALE, A, fen(1), fen(-1), DAY, BATCH),
        lambda: Transaction("x", TxnType.SALE, V, fen(2), fen(1), DAY, BATCH),
        lambda: Transaction("x", TxnType.PREAUTH, A, fen(2), fen(1), DAY, BATCH, None, DAY),
        lambda: Transaction("x", TxnType.VOID, A, fen(1), fen(0), DAY, BATCH),
        lambda: Transaction("x", TxnType.SALE, A, fen(1), fen(0), DAY, BATCH, "o"),
        lambda: Transaction("x", TxnType.PREAUTH, A, fen(1), fen(0), DAY, BATCH),
        lambda: Transaction("x", TxnType.SALE, A, fen(1), fen(0), DAY, BATCH, None, DAY),
        lambda: Transaction("x", TxnType.SALE, A, fen(1), Money(0, currency("USD")), DAY,
                            BATCH),
    ],
)
def test_inconsistent_records_cannot_be_built(build: Callable[[], Transaction]) -> None:
    with pytest.raises(InvariantViolation):
        build()


def test_chain_must_be_the_records_ancestors() -> None:
    sale = approved(TxnType.SALE)
    void = child(allowed(can_void(sale, True)), "v")
    with pytest.raises(InvariantViolation):
        approve(void)
    with pytest.raises(InvariantViolation):
        approve(void, (replace(sale, id="other"),))
    completion, _preauth = completed_preauth()
    cvoid = child(allowed(can_void_completion(completion, True)), "cv")
    with pytest.raises(InvariantViolation):
        approve(cvoid, (completion,))


# -- answers from the channel -----------------------------------------------------------------

@pytest.mark.parametrize(
    ("txn_type", "kind"),
    [(TxnType.SALE, EventKind.CAPTURED), (TxnType.PREAUTH, EventKind.HOLD_PLACED)],
)
def test_approval_captures_or_holds(txn_type: TxnType, kind: EventKind) -> None:
    txn = new_transaction("t", txn_type, fen(500), DAY, BATCH)
    step = ok(approve(txn))
    assert step.txn.status is A
    assert step.chain == ()
    assert step.events == (Event(kind, "t", "t", fen(500)),)


def test_balance_inquiry_moves_no_money_and_cannot_be_reversed() -> None:
    inquiry = new_transaction("b", TxnType.BALANCE_INQUIRY, fen(0), DAY, BATCH)
    assert ok(approve(inquiry)).events == ()
    refused(reverse(inquiry), RefusalReason.NOT_REVERSIBLE)
    assert refused(reverse(ok(approve(inquiry)).txn), RefusalReason.NOT_REVERSIBLE).code == "12"


def test_decline_moves_nothing() -> None:
    step = ok(decline(new_transaction("s", TxnType.SALE, fen(500), DAY, BATCH)))
    assert (step.txn.status, step.events) == (D, ())


@pytest.mark.parametrize(("txn_type", "status"), [p for p in ALL_STATES if p[1] is not S])
def test_an_answer_for_a_resolved_record_is_late(txn_type: TxnType, status: TxnStatus) -> None:
    txn = with_status(txn_type, status)
    chain = tuple(_ancestors(txn_type))
    assert refused(approve(txn, chain), RefusalReason.LATE_ANSWER).code == "68"
    refused(decline(txn), RefusalReason.LATE_ANSWER)


def _ancestors(txn_type: TxnType) -> list[Transaction]:
    """A chain of the right shape for ``with_status`` records (ids "orig", "root")."""
    if CHAIN_DEPTH[txn_type] == 0:
        return []
    first = min(ORIGINAL_TYPES[txn_type])
    parent = with_status(first, A)
    if CHAIN_DEPTH[txn_type] == 1:
        return [replace(parent, id="orig")]
    return [replace(parent, id="orig", original_id="root"),
            replace(with_status(TxnType.PREAUTH, CO), id="root")]


def test_late_approval_after_reversal_moves_no_money() -> None:
    sale = new_transaction("s", TxnType.SALE, fen(500), DAY, BATCH)
    reversed_sale = ok(reverse(sale))
    assert (reversed_sale.txn.status, reversed_sale.events) == (R, ())
    refused(approve(reversed_sale.txn), RefusalReason.LATE_ANSWER)


# -- void -------------------------------------------------------------------------------------

def test_void_in_open_batch_returns_the_capture() -> None:
    sale = approved(TxnType.SALE, 1234)
    permission = allowed(can_void(sale, batch_open=True, amount=fen(1234)))
    assert permission == Permission(TxnType.VOID, fen(1234), sale.id)
    void = child(permission, "v")
    step = ok(approve(void, (sale,)))
    assert (step.txn.status, step.chain[0].status) == (A, V)
    assert step.events == (Event(EventKind.VOIDED, "v", sale.id, fen(1234)),)


def test_void_refusals() -> None:
    sale = approved(TxnType.SALE, 1234)
    assert refused(can_void(sale, batch_open=False), RefusalReason.BATCH_CLOSED).code == "22"
    assert refused(can_void(sale, True, fen(1235)), RefusalReason.AMOUNT_MISMATCH).code == "64"
    assert refused(can_void(None, True), RefusalReason.ORIGINAL_NOT_FOUND).code == "25"
    voided = ok(approve(child(allowed(can_void(sale, True)), "v"), (sale,))).chain[0]
    assert refused(can_void(voided, True), RefusalReason.ALREADY_VOIDED).code == "12"
    refund = child(allowed(can_refund(sale, fen(1), fen(0))), "r")
    partly = ok(approve(refund, (sale,))).chain[0]
    refused(can_void(partly, True), RefusalReason.ALREADY_REFUNDED)
    refused(can_void(ok(approve(refund, (sale,))).txn, True), RefusalReason.WRONG_TYPE)
    refused(can_void(approved(TxnType.PREAUTH), True), RefusalReason.WRONG_TYPE)


def test_void_of_completion_restores_the_preauth_hold() -> None:
    completion, preauth = completed_preauth(10_000, 11_000)
    assert preauth.status is CO
    refused(can_void(completion, True), RefusalReason.WRONG_TYPE)
    refused(can_void_completion(completion, False), RefusalReason.BATCH_CLOSED)
    refused(can_void_completion(completion, True, fen(10_000)), RefusalReason.AMOUNT_MISMATCH)
    cvoid = child(allowed(can_void_completion(completion, True, fen(11_000))), "cv")
    step = ok(approve(cvoid, (completion, preauth)))
    assert [r.status for r in (step.txn, *step.chain)] == [A, V, A]
    assert step.events == (
        Event(EventKind.VOIDED, "cv", completion.id, fen(11_000)),
        Event(EventKind.HOLD_PLACED, "cv", preauth.id, fen(10_000)),
    )
    back = ok(reverse(step.txn, step.chain))
    assert [r.status for r in (back.txn, *back.chain)] == [R, A, CO]
    assert back.events == (Event(EventKind.REVERSED, "cv", "cv", fen(11_000)),)


def test_void_approved_after_a_concurrent_refund_is_refused() -> None:
    sale = approved(TxnType.SALE)
    void = child(allowed(can_void(sale, True)), "v")
    refund = child(allowed(can_refund(sale, fen(1), fen(0))), "r")
    refunded = ok(approve(refund, (sale,))).chain[0]
    refused(approve(void, (refunded,)), RefusalReason.ALREADY_REFUNDED)


def test_second_void_approved_concurrently_is_refused() -> None:
    sale = approved(TxnType.SALE)
    first = child(allowed(can_void(sale, True)), "v1")
    second = child(allowed(can_void(sale, True)), "v2")
    voided = ok(approve(first, (sale,))).chain[0]
    refused(approve(second, (voided,)), RefusalReason.ALREADY_VOIDED)


# -- refund -----------------------------------------------------------------------------------

def test_partial_refunds_up_to_the_original_then_one_fen_more_is_refused() -> None:
    sale = approved(TxnType.SALE, 10_000)
    for n, part in enumerate((3_000, 3_333, 3_667)):
        refund = child(allowed(can_refund(sale, fen(part), sale.refunded)), f"r{n}")
        step = ok(approve(refund, (sale,)))
        assert step.events == (Event(EventKind.REFUNDED, refund.id, sale.id, fen(part)),)
        sale = step.chain[0]
        assert sale.status is A
    assert (sale.refunded, sale.remaining, sale.refund_state) == (
        fen(10_000), fen(0), RefundState.FULL)
    refusal = refused(can_refund(sale, fen(1), sale.refunded),
                      RefusalReason.REFUND_EXCEEDS_REMAINING)
    assert refusal.code == "61"


def test_refund_over_remaining_and_bad_amounts() -> None:
    sale = approved(TxnType.SALE, 10_000)
    refused(can_refund(sale, fen(10_001), fen(0)), RefusalReason.REFUND_EXCEEDS_REMAINING)
    allowed(can_refund(sale, fen(10_000), fen(0)))
    for bad in (fen(0), fen(-1), Money(100, currency("USD"))):
        assert refused(can_refund(sale, bad, fen(0)), RefusalReason.INVALID_AMOUNT).code == "13"
    refused(can_refund(None, fen(1), fen(0)), RefusalReason.ORIGINAL_NOT_FOUND)
    refused(can_refund(approved(TxnType.PREAUTH), fen(1), fen(0)), RefusalReason.WRONG_TYPE)


def test_in_flight_refunds_count_and_the_snapshot_is_never_undercounted() -> None:
    sale = approved(TxnType.SALE, 10_000)
    refused(can_refund(sale, fen(5_001), fen(5_000)), RefusalReason.REFUND_EXCEEDS_REMAINING)
    half = ok(approve(child(allowed(can_refund(sale, fen(5_000), fen(0))), "r"), (sale,)))
    refused(can_refund(half.chain[0], fen(5_001), fen(0)),
            RefusalReason.REFUND_EXCEEDS_REMAINING)
    assert half.chain[0].refund_state is RefundState.PARTIAL


def test_two_in_flight_refunds_over_the_amount_second_approval_refused() -> None:
    sale = approved(TxnType.SALE, 10_000)
    first = child(allowed(can_refund(sale, fen(6_000), fen(0))), "r1")
    second = child(allowed(can_refund(sale, fen(6_000), fen(0))), "r2")
    sale = ok(approve(first, (sale,))).chain[0]
    refused(approve(second, (sale,)), RefusalReason.REFUND_EXCEEDS_REMAINING)


def test_refund_of_completion_and_its_reversal() -> None:
    completion, preauth = completed_preauth(10_000, 11_500)
    refund = child(allowed(can_refund(completion, fen(11_500), fen(0))), "r")
    step = ok(approve(refund, (completion,)))
    assert step.chain[0].refund_state is RefundState.FULL
    refused(reverse(step.chain[0], (preauth,)), RefusalReason.ALREADY_REFUNDED)
    back = ok(reverse(step.txn, step.chain))
    assert (back.txn.status, back.chain[0].refunded) == (R, fen(0))


def test_refund_of_voided_or_reversed_sale_refused() -> None:
    sale = approved(TxnType.SALE)
    voided = ok(approve(child(allowed(can_void(sale, True)), "v"), (sale,))).chain[0]
    refused(can_refund(voided, fen(1), fen(0)), RefusalReason.ALREADY_VOIDED)
    gone = ok(reverse(sale)).txn
    assert refused(can_refund(gone, fen(1), fen(0)), RefusalReason.ORIGINAL_REVERSED).code == "25"


# -- pre-authorization ------------------------------------------------------------------------

@given(authorized=st.integers(1, 10**11))
def test_completion_at_exactly_the_limit_allowed_one_fen_more_refused(authorized: int) -> None:
    preauth = approved(TxnType.PREAUTH, authorized)
    limit = apply_rate(fen(authorized), Decimal("1.15"))
    assert completion_limit(fen(authorized)) == limit
    allowed(can_complete(preauth, limit, DAY))
    refusal = refused(can_complete(preauth, limit + fen(1), DAY),
                      RefusalReason.AMOUNT_OVER_COMPLETION_LIMIT)
    assert refusal.code == "61"


def test_completion_limit_rounds_half_up_once() -> None:
    # 10001 × 1.15 = 11501.15 → 11501; 10010 × 1.15 = 11511.5 → 11512 (half up).
    preauth = approved(TxnType.PREAUTH, 10_010)
    allowed(can_complete(preauth, fen(11_512), DAY))
    refused(can_complete(preauth, fen(11_513), DAY), RefusalReason.AMOUNT_OVER_COMPLETION_LIMIT)
    assert completion_limit(fen(10_001)) == fen(11_501)


def test_completion_ratio_is_configurable_per_merchant() -> None:
    preauth = approved(TxnType.PREAUTH, 10_000)
    allowed(can_complete(preauth, fen(10_000), DAY, Decimal("1")))
    refused(can_complete(preauth, fen(10_001), DAY, Decimal("1")),
            RefusalReason.AMOUNT_OVER_COMPLETION_LIMIT)
    allowed(can_complete(preauth, fen(13_000), DAY, Decimal("1.30")))
    assert Decimal("1.15") == COMPLETION_RATIO_MAX_DEFAULT
    for bad in (Decimal("0.99"), Decimal("NaN")):
        with pytest.raises(ValidationError):
            can_complete(preauth, fen(1), DAY, bad)


def test_completion_captures_and_releases_the_hold() -> None:
    preauth = approved(TxnType.PREAUTH, 10_000)
    permission = allowed(can_complete(preauth, fen(9_000), DAY))
    completion = child(permission, "c")
    step = ok(approve(completion, (preauth,)))
    assert (step.txn.status, step.chain[0].status) == (A, CO)
    assert step.events == (Event(EventKind.HOLD_CAPTURED, "c", preauth.id, fen(9_000)),)
    back = ok(reverse(step.txn, step.chain))
    assert (back.txn.status, back.chain[0].status) == (R, A)


def test_completion_of_expired_cancelled_completed_preauth_refused() -> None:
    preauth = approved(TxnType.PREAUTH, 10_000)
    last_day = preauth_expires_on(DAY)
    allowed(can_complete(preauth, fen(1), last_day))
    refusal = refused(can_complete(preauth, fen(1), last_day + timedelta(days=1)),
                      RefusalReason.PREAUTH_EXPIRED)
    assert refusal.code == "22"
    expired = ok(expire(preauth, last_day + timedelta(days=1))).txn
    refused(can_complete(expired, fen(1), DAY), RefusalReason.PREAUTH_EXPIRED)
    cancel = child(allowed(can_cancel_preauth(preauth, DAY)), "pv")
    cancelled = ok(approve(cancel, (preauth,))).chain[0]
    refused(can_complete(cancelled, fen(1), DAY), RefusalReason.PREAUTH_CANCELLED)
    _, completed = completed_preauth()
    refused(can_complete(completed, fen(1), DAY), RefusalReason.PREAUTH_COMPLETED)
    refused(can_complete(approved(TxnType.SALE), fen(1), DAY), RefusalReason.WRONG_TYPE)
    refused(can_complete(None, fen(1), DAY), RefusalReason.ORIGINAL_NOT_FOUND)
    refused(can_complete(preauth, fen(0), DAY), RefusalReason.INVALID_AMOUNT)


def test_cancel_preauth_releases_the_hold_and_its_reversal_restores_it() -> None:
    preauth = approved(TxnType.PREAUTH, 10_000)
    refused(can_cancel_preauth(preauth, DAY, fen(9_999)), RefusalReason.AMOUNT_MISMATCH)
    refused(can_cancel_preauth(preauth, preauth_expires_on(DAY) + timedelta(days=1)),
            RefusalReason.PREAUTH_EXPIRED)
    refused(can_cancel_preauth(approved(TxnType.SALE), DAY), RefusalReason.WRONG_TYPE)
    cancel = child(allowed(can_cancel_preauth(preauth, DAY, fen(10_000))), "pv")
    step = ok(approve(cancel, (preauth,)))
    assert step.chain[0].status is CA
    assert step.events == (Event(EventKind.HOLD_RELEASED, "pv", preauth.id, fen(10_000)),)
    refused(can_cancel_preauth(step.chain[0], DAY), RefusalReason.PREAUTH_CANCELLED)
    back = ok(reverse(step.txn, step.chain))
    assert back.chain[0].status is A


def test_expire() -> None:
    preauth = approved(TxnType.PREAUTH, 10_000)
    last_day = preauth_expires_on(DAY)
    refused(expire(preauth, last_day), RefusalReason.PREAUTH_NOT_EXPIRED)
    step = ok(expire(preauth, last_day + timedelta(days=1)))
    assert step.txn.status is EX
    assert step.txn.is_terminal
    assert step.events == (Event(EventKind.HOLD_RELEASED, preauth.id, preauth.id, fen(10_000)),)
    refused(expire(approved(TxnType.SALE), DAY), RefusalReason.WRONG_TYPE)
    refused(expire(step.txn, last_day + timedelta(days=2)), RefusalReason.PREAUTH_EXPIRED)


# -- reversal ---------------------------------------------------------------------------------

def test_reversal_of_unknown_or_already_reversed_is_acknowledged() -> None:
    unknown = reverse(None)
    assert unknown == AlreadyReversed(None, NoEffect.UNKNOWN_TRANSACTION)
    assert unknown.code is ResponseCode.APPROVED
    sale = approved(TxnType.SALE, 700)
    first = ok(reverse(sale))
    assert first.events == (Event(EventKind.REVERSED, sale.id, sale.id, fen(700)),)
    assert reverse(first.txn) == AlreadyReversed(sale.id, NoEffect.ALREADY_REVERSED)


def test_reversal_of_declined_voided_cancelled_expired_has_no_effect() -> None:
    declined = ok(decline(new_transaction("d", TxnType.SALE, fen(5), DAY, BATCH))).txn
    assert reverse(declined) == AlreadyReversed("d", NoEffect.NOTHING_MOVED)
    for status in (V, CA, EX):
        txn_type = TxnType.SALE if status is V else TxnType.PREAUTH
        result = reverse(with_status(txn_type, status))
        assert result == AlreadyReversed("t", NoEffect.ALREADY_UNDONE)


def test_reversal_refusals() -> None:
    _, completed = completed_preauth()
    refused(reverse(completed), RefusalReason.PREAUTH_COMPLETED)
    sale = approved(TxnType.SALE)
    partly = ok(approve(child(allowed(can_refund(sale, fen(1), fen(0))), "r"), (sale,)))
    refused(reverse(partly.chain[0]), RefusalReason.ALREADY_REFUNDED)


FOLLOW_UP_TYPES = [t for t in TxnType if ORIGINAL_TYPES[t]]


@pytest.mark.parametrize("txn_type", FOLLOW_UP_TYPES)
def test_a_refused_follow_up_without_original_is_a_record(txn_type: TxnType) -> None:
    """Issue 9: a follow-up naming an unknown original is kept declined, without one; every
    rule reads it (a refusal, or a reversal with no effect) instead of raising."""
    orphan = Transaction("x", txn_type, D, fen(100), fen(0), DAY, BATCH)
    assert orphan.original_id is None
    assert reverse(orphan) == AlreadyReversed("x", NoEffect.NOTHING_MOVED)
    for operation, check in OPS.items():
        expected = (RefusalReason.ORIGINAL_DECLINED if txn_type in ORIGINAL_TYPES[operation]
                    else RefusalReason.WRONG_TYPE)
        refused(check(orphan), expected)
    for status in STATUSES[txn_type] - {D}:  # only a declined one may lack its original
        with pytest.raises(InvariantViolation):
            Transaction("x", txn_type, status, fen(100), fen(0), DAY, BATCH)


@pytest.mark.parametrize("txn_type", FOLLOW_UP_TYPES)
def test_reversal_of_a_declined_record_ignores_its_chain(txn_type: TxnType) -> None:
    """A declined follow-up that named an original of the wrong type (a cancellation of a
    sale): its "chain" is not its ancestry, and reversing it moves nothing (00)."""
    sale = approved(TxnType.SALE)
    declined = Transaction("y", txn_type, D, fen(100), fen(0), DAY, BATCH, sale.id)
    for chain in ((), (sale,), (sale, sale)):
        assert reverse(declined, chain) == AlreadyReversed("y", NoEffect.NOTHING_MOVED)
    approved_void = Transaction("v", TxnType.VOID, A, fen(100), fen(0), DAY, BATCH, "other")
    with pytest.raises(InvariantViolation):  # a record that moved money keeps the check
        reverse(approved_void, (sale,))


def test_reversal_of_void_restores_the_sale_pending_void_leaves_it_alone() -> None:
    sale = approved(TxnType.SALE)
    void = child(allowed(can_void(sale, True)), "v")
    pending = ok(reverse(void, (sale,)))
    assert (pending.txn.status, pending.chain, pending.events) == (R, (sale,), ())
    step = ok(approve(void, (sale,)))
    back = ok(reverse(step.txn, step.chain))
    assert (back.txn.status, back.chain[0].status) == (R, A)
    assert back.events == (Event(EventKind.REVERSED, "v", "v", sale.amount),)


def test_reversal_of_completion_void_after_recompletion_is_refused() -> None:
    completion, preauth = completed_preauth()
    cvoid = ok(approve(child(allowed(can_void_completion(completion, True)), "cv"),
                       (completion, preauth)))
    reopened = cvoid.chain[1]
    again = ok(approve(child(allowed(can_complete(reopened, fen(1), DAY)), "c2"), (reopened,)))
    refused(reverse(cvoid.txn, (cvoid.chain[0], again.chain[0])),
            RefusalReason.PREAUTH_COMPLETED)


# -- the matrix: every operation on every (type, status) --------------------------------------

OPS: dict[TxnType, Callable[[Transaction], Permission | Refusal]] = {
    TxnType.VOID: lambda t: can_void(t, True),
    TxnType.REFUND: lambda t: can_refund(t, fen(1), fen(0)),
    TxnType.COMPLETION: lambda t: can_complete(t, fen(1), DAY),
    TxnType.PREAUTH_VOID: lambda t: can_cancel_preauth(t, DAY),
    TxnType.COMPLETION_VOID: lambda t: can_void_completion(t, True),
}
STATUS_REASON = {
    S: RefusalReason.ORIGINAL_PENDING,
    D: RefusalReason.ORIGINAL_DECLINED,
    V: RefusalReason.ALREADY_VOIDED,
    R: RefusalReason.ORIGINAL_REVERSED,
    CO: RefusalReason.PREAUTH_COMPLETED,
    CA: RefusalReason.PREAUTH_CANCELLED,
    EX: RefusalReason.PREAUTH_EXPIRED,
}


@pytest.mark.parametrize("operation", list(OPS))
@pytest.mark.parametrize(("txn_type", "status"), ALL_STATES)
def test_operation_matrix(operation: TxnType, txn_type: TxnType, status: TxnStatus) -> None:
    result = OPS[operation](with_status(txn_type, status))
    if txn_type not in ORIGINAL_TYPES[operation]:
        refused(result, RefusalReason.WRONG_TYPE)
    elif status is A:
        assert allowed(result).type is operation
    else:
        refused(result, STATUS_REASON[status])


def test_every_legal_move_is_reachable_through_the_public_api() -> None:
    book = Book()
    for txn_type in (TxnType.SALE, TxnType.PREAUTH, TxnType.BALANCE_INQUIRY):
        for answer in ("approve", "decline"):
            book.answer(book.start(txn_type, 1_000), answer)
        if txn_type in REVERSIBLE_TYPES:
            book.reverse(book.start(txn_type, 1_000).id)
            book.reverse(book.answer(book.start(txn_type, 1_000), "approve").id)
    for operation in OPS:
        for step in ("approve", "decline", "reverse_pending", "reverse_approved"):
            original = book.original_for(operation)
            decision = book.request(operation, original, book.today)
            txn = book.open(allowed(decision))
            if step == "reverse_pending":
                book.reverse(txn.id)
                continue
            txn = book.answer(txn, "decline" if step == "decline" else "approve")
            if step == "reverse_approved":
                book.reverse(txn.id)
    preauth = book.answer(book.start(TxnType.PREAUTH, 1_000), "approve")
    book.expire(preauth.id, preauth_expires_on(DAY) + timedelta(days=1))
    expected = {(t, move) for t, moves in LEGAL_MOVES.items() for move in moves}
    assert book.moves == expected


CLOSED = frozenset({V, CA, CO})


# -- a tiny in-memory book: the records plus a shadow ledger fed only by events ---------------

class Book:
    """Records by id, every status change seen, and postings derived from events alone."""

    def __init__(self) -> None:
        self.records: dict[str, Transaction] = {}
        self.moves: set[tuple[TxnType, tuple[TxnStatus, TxnStatus]]] = set()
        self.postings: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
        self.today = DAY
        self.batch = 1
        self.serial = 0

    # records
    def next_id(self, txn_type: TxnType) -> str:
        self.serial += 1
        return f"{txn_type.value}-{self.serial}"

    def batch_no(self) -> str:
        return f"{self.batch:06d}"

    def start(self, txn_type: TxnType, amount: int) -> Transaction:
        txn = new_transaction(self.next_id(txn_type), txn_type, fen(amount), self.today,
                              self.batch_no())
        self.records[txn.id] = txn
        return txn

    def open(self, permission: Permission) -> Transaction:
        txn = new_transaction(self.next_id(permission.type), permission.type, permission.amount,
                              self.today, self.batch_no(), permission.original_id)
        self.records[txn.id] = txn
        return txn

    def chain(self, txn: Transaction) -> tuple[Transaction, ...]:
        out: list[Transaction] = []
        record = txn
        for _ in range(CHAIN_DEPTH[txn.type]):
            assert record.original_id is not None
            record = self.records[record.original_id]
            out.append(record)
        return tuple(out)

    def in_flight_refunds(self, original: Transaction) -> Money:
        total = sum(r.amount.amount_minor for r in self.records.values()
                    if r.type is TxnType.REFUND and r.original_id == original.id
                    and r.status in (S, A))
        return fen(total)

    def batch_open(self, original: Transaction) -> bool:
        return original.batch_no == self.batch_no()

    def request(self, operation: TxnType, original: Transaction | None, today: date,
                amount: Money | None = None) -> Permission | Refusal:
        """Ask the rule for ``operation`` the way the service layer would."""
        match operation:
            case TxnType.VOID:
                return can_void(original, original is not None and self.batch_open(original))
            case TxnType.COMPLETION_VOID:
                return can_void_completion(original, original is not None
                                           and self.batch_open(original))
            case TxnType.REFUND:
                so_far = fen(0) if original is None else self.in_flight_refunds(original)
                return can_refund(original, amount or fen(1), so_far)
            case TxnType.COMPLETION:
                return can_complete(original, amount or fen(1), today)
            case TxnType.PREAUTH_VOID:
                return can_cancel_preauth(original, today)
            case _:
                raise AssertionError(operation)

    def original_for(self, operation: TxnType) -> Transaction:
        """A fresh approved original that ``operation`` applies to."""
        if operation is TxnType.COMPLETION_VOID:
            preauth = self.answer(self.start(TxnType.PREAUTH, 1_000), "approve")
            completion = self.open(allowed(can_complete(preauth, fen(1_000), self.today)))
            return self.answer(completion, "approve")
        first = TxnType.SALE if operation in (TxnType.VOID, TxnType.REFUND) else TxnType.PREAUTH
        return self.answer(self.start(first, 1_000), "approve")

    # steps
    def commit(self, step: Transition, reopen: bool) -> None:
        """Store a step's records, checking every status change it makes on the way.

        ``reopen`` is set for the steps that may bring an ancestor back from voided,
        cancelled or completed: a reversal of a modifier, an approved completion void.
        """
        for record in (step.txn, *step.chain):
            before = self.records[record.id].status
            if before is not record.status:
                move = (before, record.status)
                assert move in LEGAL_MOVES[record.type], (record, move)
                assert before not in TERMINAL_STATUSES, (record, move)
                if before in CLOSED:
                    assert reopen, (record, move)
                    assert record is not step.txn, (record, move)
                self.moves.add((record.type, move))
            self.records[record.id] = record
        for event in step.events:
            self.post(event)

    def answer(self, txn: Transaction, answer: str) -> Transaction:
        txn = self.records[txn.id]
        if answer == "decline":
            self.commit(ok(decline(txn)), reopen=False)
        elif answer == "approve":
            result = approve(txn, self.chain(txn))
            if isinstance(result, Refusal):
                # The channel approved but the book cannot take it: reverse it upstream.
                assert result.reason is not RefusalReason.STATE_CONFLICT, result
                self.commit(ok(reverse(txn, self.chain(txn))), reopen=False)
            else:
                self.commit(result, reopen=txn.type is TxnType.COMPLETION_VOID)
        return self.records[txn.id]

    def reverse(self, txn_id: str) -> Transition | AlreadyReversed | Refusal:
        txn = self.records.get(txn_id)
        chain = () if txn is None else self.chain(txn)
        result = reverse(txn, chain)
        if isinstance(result, Transition):
            self.commit(result, reopen=bool(chain))
        if isinstance(result, Refusal):
            assert result.reason is not RefusalReason.STATE_CONFLICT, result
        return result

    def expire(self, txn_id: str, today: date) -> None:
        result = expire(self.records[txn_id], today)
        if isinstance(result, Transition):
            self.commit(result, reopen=False)

    # the shadow ledger: "captured" and "held" per record, from events only
    def post(self, event: Event) -> None:
        lines = self.postings[event.txn_id]
        amount = event.amount.amount_minor
        match event.kind:
            case EventKind.CAPTURED:
                lines.append(("captured", event.target_id, amount))
            case EventKind.HOLD_PLACED:
                lines.append(("held", event.target_id, amount))
            case EventKind.HOLD_CAPTURED:
                hold = self.records[event.target_id].amount.amount_minor
                lines += [("held", event.target_id, -hold), ("captured", event.txn_id, amount)]
            case EventKind.HOLD_RELEASED:
                lines.append(("held", event.target_id, -amount))
            case EventKind.VOIDED | EventKind.REFUNDED:
                lines.append(("captured", event.target_id, -amount))
            case EventKind.REVERSED:
                lines += [(bucket, rid, -delta) for bucket, rid, delta in list(lines)]

    def balance(self, bucket: str, record_id: str) -> int:
        return sum(delta for lines in self.postings.values() for b, rid, delta in lines
                   if b == bucket and rid == record_id)


# -- hypothesis: random sequences on the pure model -------------------------------------------

ANSWERS = st.sampled_from(["approve", "approve", "decline", "none", "none"])


class PaymentsMachine(RuleBasedStateMachine):
    """Random sales, voids, refunds, pre-auths, completions and reversals; invariants hold."""

    sales = Bundle("sales")
    preauths = Bundle("preauths")
    completions = Bundle("completions")
    others = Bundle("others")  # voids, refunds, cancels, completion voids

    def __init__(self) -> None:
        super().__init__()
        self.book = Book()

    def _start(self, txn_type: TxnType, amount: int, answer: str) -> str:
        txn = self.book.start(txn_type, amount)
        if answer != "none":
            self.book.answer(txn, answer)
        return txn.id

    def _modify(self, operation: TxnType, txn_id: str, answer: str,
                amount: Money | None = None) -> object:
        original = self.book.records[txn_id]
        decision = self.book.request(operation, original, self.book.today, amount)
        if isinstance(decision, Refusal):
            assert decision.reason is not RefusalReason.STATE_CONFLICT
            return multiple()
        txn = self.book.open(decision)
        if answer != "none":
            self.book.answer(txn, answer)
        return txn.id

    @initialize(target=sales, amount=st.integers(1, 100_000))
    def approved_sale(self, amount: int) -> str:
        return self._start(TxnType.SALE, amount, "approve")

    @initialize(target=preauths, amount=st.integers(1, 100_000))
    def approved_preauth(self, amount: int) -> str:
        return self._start(TxnType.PREAUTH, amount, "approve")

    @rule(target=sales, amount=st.integers(1, 100_000), answer=ANSWERS)
    def sale(self, amount: int, answer: str) -> str:
        return self._start(TxnType.SALE, amount, answer)

    @rule(target=preauths, amount=st.integers(1, 100_000), answer=ANSWERS)
    def preauth(self, amount: int, answer: str) -> str:
        return self._start(TxnType.PREAUTH, amount, answer)

    @rule(target=others, txn_id=sales, answer=ANSWERS)
    def void(self, txn_id: str, answer: str) -> object:
        return self._modify(TxnType.VOID, txn_id, answer)

    @rule(target=others, txn_id=completions, answer=ANSWERS)
    def void_completion(self, txn_id: str, answer: str) -> object:
        return self._modify(TxnType.COMPLETION_VOID, txn_id, answer)

    @rule(target=others, txn_id=preauths, answer=ANSWERS)
    def cancel_preauth(self, txn_id: str, answer: str) -> object:
        return self._modify(TxnType.PREAUTH_VOID, txn_id, answer)

    @rule(target=others, txn_id=st.one_of(sales, completions), amount=st.integers(1, 120_000),
          rest=st.booleans(),
          answer=ANSWERS)
    def refund(self, txn_id: str, amount: int, rest: bool, answer: str) -> object:
        original = self.book.records[txn_id]
        left = original.amount - self.book.in_flight_refunds(original)
        money = left if rest and left.amount_minor > 0 else fen(amount)
        return self._modify(TxnType.REFUND, txn_id, answer, money)

    @rule(target=completions, txn_id=preauths, offset=st.integers(-60_000, 1), answer=ANSWERS)
    def complete(self, txn_id: str, offset: int, answer: str) -> object:
        limit = completion_limit(self.book.records[txn_id].amount)
        amount = fen(max(1, limit.amount_minor + offset))
        return self._modify(TxnType.COMPLETION, txn_id, answer, amount)

    @rule(txn_id=st.one_of(sales, preauths, completions, others), approve_it=st.booleans())
    def late_answer(self, txn_id: str, approve_it: bool) -> None:
        txn = self.book.records[txn_id]
        if txn.status is S:
            self.book.answer(txn, "approve" if approve_it else "decline")
        else:
            refused(approve(txn, self.book.chain(txn)), RefusalReason.LATE_ANSWER)
            refused(decline(txn), RefusalReason.LATE_ANSWER)

    @rule(approve_them=st.booleans(), newest_first=st.booleans())
    def answer_every_pending(self, approve_them: bool, newest_first: bool) -> None:
        """Answers arriving late and out of order: the interleavings that race."""
        pending = [t for t in self.book.records.values() if t.status is S]
        for txn in reversed(pending) if newest_first else pending:
            self.book.answer(txn, "approve" if approve_them else "decline")

    @rule(txn_id=st.one_of(sales, preauths, completions, others, st.just("unknown")))
    def reverse(self, txn_id: str) -> None:
        before = self.book.records.get(txn_id)
        result = self.book.reverse(txn_id)
        if before is None:
            assert result == AlreadyReversed(None, NoEffect.UNKNOWN_TRANSACTION)
        elif before.status in (R, D, V, CA, EX):
            assert isinstance(result, AlreadyReversed)
            assert result.code is ResponseCode.APPROVED
        again = self.book.reverse(txn_id)  # a retried reversal changes nothing more
        assert not isinstance(again, Transition)

    @rule(days=st.integers(1, 40))
    def next_days(self, days: int) -> None:
        self.book.today += timedelta(days=days)

    @rule()
    def close_batch(self) -> None:
        self.book.batch += 1

    @rule(txn_id=preauths)
    def expire_preauth(self, txn_id: str) -> None:
        self.book.expire(txn_id, self.book.today)

    @precondition(lambda self: bool(self.book.records))
    @rule(data=st.data())
    def voided_or_reversed_accepts_only_idempotent_reversal(self, data: st.DataObject) -> None:
        txn = data.draw(st.sampled_from(sorted(self.book.records.values(), key=lambda t: t.id)))
        if txn.status not in (V, R):
            return
        for operation in OPS:
            decision = self.book.request(operation, txn, self.book.today)
            assert isinstance(decision, Refusal), (operation, decision)
        assert isinstance(reverse(txn, self.book.chain(txn)), AlreadyReversed)
        refused(approve(txn, self.book.chain(txn)), RefusalReason.LATE_ANSWER)

    @invariant()
    def refunds_never_exceed_the_capture(self) -> None:
        refunds: dict[str, int] = defaultdict(int)
        for record in self.book.records.values():
            if record.type is TxnType.REFUND and record.status is A:
                assert record.original_id is not None
                refunds[record.original_id] += record.amount.amount_minor
        for record in self.book.records.values():
            assert record.refunded.amount_minor == refunds[record.id]
            assert record.refunded <= record.amount

    @invariant()
    def ledger_from_events_agrees_with_statuses(self) -> None:
        for record in self.book.records.values():
            captured = self.book.balance("captured", record.id)
            held = self.book.balance("held", record.id)
            if record.type in (TxnType.SALE, TxnType.COMPLETION):
                expect = record.remaining.amount_minor if record.status is A else 0
                assert (captured, held) == (expect, 0), record
            elif record.type is TxnType.PREAUTH:
                expect = record.amount.amount_minor if record.status is A else 0
                assert (captured, held) == (0, expect), record
            else:
                assert (captured, held) == (0, 0), record

    @invariant()
    def closed_states_have_exactly_one_approved_closer(self) -> None:
        closers: dict[str, list[TxnType]] = defaultdict(list)
        for record in self.book.records.values():
            if record.original_id is not None and record.status is A:
                closers[record.original_id].append(record.type)
        for record in self.book.records.values():
            mine = [t for t in closers[record.id] if t is not TxnType.REFUND]
            expected = {
                V: [TxnType.VOID if record.type is TxnType.SALE else TxnType.COMPLETION_VOID],
                CA: [TxnType.PREAUTH_VOID],
                CO: [TxnType.COMPLETION],
            }.get(record.status, [])
            assert mine == expected, (record, mine)


TestPaymentsMachine = PaymentsMachine.TestCase
TestPaymentsMachine.settings = settings(max_examples=200, stateful_step_count=50, deadline=None)


def test_money_currency_is_respected() -> None:
    usd: Currency = currency("USD")
    sale = ok(approve(new_transaction("u", TxnType.SALE, Money(500, usd), DAY, BATCH))).txn
    allowed(can_refund(sale, Money(500, usd), Money(0, usd)))
    refused(can_refund(sale, fen(500), Money(0, usd)), RefusalReason.INVALID_AMOUNT)
