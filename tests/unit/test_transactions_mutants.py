"""Transactions: the behaviour mutation testing found unchecked (see docs/testing.md).

Every refusal carries a detail that the API and the terminal host pass on to the caller
(``services/payments.py``); these tests pin the reason and the detail of each one, and the
messages of the invariants a caller trips by passing the wrong ancestors.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

import pytest

from autosettle.domain.errors import ErrorCode, InvariantViolation, ValidationError
from autosettle.domain.money import Money, currency
from autosettle.domain.transactions import (
    Refusal,
    RefusalReason,
    Transaction,
    TxnStatus,
    TxnType,
    approve,
    can_cancel_preauth,
    can_complete,
    can_refund,
    can_void,
    completion_limit,
    decline,
    expire,
    new_transaction,
    preauth_expires_on,
    reverse,
)

DAY = date(2026, 9, 18)
USD = currency("USD")
R = RefusalReason


def _txn(txn_id: str, kind: TxnType, status: TxnStatus, *, refunded: int = 0,
         original_id: str | None = None) -> Transaction:
    expires_on = preauth_expires_on(DAY) if kind is TxnType.PREAUTH else None
    return Transaction(txn_id, kind, status, Money(100_00), Money(refunded), DAY, "000001",
                       original_id, expires_on)


SALE = _txn("S1", TxnType.SALE, TxnStatus.APPROVED)
REFUNDED_SALE = _txn("S1", TxnType.SALE, TxnStatus.APPROVED, refunded=10_00)
PREAUTH = _txn("P1", TxnType.PREAUTH, TxnStatus.APPROVED)
LAPSED = preauth_expires_on(DAY) + timedelta(1)


def _pending(kind: TxnType, original_id: str, amount: int = 100_00) -> Transaction:
    return Transaction("N1", kind, TxnStatus.PENDING, Money(amount), Money(0), DAY, "000001",
                       original_id)


@pytest.mark.parametrize(
    ("step", "reason", "detail"),
    [(lambda: can_void(SALE, batch_open=False), R.BATCH_CLOSED, "batch 000001 is closed"),
     (lambda: can_void(REFUNDED_SALE, batch_open=True), R.ALREADY_REFUNDED,
      "10.00 CNY already refunded"),
     (lambda: can_void(SALE, batch_open=True, amount=Money(1)), R.AMOUNT_MISMATCH,
      "0.01 CNY is not 100.00 CNY"),
     (lambda: can_void(PREAUTH, batch_open=True), R.WRONG_TYPE,
      "a void cannot apply to a preauth"),
     (lambda: can_void(_txn("S1", TxnType.SALE, TxnStatus.DECLINED), batch_open=True),
      R.ORIGINAL_DECLINED, "S1 is declined"),
     (lambda: can_refund(SALE, Money(1, USD), Money(0)), R.INVALID_AMOUNT,
      "0.01 USD is not a positive amount in CNY"),
     (lambda: can_refund(SALE, Money(60_00), Money(50_00)), R.REFUND_EXCEEDS_REMAINING,
      "refund 60.00 CNY exceeds the remaining 50.00 CNY"),
     (lambda: can_complete(PREAUTH, Money(1), LAPSED), R.PREAUTH_EXPIRED,
      "P1 expired 2026-10-18"),
     (lambda: can_complete(PREAUTH, Money(115_01), DAY), R.AMOUNT_OVER_COMPLETION_LIMIT,
      "completion 115.01 CNY exceeds the limit 115.00 CNY"),
     (lambda: can_cancel_preauth(PREAUTH, LAPSED), R.PREAUTH_EXPIRED, "P1 expired 2026-10-18"),
     (lambda: can_cancel_preauth(PREAUTH, DAY, Money(1)), R.AMOUNT_MISMATCH,
      "0.01 CNY is not 100.00 CNY"),
     (lambda: approve(SALE), R.LATE_ANSWER, "S1 is already approved"),
     (lambda: decline(SALE), R.LATE_ANSWER, "S1 is already approved"),
     (lambda: reverse(_txn("B1", TxnType.BALANCE_INQUIRY, TxnStatus.APPROVED)),
      R.NOT_REVERSIBLE, "a balance_inquiry cannot be reversed"),
     (lambda: reverse(_txn("P1", TxnType.PREAUTH, TxnStatus.COMPLETED)),
      R.PREAUTH_COMPLETED, "P1 is completed"),
     (lambda: reverse(REFUNDED_SALE), R.ALREADY_REFUNDED, "10.00 CNY already refunded"),
     (lambda: expire(PREAUTH, DAY), R.PREAUTH_NOT_EXPIRED, "valid until 2026-10-18"),
     # Approvals that find their original changed by a concurrent step.
     (lambda: approve(_pending(TxnType.VOID, "S1"),
                      [_txn("S1", TxnType.SALE, TxnStatus.VOIDED)]),
      R.ALREADY_VOIDED, "S1 is voided"),
     (lambda: approve(_pending(TxnType.VOID, "S1"), [REFUNDED_SALE]),
      R.ALREADY_REFUNDED, "S1 has refunds"),
     (lambda: approve(_pending(TxnType.REFUND, "S1", 95_00), [REFUNDED_SALE]),
      R.REFUND_EXCEEDS_REMAINING, "refund 95.00 CNY exceeds the remaining 90.00 CNY")],
)
def test_each_refusal_has_its_reason_and_detail(
        step: Callable[[], object], reason: RefusalReason, detail: str) -> None:
    assert step() == Refusal(reason, detail)


def test_ancestors_that_do_not_fit_are_a_bug_and_say_so() -> None:
    void = _pending(TxnType.VOID, "S1")
    with pytest.raises(InvariantViolation, match=r"^void N1 needs 1 ancestors, got 0$"):
        approve(void)
    other = _txn("S2", TxnType.SALE, TxnStatus.APPROVED)
    with pytest.raises(InvariantViolation, match=r"^sale S2 is not the original of N1$"):
        approve(void, [other])
    with pytest.raises(InvariantViolation,
                       match=r"^refunded_so_far is in another currency than the original$"):
        can_refund(SALE, Money(1), Money(0, USD))


def test_completion_limit_refusal_names_the_ratio() -> None:
    with pytest.raises(ValidationError) as excinfo:
        completion_limit(Money(100_00), Decimal("0.9"))
    assert excinfo.value.code is ErrorCode.VALIDATION_FAILED
    assert excinfo.value.message == "completion ratio must be a Decimal of at least 1, got " \
                                    "Decimal('0.9')"


def test_new_transaction_keeps_its_business_date() -> None:
    txn = new_transaction("N1", TxnType.SALE, Money(1_00), DAY, "000007")
    assert (txn.business_date, txn.batch_no, txn.status) == (DAY, "000007", TxnStatus.PENDING)
    preauth = new_transaction("N2", TxnType.PREAUTH, Money(1_00), DAY, "000007")
    assert preauth.expires_on == preauth_expires_on(DAY)


@pytest.mark.parametrize(
    ("build", "message"),
    [(lambda: _txn("S1", TxnType.SALE, TxnStatus.COMPLETED), "sale S1 cannot be completed"),
     (lambda: Transaction("S1", TxnType.SALE, TxnStatus.APPROVED, Money(100_00), Money(0, USD),
                          DAY, "000001"), "S1: refunded and amount differ in currency"),
     (lambda: _txn("S1", TxnType.SALE, TxnStatus.APPROVED, refunded=100_01),
      "S1: refunded 100.01 CNY outside 0..100.00 CNY"),
     (lambda: _txn("S1", TxnType.SALE, TxnStatus.PENDING, refunded=1),
      "S1: only an approved sale or completion carries refunds"),
     (lambda: _txn("S1", TxnType.SALE, TxnStatus.APPROVED, original_id="X"),
      "sale S1: original_id 'X' is wrong"),
     (lambda: Transaction("S1", TxnType.SALE, TxnStatus.APPROVED, Money(1), Money(0), DAY,
                          "000001", None, DAY), "sale S1: expires_on datetime.date(2026, 9, 18) "
                                                "is wrong")],
)
def test_an_impossible_record_is_a_bug_and_says_which(
        build: Callable[[], object], message: str) -> None:
    with pytest.raises(InvariantViolation) as excinfo:
        build()
    assert excinfo.value.message == message
