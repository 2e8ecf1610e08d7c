"""The ledger store on both databases: idempotency, atomicity, database-side guards."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import DBAPIError

from autosettle.domain.access_records import AuditEvent
from autosettle.domain.errors import ConflictError, ErrorCode
from autosettle.domain.ledger import Account, AccountType, transfer
from autosettle.domain.money import Money
from autosettle.services import ledger
from autosettle.services.context import ServiceContext
from autosettle.store.tables import journal_entries, journal_lines

MID = "898310054110001"
RECEIVABLE = Account(AccountType.CHANNEL_RECEIVABLE)
UNSETTLED = Account(AccountType.MERCHANT_UNSETTLED, MID)


def sale(key: str, fen: int) -> object:
    return transfer(key, "sale", RECEIVABLE, UNSETTLED, Money(fen), merchant_id=MID)


def test_post_and_derive_balances(ctx: ServiceContext) -> None:
    ledger.post(ctx, transfer("k1", "sale", RECEIVABLE, UNSETTLED, Money(1000), MID))
    ledger.post(ctx, transfer("k2", "sale", RECEIVABLE, UNSETTLED, Money(234), MID))
    with ctx.db.unit_of_work() as uow:
        assert uow.ledger.balance(UNSETTLED.code, "CNY") == -1234
        assert uow.ledger.balance(RECEIVABLE.code, "CNY") == 1234
        assert uow.ledger.imbalance_by_currency() == {"CNY": 0}
        assert uow.ledger.unbalanced_entries() == []


def test_same_key_twice_returns_first_entry(ctx: ServiceContext) -> None:
    first = ledger.post(ctx, transfer("dup", "sale", RECEIVABLE, UNSETTLED, Money(500), MID))
    again = ledger.post(ctx, transfer("dup", "sale", RECEIVABLE, UNSETTLED, Money(500), MID))
    assert first.created and not again.created
    assert again.entry_id == first.entry_id
    with ctx.db.unit_of_work() as uow:
        assert uow.ledger.entry_count() == 1
        assert uow.ledger.balance(RECEIVABLE.code, "CNY") == 500


def test_same_key_different_content_is_a_conflict(ctx: ServiceContext) -> None:
    ledger.post(ctx, transfer("k", "sale", RECEIVABLE, UNSETTLED, Money(500), MID))
    with pytest.raises(ConflictError) as caught:
        ledger.post(ctx, transfer("k", "sale", RECEIVABLE, UNSETTLED, Money(501), MID))
    assert caught.value.code is ErrorCode.IDEMPOTENCY_CONFLICT


def test_rollback_midway_leaves_nothing(ctx: ServiceContext) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), ctx.db.unit_of_work() as uow:
        uow.ledger.post(transfer("a", "sale", RECEIVABLE, UNSETTLED, Money(1), MID), ctx.now())
        uow.ledger.post(transfer("b", "sale", RECEIVABLE, UNSETTLED, Money(2), MID), ctx.now())
        raise Boom
    with ctx.db.unit_of_work() as uow:
        assert uow.ledger.entry_count() == 0
        assert uow.ledger.imbalance_by_currency() == {}


def test_journal_is_append_only(ctx: ServiceContext) -> None:
    ledger.post(ctx, transfer("k", "sale", RECEIVABLE, UNSETTLED, Money(500), MID))
    with ctx.db.unit_of_work() as uow:
        uow.audit.append(AuditEvent(ctx.now(), "tester", "test", "ledger", "test", "ok"))
    for statement in ("UPDATE journal_lines SET amount_minor = 1",
                      "DELETE FROM journal_lines", "DELETE FROM journal_entries",
                      "UPDATE audit_log SET actor = 'x'"):
        with pytest.raises(DBAPIError), ctx.db.unit_of_work() as uow:
            uow.connection.execute(text(statement))
    with ctx.db.unit_of_work() as uow:
        assert uow.ledger.balance(RECEIVABLE.code, "CNY") == 500
        assert len(uow.audit.recent()) == 1


def test_zero_line_rejected_by_check_constraint(ctx: ServiceContext) -> None:
    with pytest.raises(DBAPIError), ctx.db.unit_of_work() as uow:
        entry_id = uow.connection.execute(insert(journal_entries).values(
            idempotency_key="raw", fingerprint="x", kind="raw", created_at=ctx.now())
            .returning(journal_entries.c.entry_id)).scalar()
        uow.connection.execute(insert(journal_lines).values(
            entry_id=entry_id, account_code="bank", currency="CNY", amount_minor=0))


def test_postgres_rejects_unbalanced_entry_at_commit(ctx: ServiceContext) -> None:
    if not ctx.db.is_postgres:
        pytest.skip("the deferred balance trigger exists on PostgreSQL only")
    with pytest.raises(DBAPIError, match="does not balance"), ctx.db.unit_of_work() as uow:
        entry_id = uow.connection.execute(insert(journal_entries).values(
            idempotency_key="raw", fingerprint="x", kind="raw", created_at=ctx.now())
            .returning(journal_entries.c.entry_id)).scalar()
        uow.connection.execute(insert(journal_lines), [
            {"entry_id": entry_id, "account_code": "bank", "currency": "CNY",
             "amount_minor": 100},
            {"entry_id": entry_id, "account_code": "fee_income", "currency": "CNY",
             "amount_minor": -99},
        ])
    with ctx.db.unit_of_work() as uow:
        assert uow.ledger.entry_count() == 0


def test_concurrent_posts_with_one_key_give_one_entry(ctx: ServiceContext) -> None:
    if not ctx.db.is_postgres:
        pytest.skip("true concurrency is a PostgreSQL property (SQLite serialises writers)")
    barrier = threading.Barrier(8)
    results: list[object] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(ledger.post(ctx, transfer("race", "sale", RECEIVABLE, UNSETTLED,
                                                     Money(700), MID)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sum(1 for r in results if r.created) == 1  # type: ignore[attr-defined]
    with ctx.db.unit_of_work() as uow:
        assert uow.ledger.entry_count() == 1
        assert uow.ledger.balance(RECEIVABLE.code, "CNY") == 700
