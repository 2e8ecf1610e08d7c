"""Helpers shared by the payment integration tests: a merchant, cards, and the two ledgers.

"Both sides" means our records and ledger on one hand and the issuer simulator's card
accounts on the other; these helpers read each so tests can check that they agree.
"""

from __future__ import annotations

from sqlalchemy import func, select

from autosettle.domain.cards import luhn_check_digit
from autosettle.domain.merchants import AccountType, CycleCode, MerchantType
from autosettle.domain.money import Money
from autosettle.domain.payment_records import TransactionQuery, TransactionRecord
from autosettle.domain.transactions import TxnType
from autosettle.services import merchants, payments
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.services.payments import CardInput, OriginalRef, PaymentRequest, PaymentResult
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.store.tables import transactions

MID = "898310054110001"
TID = "HL000001"
PIN = "123456"
SINGLE_LIMIT_MINOR = 5_000_000
OPENING_BALANCE_MINOR = 100_000


def make_pan(serial: int, bin6: str = "622202") -> str:
    """A Luhn-valid 19-digit PAN (622202 is a debit BIN in the built-in table)."""
    body = f"{bin6}{serial:012d}"
    return body + luhn_check_digit(body)


DEBIT = make_pan(1)


def seed_shop(ctx: ServiceContext, sim: IssuerSimulator | None = None,
              balance_minor: int = OPENING_BALANCE_MINOR) -> None:
    """One active merchant with a terminal and, at the simulator, the DEBIT card."""
    merchants.create_merchant(ctx, SYSTEM, merchants.NewMerchant(
        MID, "Hualian Supermarket Co., Ltd.", MerchantType.ENTERPRISE, "5411",
        settlement_cycle=CycleCode.T1, single_limit_minor=SINGLE_LIMIT_MINOR))
    merchants.add_settlement_account(ctx, SYSTEM, MID, merchants.NewSettlementAccount(
        "ICBC", "6212260200001234567", "Hualian Supermarket Co., Ltd.", AccountType.CORPORATE))
    merchants.add_terminal(ctx, SYSTEM, MID, merchants.NewTerminal(TID))
    if sim is not None:
        sim.add_card(DEBIT, balance_minor=balance_minor, pin=PIN)


def card(pan: str = DEBIT, pin: str | None = PIN, expiry: str | None = "3012") -> CardInput:
    return CardInput(pan, expiry, pin)


def sale(ctx: ServiceContext, fen: int, *, pan: str = DEBIT, pin: str | None = PIN,
         key: str | None = None, expiry: str | None = "3012",
         terminal_id: str = TID) -> PaymentResult:
    return payments.authorize(ctx, PaymentRequest(
        TxnType.SALE, MID, terminal_id, Money(fen), card(pan, pin, expiry),
        idempotency_key=key))


def preauth(ctx: ServiceContext, fen: int, *, pan: str = DEBIT,
            pin: str | None = PIN) -> PaymentResult:
    return payments.authorize(ctx, PaymentRequest(TxnType.PREAUTH, MID, TID, Money(fen),
                                                  card(pan, pin)))


def on_original(ctx: ServiceContext, txn_type: TxnType, original_txn_id: str,
                fen: int | None = None, key: str | None = None) -> PaymentResult:
    """A void, refund, completion, cancel or completion void of ``original_txn_id``."""
    return payments.authorize(ctx, PaymentRequest(
        txn_type, MID, TID, Money(fen) if fen is not None else None, None,
        OriginalRef(txn_id=original_txn_id), idempotency_key=key))


def txn_id(result: PaymentResult) -> str:
    """The id of the record a result carries (the test fails if there is none)."""
    if result.record is None:
        raise AssertionError(f"no record: {result.response_code} {result.message}")
    return result.record.txn_id


def imbalance(ctx: ServiceContext) -> dict[str, int]:
    """Sum of all ledger lines per currency (all zero in a healthy ledger)."""
    with ctx.db.unit_of_work() as uow:
        return uow.ledger.imbalance_by_currency()


def assert_ledger_balanced(ctx: ServiceContext) -> None:
    with ctx.db.unit_of_work() as uow:
        assert all(v == 0 for v in uow.ledger.imbalance_by_currency().values()), \
            uow.ledger.imbalance_by_currency()
        assert uow.ledger.unbalanced_entries() == []


def unsettled(ctx: ServiceContext, merchant_id: str = MID) -> int:
    """What we owe the merchant (the credit balance of merchant_unsettled)."""
    with ctx.db.unit_of_work() as uow:
        return -uow.ledger.balance(f"merchant_unsettled:{merchant_id}", "CNY")


def entry_count(ctx: ServiceContext) -> int:
    with ctx.db.unit_of_work() as uow:
        return uow.ledger.entry_count()


def all_records(ctx: ServiceContext) -> list[TransactionRecord]:
    with ctx.db.unit_of_work() as uow:
        return uow.transactions.search(TransactionQuery(merchant_id=MID), None, 500)


def record_count(ctx: ServiceContext) -> int:
    with ctx.db.unit_of_work() as uow:
        return int(uow.connection.execute(
            select(func.count()).select_from(transactions)).scalar() or 0)


def get_record(ctx: ServiceContext, txn: str) -> TransactionRecord:
    with ctx.db.unit_of_work() as uow:
        found = uow.transactions.get(MID, txn)
    assert found is not None
    return found
