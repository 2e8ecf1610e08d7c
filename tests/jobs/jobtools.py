"""Helpers shared by the settlement, scheduler and payment tests: merchants with verified
accounts and a terminal, captured sales made through the real payment service, the balance
of every ledger account (through the ledger service), and checks that nothing was paid
twice. On ``pythonpath`` (pyproject.toml), so every test directory can import it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select

from autosettle.domain.calendar import SHANGHAI
from autosettle.domain.ledger import MERCHANT_SCOPED, Account, AccountType
from autosettle.domain.merchants import AccountType as BankAccountType
from autosettle.domain.merchants import CycleCode, MerchantType
from autosettle.domain.money import Money
from autosettle.domain.transactions import TxnType
from autosettle.services import ledger, merchants, payments
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.services.payments import CardInput, OriginalRef, PaymentRequest
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.store.tables import payouts, settlement_batches


class ClockLike(Protocol):
    """The ``clock`` fixture (tests/conftest.py FakeClock)."""

    now: datetime

    def __call__(self) -> datetime: ...

    def advance(self, **delta: float) -> datetime: ...


SAME_DAY_SURCHARGE_MINOR = 200  # the default schedule's 2.00 CNY per T+0/D+0 payout
SALES_PAN = "6222020200112345679"  # a debit card (BIN 622202) at the issuer simulator


def shanghai(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
             second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI)


def mid(n: int) -> str:
    return f"8983100{n:08d}"


def tid(merchant_id: str) -> str:
    """The terminal :func:`add_merchant` gives a merchant."""
    return f"ST{merchant_id[-6:]}"


def add_merchant(ctx: ServiceContext, merchant_id: str, cycle: str = "T1") -> None:
    """A supermarket (MCC 5411: the discounted default price list) with a verified account
    in its own name and one terminal, :func:`tid`."""
    legal = f"Shop {merchant_id} Co., Ltd."
    merchants.create_merchant(ctx, SYSTEM, merchants.NewMerchant(
        merchant_id, legal, MerchantType.ENTERPRISE, "5411", settlement_cycle=CycleCode(cycle)))
    merchants.add_settlement_account(ctx, SYSTEM, merchant_id, merchants.NewSettlementAccount(
        "ICBC", f"62122602{merchant_id[-8:]}7", legal, BankAccountType.CORPORATE))
    merchants.add_terminal(ctx, SYSTEM, merchant_id, merchants.NewTerminal(tid(merchant_id)))


def fee_of(amount_minor: int) -> int:
    """The fee of a debit sale at a 5411 merchant on the default price list, computed here
    independently of the code: 0.41 %, rounded half up to the fen, capped at 18.00."""
    return min((amount_minor * 41 * 2 + 10_000) // 20_000, 18_00)


@contextmanager
def clock_at(ctx: ServiceContext, at: datetime) -> Iterator[None]:
    """Run the services at ``at`` (then put the context's clock back)."""
    saved = ctx.clock
    ctx.clock = lambda: at
    try:
        yield
    finally:
        ctx.clock = saved


def pay(ctx: ServiceContext, merchant_id: str, txn_type: TxnType, fen: int | None = None,
        *, pan: str | None = SALES_PAN, original: str | None = None) -> str:
    """One approved payment at the merchant's terminal (:func:`tid`) through the payment
    service, at the context's clock; its transaction id. A card payment (a sale, a
    pre-authorization) uses ``pan``, funded without limit at the issuer simulator; a void,
    refund, cancel or completion names its ``original``."""
    card = None
    if original is None and pan is not None:
        channel = ctx.channel
        assert isinstance(channel, IssuerSimulator), "card payments need the issuer simulator"
        channel.add_card(pan, balance_minor=10**12, pin=None)
        card = CardInput(pan)
    result = payments.authorize(ctx, PaymentRequest(
        txn_type, merchant_id, tid(merchant_id), Money(fen) if fen is not None else None,
        card, OriginalRef(txn_id=original) if original else None))
    assert result.approved and result.record is not None, (result.response_code,
                                                           result.message)
    return result.record.txn_id


def add_sales(ctx: ServiceContext, merchant_id: str, business_day: date,
              amounts: Sequence[int]) -> int:
    """Debit card sales at the merchant's terminal through the payment service (record,
    ledger entry and settlement item, priced by the real fee schedule), made at noon of
    ``business_day`` in Shanghai; returns their total net of fees (:func:`fee_of`)."""
    with clock_at(ctx, datetime.combine(business_day, time(12), SHANGHAI)):
        for amount in amounts:
            pay(ctx, merchant_id, TxnType.SALE, amount)
    return sum(a - fee_of(a) for a in amounts)


# -- the balance of every ledger account ----------------------------------------------------

CHANNEL_RECEIVABLE = Account(AccountType.CHANNEL_RECEIVABLE).code
CARD_HOLDS = Account(AccountType.CARD_HOLDS).code
HOLDS_CONTRA = Account(AccountType.HOLDS_CONTRA).code
FEE_INCOME = Account(AccountType.FEE_INCOME).code
PAYOUT_CLEARING = Account(AccountType.PAYOUT_CLEARING).code
BANK = Account(AccountType.BANK).code


def merchant_unsettled(merchant_id: str) -> str:
    return Account(AccountType.MERCHANT_UNSETTLED, merchant_id).code


def merchant_payable(merchant_id: str) -> str:
    return Account(AccountType.MERCHANT_PAYABLE, merchant_id).code


def merchant_receivable(merchant_id: str) -> str:
    """The merchant's debt to us."""
    return Account(AccountType.MERCHANT_RECEIVABLE, merchant_id).code


def balances(ctx: ServiceContext) -> dict[str, int]:
    """Every account with a non-zero balance: account code → minor units, debits positive
    (what we owe a merchant is negative, as in the ledger). Merchant accounts come from the
    ledger service (:func:`autosettle.services.ledger.merchant_balances`), the platform's
    own accounts from the ledger repository. Keys of accounts in another currency than CNY
    end in ``/<currency>``."""
    found: dict[str, int] = {}

    def put(code: str, cur: str, amount: int) -> None:
        if amount:
            found[code if cur == "CNY" else f"{code}/{cur}"] = amount

    cursor: str | None = None
    while True:
        page = merchants.list_merchants(ctx, SYSTEM, cursor, 100)
        for merchant in page.items:
            for row in ledger.merchant_balances(ctx, SYSTEM, merchant.merchant_id):
                put(row.account, row.currency, row.balance_minor)
        cursor = page.next_cursor
        if cursor is None:
            break
    currencies = sorted(ledger.ledger_imbalance(ctx))
    with ctx.db.unit_of_work() as uow:
        for family in AccountType:
            if family not in MERCHANT_SCOPED:
                for cur in currencies:
                    put(Account(family).code, cur, uow.ledger.balance(Account(family).code, cur))
    return found


def assert_balances(ctx: ServiceContext, expected: Mapping[str, int],
                    since: Mapping[str, int] | None = None) -> dict[str, int]:
    """Each account moved by exactly ``expected`` (account → minor units, debits positive)
    since ``since`` (a :func:`balances` taken earlier; default: the empty ledger), and every
    account not named did not move at all. ``expected`` must itself balance. Returns the
    balances now, to pass as ``since`` to the next check."""
    now = balances(ctx)
    base = since or {}
    moved = {code: now.get(code, 0) - base.get(code, 0) for code in {*now, *base}}
    moved = {code: amount for code, amount in moved.items() if amount}
    wanted = {code: amount for code, amount in expected.items() if amount}
    by_currency: dict[str, int] = {}
    for code, amount in wanted.items():
        cur = code.partition("/")[2] or "CNY"
        by_currency[cur] = by_currency.get(cur, 0) + amount
    assert all(v == 0 for v in by_currency.values()), f"expected moves do not balance: {wanted}"
    assert moved == wanted, {code: (moved.get(code, 0), wanted.get(code, 0))
                             for code in sorted({*moved, *wanted})
                             if moved.get(code, 0) != wanted.get(code, 0)}
    return now


def batches(ctx: ServiceContext, merchant_id: str | None = None) -> list[dict[str, Any]]:
    query = select(settlement_batches).order_by(settlement_batches.c.settlement_date,
                                                settlement_batches.c.batch_id)
    if merchant_id is not None:
        query = query.where(settlement_batches.c.merchant_id == merchant_id)
    with ctx.db.unit_of_work() as uow:
        return [dict(r._mapping) for r in uow.connection.execute(query)]


def batch_count(ctx: ServiceContext) -> int:
    with ctx.db.unit_of_work() as uow:
        return int(uow.connection.execute(
            select(func.count()).select_from(settlement_batches)).scalar() or 0)


def payout_total(ctx: ServiceContext, merchant_id: str | None = None) -> int:
    query = select(func.coalesce(func.sum(payouts.c.amount_minor), 0))
    if merchant_id is not None:
        query = query.where(payouts.c.merchant_id == merchant_id)
    with ctx.db.unit_of_work() as uow:
        return int(uow.connection.execute(query).scalar() or 0)


def unclaimed_items(ctx: ServiceContext) -> int:
    with ctx.db.unit_of_work() as uow:
        return int(uow.connection.execute(
            select(func.count()).select_from(uow.claims.with_cursors())
            .where(uow.claims.unsettled_condition())).scalar() or 0)


def ledger_balanced(ctx: ServiceContext) -> bool:
    with ctx.db.unit_of_work() as uow:
        return all(v == 0 for v in uow.ledger.imbalance_by_currency().values())


def at_settlement_time(ctx: ServiceContext, day: date, minutes_after: int = 0) -> datetime:
    t: time = ctx.settings.settlement_time
    return datetime.combine(day, t, SHANGHAI) + timedelta(minutes=minutes_after)


def advance_clock_to(ctx: ServiceContext, day: date, hour: int = 2) -> None:
    """Move the test's fake clock (``ctx.clock``) forward to ``hour`` o'clock on ``day`` in
    Shanghai when it is still behind: a settlement run or payout export may not be dated
    after the current business date, so a test settles a date on (or after) that date."""
    target = shanghai(day.year, day.month, day.day, hour)
    clock: Any = ctx.clock
    if clock() < target:
        clock.now = target


def cli_invoker() -> Any:
    """``invoke(*args, code=0, stdin=None)``: run the ``autosettle`` command in process with
    fresh settings (the environment a fixture set), ``stdin`` as its standard input, and
    assert its exit code (``code=None``: any; the caller looks at the result)."""
    from typer.testing import CliRunner

    from autosettle.cli import app
    from autosettle.config import get_settings

    runner = CliRunner()

    def invoke(*args: str, code: int | None = 0, stdin: str | None = None) -> Any:
        get_settings.cache_clear()
        result = runner.invoke(app, list(args), input=stdin)
        get_settings.cache_clear()
        assert code is None or result.exit_code == code, (
            args, result.stdout, result.stderr, result.exception)
        return result
    return invoke
