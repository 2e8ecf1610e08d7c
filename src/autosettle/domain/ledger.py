"""Double-entry ledger values: accounts, lines, balanced journal entries.

A line's ``amount_minor`` is signed: positive debits the account, negative credits it.
A :class:`JournalEntry` cannot be constructed unless it has two or more non-zero lines whose
amounts sum to zero in every currency. Balances are derived from lines (:func:`balances`),
never stored or edited. Every entry carries the idempotency key of the operation that
caused it, and a content fingerprint so a retry with different content is detected.

Chart of accounts (``kind`` says which way a balance normally goes)::

    channel_receivable          asset      owed to us by the card network / channel
    card_holds                  memo       pre-authorization holds (pending, TigerBeetle-style)
    merchant_unsettled:<m>      liability  captured, not yet settled
    merchant_payable:<m>        liability  settled, awaiting payout
    merchant_receivable:<m>     asset      debt of a merchant (refunds larger than sales)
    fee_income                  income     merchant discount fees
    payout_clearing             liability  payouts sent to the bank, not yet confirmed
    dispute_reserve:<m>         liability  held back for disputes
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from autosettle.domain.errors import ErrorCode, ValidationError
from autosettle.domain.money import Currency, Money

IDEMPOTENCY_KEY_LENGTH_MAX = 200
ACCOUNT_CODE_LENGTH_MAX = 64
ENTRY_LINES_MAX = 1000
MERCHANT_ID_LENGTH_MAX = 15


class AccountKind(StrEnum):
    """Accounting nature of an account."""

    ASSET = "asset"
    LIABILITY = "liability"
    INCOME = "income"
    EXPENSE = "expense"
    EQUITY = "equity"
    MEMO = "memo"


class AccountType(StrEnum):
    """The account families of the chart of accounts (the code's part before ``:``)."""

    CHANNEL_RECEIVABLE = "channel_receivable"
    CARD_HOLDS = "card_holds"
    HOLDS_CONTRA = "holds_contra"
    MERCHANT_UNSETTLED = "merchant_unsettled"
    MERCHANT_PAYABLE = "merchant_payable"
    MERCHANT_RECEIVABLE = "merchant_receivable"
    FEE_INCOME = "fee_income"
    PAYOUT_CLEARING = "payout_clearing"
    BANK = "bank"
    DISPUTE_RESERVE = "dispute_reserve"
    ADJUSTMENTS = "adjustments"


ACCOUNT_KINDS: Mapping[AccountType, AccountKind] = {
    AccountType.CHANNEL_RECEIVABLE: AccountKind.ASSET,
    AccountType.CARD_HOLDS: AccountKind.MEMO,
    AccountType.HOLDS_CONTRA: AccountKind.MEMO,
    AccountType.MERCHANT_UNSETTLED: AccountKind.LIABILITY,
    AccountType.MERCHANT_PAYABLE: AccountKind.LIABILITY,
    AccountType.MERCHANT_RECEIVABLE: AccountKind.ASSET,
    AccountType.FEE_INCOME: AccountKind.INCOME,
    AccountType.PAYOUT_CLEARING: AccountKind.LIABILITY,
    AccountType.BANK: AccountKind.ASSET,
    AccountType.DISPUTE_RESERVE: AccountKind.LIABILITY,
    AccountType.ADJUSTMENTS: AccountKind.EXPENSE,
}

MERCHANT_SCOPED: frozenset[AccountType] = frozenset({
    AccountType.MERCHANT_UNSETTLED,
    AccountType.MERCHANT_PAYABLE,
    AccountType.MERCHANT_RECEIVABLE,
    AccountType.DISPUTE_RESERVE,
})


@dataclass(frozen=True, slots=True)
class Account:
    """A ledger account: a family and, for merchant-scoped families, the merchant id."""

    type: AccountType
    merchant_id: str | None = None

    def __post_init__(self) -> None:
        scoped = self.type in MERCHANT_SCOPED
        if scoped and not self.merchant_id:
            raise ValidationError(f"{self.type} needs a merchant id", ErrorCode.INVALID_ENTRY)
        if not scoped and self.merchant_id is not None:
            raise ValidationError(f"{self.type} is not merchant-scoped", ErrorCode.INVALID_ENTRY)
        if self.merchant_id is not None and not (
            self.merchant_id.isascii() and self.merchant_id.isalnum()
            and len(self.merchant_id) <= MERCHANT_ID_LENGTH_MAX
        ):
            raise ValidationError("a merchant id in an account code must be alphanumeric",
                                  ErrorCode.INVALID_ENTRY)

    @property
    def code(self) -> str:
        """Stable text code, e.g. ``merchant_payable:898310048160001``."""
        return f"{self.type.value}:{self.merchant_id}" if self.merchant_id else self.type.value

    @property
    def kind(self) -> AccountKind:
        return ACCOUNT_KINDS[self.type]

    @classmethod
    def parse(cls, code: str) -> Account:
        """Inverse of :attr:`code`."""
        family, _, merchant = code.partition(":")
        try:
            account_type = AccountType(family)
        except ValueError as exc:
            raise ValidationError(f"unknown account {code!r}", ErrorCode.INVALID_ENTRY) from exc
        return cls(account_type, merchant or None)

    def __str__(self) -> str:
        return self.code


@dataclass(frozen=True, slots=True)
class Line:
    """One leg of an entry: a signed amount (debit > 0, credit < 0) on one account."""

    account: Account
    amount: Money

    @classmethod
    def debit(cls, account: Account, amount: Money) -> Line:
        return cls(account, amount)

    @classmethod
    def credit(cls, account: Account, amount: Money) -> Line:
        return cls(account, -amount)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """A balanced, immutable journal entry. Construct it with :meth:`build`."""

    idempotency_key: str
    kind: str
    lines: tuple[Line, ...]
    merchant_id: str | None = None
    reference: str | None = None

    def __post_init__(self) -> None:
        problems = entry_problems(self.idempotency_key, self.lines)
        if problems:
            code = (ErrorCode.UNBALANCED_ENTRY if any("balance" in p for p in problems)
                    else ErrorCode.INVALID_ENTRY)
            raise ValidationError("; ".join(problems), code)

    @classmethod
    def build(
        cls,
        idempotency_key: str,
        kind: str,
        lines: Iterable[Line],
        merchant_id: str | None = None,
        reference: str | None = None,
    ) -> JournalEntry:
        """Build an entry; lines on the same account and currency are netted together."""
        return cls(idempotency_key, kind, _net(lines), merchant_id, reference)

    def fingerprint(self) -> str:
        """SHA-256 over the entry's content, to tell a retry from a different request."""
        payload = {
            "kind": self.kind,
            "merchant_id": self.merchant_id,
            "reference": self.reference,
            "lines": sorted(
                [ln.account.code, ln.amount.currency.code, ln.amount.amount_minor]
                for ln in self.lines
            ),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _net(lines: Iterable[Line]) -> tuple[Line, ...]:
    totals: dict[tuple[Account, Currency], int] = defaultdict(int)
    for line in lines:
        totals[(line.account, line.amount.currency)] += line.amount.amount_minor
    return tuple(
        Line(account, Money(amount, cur)) for (account, cur), amount in totals.items()
        if amount != 0
    )


def entry_problems(idempotency_key: str, lines: Sequence[Line]) -> list[str]:
    """Every reason why these lines cannot form an entry (empty when they can)."""
    problems: list[str] = []
    if not idempotency_key or len(idempotency_key) > IDEMPOTENCY_KEY_LENGTH_MAX:
        problems.append(f"idempotency key must be 1..{IDEMPOTENCY_KEY_LENGTH_MAX} characters")
    if len(lines) < 2:
        problems.append("an entry needs at least two lines")
    if len(lines) > ENTRY_LINES_MAX:
        problems.append(f"an entry has at most {ENTRY_LINES_MAX} lines")
    if any(line.amount.amount_minor == 0 for line in lines):
        problems.append("a line cannot be zero")
    for cur, total in balances_by_currency(lines).items():
        if total != 0:
            problems.append(f"lines do not balance in {cur}: off by {total} minor units")
    return problems


def balances_by_currency(lines: Iterable[Line]) -> dict[str, int]:
    """Sum of signed line amounts per currency code."""
    totals: dict[str, int] = defaultdict(int)
    for line in lines:
        totals[line.amount.currency.code] += line.amount.amount_minor
    return dict(totals)


def balances(lines: Iterable[Line]) -> dict[tuple[str, str], int]:
    """Derived balances: signed sum per (account code, currency code)."""
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for line in lines:
        totals[(line.account.code, line.amount.currency.code)] += line.amount.amount_minor
    return dict(totals)


def transfer(
    idempotency_key: str,
    kind: str,
    debit: Account,
    credit: Account,
    amount: Money,
    merchant_id: str | None = None,
    reference: str | None = None,
) -> JournalEntry:
    """The simplest entry: one debit and one credit of the same positive amount."""
    if amount.amount_minor <= 0:
        raise ValidationError("a transfer amount must be positive", ErrorCode.INVALID_ENTRY)
    return JournalEntry.build(
        idempotency_key, kind, [Line.debit(debit, amount), Line.credit(credit, amount)],
        merchant_id, reference,
    )
