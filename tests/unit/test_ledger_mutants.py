"""Ledger: the behaviour mutation testing found unchecked (see docs/testing.md).

Account codes stay parseable, fingerprints stay stable across versions (they are stored and
compared with the retries of later versions), and every refusal says why.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from autosettle.domain.errors import ErrorCode, ValidationError
from autosettle.domain.ledger import (
    IDEMPOTENCY_KEY_LENGTH_MAX,
    MERCHANT_ID_LENGTH_MAX,
    Account,
    AccountType,
    JournalEntry,
    Line,
    balances_by_currency,
    entry_problems,
    transfer,
)
from autosettle.domain.money import Money, currency

USD = currency("USD")
RECEIVABLE = Account(AccountType.CHANNEL_RECEIVABLE)
FEES = Account(AccountType.FEE_INCOME)
UNSETTLED = Account(AccountType.MERCHANT_UNSETTLED, "M001")


def _refusal(action: Callable[[], object]) -> ValidationError:
    with pytest.raises(ValidationError) as excinfo:
        action()
    return excinfo.value


# -- accounts ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("action", "message"),
    [(lambda: Account(AccountType.MERCHANT_PAYABLE), "merchant_payable needs a merchant id"),
     (lambda: Account(AccountType.FEE_INCOME, "M001"), "fee_income is not merchant-scoped"),
     (lambda: Account(AccountType.MERCHANT_PAYABLE, "m-1"),
      "a merchant id in an account code must be alphanumeric"),
     (lambda: Account(AccountType.MERCHANT_PAYABLE, "m:1"),
      "a merchant id in an account code must be alphanumeric"),
     (lambda: Account(AccountType.MERCHANT_PAYABLE, "商户1"),
      "a merchant id in an account code must be alphanumeric"),
     (lambda: Account(AccountType.MERCHANT_PAYABLE, "1" * (MERCHANT_ID_LENGTH_MAX + 1)),
      "a merchant id in an account code must be alphanumeric"),
     (lambda: Account.parse("fees"), "unknown account 'fees'")],
)
def test_account_refusals(action: Callable[[], object], message: str) -> None:
    error = _refusal(action)
    assert error.code is ErrorCode.INVALID_ENTRY
    assert error.message == message


def test_the_longest_merchant_id_round_trips() -> None:
    account = Account(AccountType.MERCHANT_PAYABLE, "8" * MERCHANT_ID_LENGTH_MAX)
    assert Account.parse(account.code) == account


# -- entries ----------------------------------------------------------------------------------
def test_fingerprint_is_stable_across_versions() -> None:
    # Stored with each entry: a retry after an upgrade must still match. Changing how the
    # fingerprint is computed needs a migration of the stored ones.
    entry = JournalEntry.build(
        "sale:T1:000001", "sale",
        [Line.debit(RECEIVABLE, Money(100_00)), Line.credit(UNSETTLED, Money(99_40)),
         Line.credit(FEES, Money(60))],
        merchant_id="M001", reference="txn-1")
    assert entry.fingerprint() \
        == "f3543a0741ba974c583a5756bf020a32fd37a809f2522453cccc647468969e3d"


def test_every_problem_is_reported_at_once() -> None:
    error = _refusal(lambda: JournalEntry("", "t", (Line.debit(RECEIVABLE, Money(0)),)))
    assert error.code is ErrorCode.INVALID_ENTRY
    assert error.message == (
        f"idempotency key must be 1..{IDEMPOTENCY_KEY_LENGTH_MAX} characters; "
        "an entry needs at least two lines; a line cannot be zero")
    unbalanced = _refusal(lambda: JournalEntry(
        "k", "t", (Line.debit(RECEIVABLE, Money(5)), Line.credit(FEES, Money(3)))))
    assert unbalanced.code is ErrorCode.UNBALANCED_ENTRY
    assert unbalanced.message == "lines do not balance in CNY: off by 2 minor units"


def test_the_longest_idempotency_key_is_accepted() -> None:
    lines = [Line.debit(RECEIVABLE, Money(1)), Line.credit(FEES, Money(1))]
    assert entry_problems("k" * IDEMPOTENCY_KEY_LENGTH_MAX, lines) == []
    assert JournalEntry.build("k" * IDEMPOTENCY_KEY_LENGTH_MAX, "t", lines).lines


def test_balances_by_currency_sums_signed_amounts() -> None:
    lines = [Line.debit(RECEIVABLE, Money(7)), Line.debit(FEES, Money(5)),
             Line.credit(UNSETTLED, Money(2, USD))]
    assert balances_by_currency(lines) == {"CNY": 12, "USD": -2}


def test_transfer_keeps_kind_and_refuses_a_zero_amount() -> None:
    entry = transfer("k", "payout", UNSETTLED, RECEIVABLE, Money(3_00), "M001", "p-1")
    assert (entry.kind, entry.merchant_id, entry.reference) == ("payout", "M001", "p-1")
    error = _refusal(lambda: transfer("k", "payout", UNSETTLED, RECEIVABLE, Money(0)))
    assert error.code is ErrorCode.INVALID_ENTRY
    assert error.message == "a transfer amount must be positive"
