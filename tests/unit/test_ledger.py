"""The ledger domain: balanced entries only, derived balances, stable fingerprints.

Pure tests (no database). The worked example at the end replays a textbook acquiring day
(sales, a refund, the channel's funds, settlement with a fee, a payout and its confirmation)
and checks every derived balance to the fen.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from autosettle.domain.errors import ErrorCode, ValidationError
from autosettle.domain.ledger import (
    ACCOUNT_KINDS,
    ENTRY_LINES_MAX,
    IDEMPOTENCY_KEY_LENGTH_MAX,
    MERCHANT_SCOPED,
    Account,
    AccountKind,
    AccountType,
    JournalEntry,
    Line,
    balances,
    balances_by_currency,
    entry_problems,
    transfer,
)
from autosettle.domain.money import CNY, Money, apply_rate, currency, known_currencies

MID = "898310054110001"
MID2 = "898310058120001"
USD = currency("USD")
JPY = currency("JPY")

CURRENCIES = known_currencies()
ACCOUNT_POOL = [
    Account(t, m) if t in MERCHANT_SCOPED else Account(t)
    for t in AccountType
    for m in ((MID, MID2) if t in MERCHANT_SCOPED else (None,))
]
nonzero = st.integers(min_value=-(10**13), max_value=10**13).filter(lambda n: n != 0)
accounts = st.sampled_from(ACCOUNT_POOL)


def code_of(caught: pytest.ExceptionInfo[ValidationError]) -> ErrorCode:
    return caught.value.code


@st.composite
def balanced_lines(draw: st.DrawFn) -> list[Line]:
    """Lines in one to three currencies, each currency summing to zero, no two lines on the
    same account and currency (so netting leaves them all)."""
    lines: list[Line] = []
    for cur in draw(st.lists(st.sampled_from(CURRENCIES), min_size=1, max_size=3,
                             unique_by=lambda c: c.code)):
        amounts = draw(st.lists(nonzero, min_size=1, max_size=6))
        assume(sum(amounts) != 0)
        pool = draw(st.permutations(ACCOUNT_POOL))[: len(amounts) + 1]
        lines.extend(Line(acct, Money(amount, cur)) for acct, amount in zip(pool, amounts,
                                                                            strict=False))
        lines.append(Line(pool[len(amounts)], Money(-sum(amounts), cur)))
    return draw(st.permutations(lines))


# -- construction ---------------------------------------------------------------------------
@given(balanced_lines())
def test_balanced_lines_always_build_and_sum_to_zero(lines: list[Line]) -> None:
    entry = JournalEntry.build("key", "test", lines)
    assert len(entry.lines) == len(lines)
    assert set(entry.lines) == set(lines)
    assert all(total == 0 for total in balances_by_currency(entry.lines).values())
    assert set(balances_by_currency(entry.lines)) == {ln.amount.currency.code for ln in lines}
    per_currency: dict[str, int] = defaultdict(int)
    for (_, cur), value in balances(entry.lines).items():
        per_currency[cur] += value
    assert all(v == 0 for v in per_currency.values())
    assert entry_problems("key", entry.lines) == []


@given(balanced_lines(), st.data())
def test_an_entry_off_by_anything_cannot_be_built(lines: list[Line], data: st.DataObject
                                                  ) -> None:
    index = data.draw(st.integers(min_value=0, max_value=len(lines) - 1))
    delta = data.draw(nonzero)
    target = lines[index]
    assume(target.amount.amount_minor + delta != 0)
    broken = list(lines)
    broken[index] = Line(target.account,
                         Money(target.amount.amount_minor + delta, target.amount.currency))
    with pytest.raises(ValidationError) as caught:
        JournalEntry.build("key", "test", broken)
    assert code_of(caught) is ErrorCode.UNBALANCED_ENTRY
    assert target.amount.currency.code in caught.value.message
    with pytest.raises(ValidationError):
        JournalEntry("key", "test", tuple(broken))


def test_balanced_in_total_is_not_balanced_per_currency() -> None:
    bank, fees = Account(AccountType.BANK), Account(AccountType.FEE_INCOME)
    with pytest.raises(ValidationError) as caught:
        JournalEntry.build("k", "fx", [Line(bank, Money(100, CNY)), Line(fees, Money(-100, USD))])
    assert code_of(caught) is ErrorCode.UNBALANCED_ENTRY
    assert "CNY" in caught.value.message and "USD" in caught.value.message


def test_zero_one_and_too_many_lines_are_refused() -> None:
    bank, fees = Account(AccountType.BANK), Account(AccountType.FEE_INCOME)
    with pytest.raises(ValidationError) as caught:
        JournalEntry.build("k", "empty", [])
    assert code_of(caught) is ErrorCode.INVALID_ENTRY
    with pytest.raises(ValidationError):
        JournalEntry("k", "one", (Line(bank, Money(0)),))
    with pytest.raises(ValidationError) as caught:
        JournalEntry("k", "zero lines", (Line(bank, Money(0)), Line(fees, Money(0))))
    assert "zero" in caught.value.message
    # build() nets zero lines away, so only a real entry is left, or none
    assert len(JournalEntry.build("k", "t", [
        Line(bank, Money(0)), Line(bank, Money(5)), Line(fees, Money(-5))]).lines) == 2
    debits = [Line(Account(AccountType.MERCHANT_PAYABLE, f"{n:015d}"), Money(1))
              for n in range(ENTRY_LINES_MAX)]
    with pytest.raises(ValidationError) as caught:
        JournalEntry.build("k", "many", [*debits, Line(fees, Money(-len(debits)))])
    assert "at most" in caught.value.message
    fewer = debits[1:]
    assert len(JournalEntry.build("k", "just enough",
                                  [*fewer, Line(fees, Money(-len(fewer)))]).lines) == \
        ENTRY_LINES_MAX


@pytest.mark.parametrize("key", ["", "k" * (IDEMPOTENCY_KEY_LENGTH_MAX + 1)])
def test_idempotency_key_is_required_and_bounded(key: str) -> None:
    with pytest.raises(ValidationError) as caught:
        transfer(key, "sale", Account(AccountType.BANK), Account(AccountType.FEE_INCOME),
                 Money(1))
    assert code_of(caught) is ErrorCode.INVALID_ENTRY


def test_lines_on_one_account_are_netted() -> None:
    receivable = Account(AccountType.CHANNEL_RECEIVABLE)
    unsettled = Account(AccountType.MERCHANT_UNSETTLED, MID)
    entry = JournalEntry.build("k", "sale", [
        Line.debit(receivable, Money(700)), Line.debit(receivable, Money(300)),
        Line.credit(unsettled, Money(400)), Line.credit(unsettled, Money(600)),
        Line.debit(receivable, Money(5, USD)), Line.credit(unsettled, Money(5, USD)),
    ])
    assert sorted((ln.account.code, ln.amount.currency.code, ln.amount.amount_minor)
                  for ln in entry.lines) == [
        ("channel_receivable", "CNY", 1000), ("channel_receivable", "USD", 5),
        (f"merchant_unsettled:{MID}", "CNY", -1000), (f"merchant_unsettled:{MID}", "USD", -5),
    ]
    # lines that cancel out leave nothing to post
    with pytest.raises(ValidationError) as caught:
        JournalEntry.build("k", "nothing", [Line.debit(receivable, Money(1)),
                                            Line.credit(receivable, Money(1))])
    assert code_of(caught) is ErrorCode.INVALID_ENTRY


@given(st.integers(min_value=1, max_value=10**15))
def test_transfer_is_one_debit_and_one_credit(fen: int) -> None:
    entry = transfer("k", "sale", Account(AccountType.CHANNEL_RECEIVABLE),
                     Account(AccountType.MERCHANT_UNSETTLED, MID), Money(fen), MID, "ref")
    assert balances(entry.lines) == {("channel_receivable", "CNY"): fen,
                                     (f"merchant_unsettled:{MID}", "CNY"): -fen}
    assert entry.merchant_id == MID and entry.reference == "ref"


@pytest.mark.parametrize("fen", [0, -1])
def test_transfer_amount_must_be_positive(fen: int) -> None:
    with pytest.raises(ValidationError) as caught:
        transfer("k", "sale", Account(AccountType.BANK), Account(AccountType.FEE_INCOME),
                 Money(fen))
    assert code_of(caught) is ErrorCode.INVALID_ENTRY


def test_credit_and_debit_signs() -> None:
    bank = Account(AccountType.BANK)
    assert Line.debit(bank, Money(5)).amount.amount_minor == 5
    assert Line.credit(bank, Money(5)).amount.amount_minor == -5


# -- accounts -------------------------------------------------------------------------------
@given(accounts)
def test_account_code_round_trips(account: Account) -> None:
    assert Account.parse(account.code) == account
    assert str(account) == account.code
    assert account.kind is ACCOUNT_KINDS[account.type]


def test_every_account_type_has_a_kind() -> None:
    assert set(ACCOUNT_KINDS) == set(AccountType)
    assert Account(AccountType.MERCHANT_PAYABLE, MID).code == f"merchant_payable:{MID}"
    assert Account(AccountType.FEE_INCOME).kind is AccountKind.INCOME


@pytest.mark.parametrize("code", ["", "cash", "merchant_payable", "merchant_payable:",
                                  "fee_income:898310054110001", "BANK", " bank"])
def test_bad_account_codes_are_refused(code: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Account.parse(code)
    assert code_of(caught) is ErrorCode.INVALID_ENTRY


# -- fingerprints ---------------------------------------------------------------------------
@given(balanced_lines(), st.data())
def test_fingerprint_ignores_line_order(lines: list[Line], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(lines))
    a = JournalEntry.build("k1", "t", lines, MID, "r")
    b = JournalEntry.build("k2", "t", shuffled, MID, "r")
    assert a.fingerprint() == b.fingerprint()


@given(balanced_lines())
def test_fingerprint_changes_with_content(lines: list[Line]) -> None:
    base = JournalEntry.build("k", "t", lines, MID, "r")
    variants = [
        JournalEntry.build("k", "other kind", lines, MID, "r"),
        JournalEntry.build("k", "t", lines, MID2, "r"),
        JournalEntry.build("k", "t", lines, None, "r"),
        JournalEntry.build("k", "t", lines, MID, "other"),
        JournalEntry.build("k", "t", [Line(ln.account, Money(ln.amount.amount_minor * 2,
                                                             ln.amount.currency))
                                      for ln in lines], MID, "r"),
    ]
    prints = {base.fingerprint(), *(v.fingerprint() for v in variants)}
    assert len(prints) == len(variants) + 1


def test_fingerprint_tells_accounts_and_currencies_apart() -> None:
    a, b, c = (Account(AccountType.BANK), Account(AccountType.FEE_INCOME),
               Account(AccountType.ADJUSTMENTS))
    one = JournalEntry.build("k", "t", [Line(a, Money(1)), Line(b, Money(-1))])
    other_account = JournalEntry.build("k", "t", [Line(a, Money(1)), Line(c, Money(-1))])
    other_currency = JournalEntry.build("k", "t", [Line(a, Money(1, JPY)),
                                                   Line(b, Money(-1, JPY))])
    assert len({one.fingerprint(), other_account.fingerprint(),
                other_currency.fingerprint()}) == 3
    assert one.fingerprint() == JournalEntry.build("other key", "t", one.lines).fingerprint()


# -- a textbook day -------------------------------------------------------------------------
def test_worked_example_sale_refund_settlement_payout() -> None:
    """One merchant's day, T+1, at 0.50 %: every balance checked to the fen.

    1. two sales: 100.00 and 55.55           Dr channel_receivable  Cr merchant_unsettled
    2. a partial refund of 5.55              Dr merchant_unsettled  Cr channel_receivable
    3. the channel pays us the net 150.00    Dr bank                Cr channel_receivable
    4. settlement: fee 0.50 % of 150.00      Dr merchant_unsettled  Cr merchant_payable,
                                                                    Cr fee_income
    5. the payout is sent to the bank        Dr payout_clearing     Cr bank
    6. the bank confirms the payout          Dr merchant_payable    Cr payout_clearing
    """
    receivable = Account(AccountType.CHANNEL_RECEIVABLE)
    unsettled = Account(AccountType.MERCHANT_UNSETTLED, MID)
    payable = Account(AccountType.MERCHANT_PAYABLE, MID)
    fee_income = Account(AccountType.FEE_INCOME)
    bank = Account(AccountType.BANK)
    clearing = Account(AccountType.PAYOUT_CLEARING)

    journal: list[JournalEntry] = []

    def post(entry: JournalEntry) -> dict[tuple[str, str], int]:
        journal.append(entry)
        return {k: v for k, v in balances(ln for e in journal for ln in e.lines).items()
                if v != 0}

    post(transfer("sale-1", "sale", receivable, unsettled, Money.parse("100.00"), MID))
    post(transfer("sale-2", "sale", receivable, unsettled, Money.parse("55.55"), MID))
    after_sales = post(transfer("refund-1", "refund", unsettled, receivable,
                                Money.parse("5.55"), MID))
    assert after_sales == {("channel_receivable", "CNY"): 15_000,
                           (unsettled.code, "CNY"): -15_000}

    after_funds = post(transfer("funds-1", "channel_funds", bank, receivable, Money(15_000)))
    assert after_funds == {("bank", "CNY"): 15_000, (unsettled.code, "CNY"): -15_000}

    gross = Money(-after_funds[(unsettled.code, "CNY")])
    fee = apply_rate(gross, Decimal("0.005"))
    assert fee == Money(75)
    net = gross - fee
    after_settlement = post(JournalEntry.build("settle-1", "settlement", [
        Line.debit(unsettled, gross), Line.credit(payable, net), Line.credit(fee_income, fee),
    ], MID))
    assert after_settlement == {("bank", "CNY"): 15_000, (payable.code, "CNY"): -14_925,
                                ("fee_income", "CNY"): -75}

    post(transfer("payout-1", "payout", clearing, bank, net, MID))
    final = post(transfer("payout-1-ok", "payout_confirmed", payable, clearing, net, MID))
    # all that is left: our fee, sitting in the bank
    assert final == {("bank", "CNY"): 75, ("fee_income", "CNY"): -75}
    assert balances_by_currency(ln for e in journal for ln in e.lines) == {"CNY": 0}
    assert Money(final[("bank", "CNY")]).format() == "0.75"


# -- a random sequence of postings ----------------------------------------------------------
class LedgerMachine(RuleBasedStateMachine):
    """Random transfers between random accounts: the books balance after every step, and
    each account's derived balance equals a plain running total kept beside them."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[Line] = []
        self.expected: dict[tuple[str, str], int] = defaultdict(int)
        self.count = 0

    @rule(debit=accounts, credit=accounts, fen=st.integers(min_value=1, max_value=10**12),
          cur=st.sampled_from(CURRENCIES))
    def post_transfer(self, debit: Account, credit: Account, fen: int, cur: object) -> None:
        self.count += 1
        money = Money(fen, cur)  # type: ignore[arg-type]
        if debit == credit:
            with pytest.raises(ValidationError):
                transfer(f"k{self.count}", "t", debit, credit, money)
            return
        entry = transfer(f"k{self.count}", "t", debit, credit, money)
        self.lines.extend(entry.lines)
        self.expected[(debit.code, money.currency.code)] += fen
        self.expected[(credit.code, money.currency.code)] -= fen

    @invariant()
    def books_balance(self) -> None:
        assert all(v == 0 for v in balances_by_currency(self.lines).values())

    @invariant()
    def balances_are_the_running_totals(self) -> None:
        derived = balances(self.lines)
        assert {k: v for k, v in derived.items() if v} == \
            {k: v for k, v in self.expected.items() if v}


LedgerMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=20)
test_ledger_machine = LedgerMachine.TestCase
