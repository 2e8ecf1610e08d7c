"""Ledger balance checkpoints on both databases (docs/ledger.md, "Balance checkpoints"):
every balance read through a checkpoint equals the full sum of the journal lines, whatever
the order of postings, rollbacks and checkpoints; a tampered checkpoint is detected."""

from __future__ import annotations

import itertools
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jobtools import (
    CHANNEL_RECEIVABLE,
    FEE_INCOME,
    add_merchant,
    add_sales,
    assert_balances,
    balances,
    fee_of,
    merchant_unsettled,
    mid,
)
from sqlalchemy import func, select, update

from autosettle.domain.ledger import Account, AccountType, JournalEntry, transfer
from autosettle.domain.money import Money, currency
from autosettle.jobs import ledger as ledger_jobs
from autosettle.services import alerts, ledger
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.store.ledger import LedgerRepository
from autosettle.store.tables import journal_lines, ledger_checkpoints

A, B = mid(1), mid(2)
DAY = date(2026, 9, 14)
_KEYS = itertools.count()

ACCOUNTS = [Account(AccountType.CHANNEL_RECEIVABLE), Account(AccountType.FEE_INCOME),
            Account(AccountType.PAYOUT_CLEARING)] + [
    Account(family, m) for m in (A, B)
    for family in (AccountType.MERCHANT_UNSETTLED, AccountType.MERCHANT_PAYABLE,
                   AccountType.MERCHANT_RECEIVABLE)]


def full_sums(ctx: ServiceContext) -> dict[tuple[str, str], int]:
    """Every account's balance the old way: the sum of all its lines."""
    j = journal_lines.c
    with ctx.db.unit_of_work() as uow:
        rows = uow.connection.execute(select(j.account_code, j.currency, func.sum(j.amount_minor))
                                      .group_by(j.account_code, j.currency))
        return {(r[0], r[1]): int(r[2]) for r in rows}


def assert_reads_equal_full_sums(ctx: ServiceContext) -> None:
    """Every read path (all accounts, one merchant's, one account's) through the
    checkpoints gives the full sums."""
    expected = full_sums(ctx)
    with ctx.db.unit_of_work() as uow:
        codes = sorted({code for code, _ in expected})
        assert uow.ledger.account_balances(codes) == expected
        assert uow.settlement.account_balances(codes) == expected
        for (code, cur), amount in expected.items():
            assert uow.ledger.balance(code, cur) == amount
        for merchant_id in (A, B):
            mine = {(r.account_code, r.currency): r.balance_minor
                    for r in uow.ledger.balances_for_merchant(merchant_id)}
            assert mine == {k: v for k, v in expected.items()
                            if k[0].endswith(f":{merchant_id}")}


def entry(debit: int, credit: int, fen: int, code: str) -> JournalEntry:
    dr, cr = ACCOUNTS[debit], ACCOUNTS[credit]
    return transfer(f"cp-{next(_KEYS)}", "test", dr, cr, Money(fen, currency(code)),
                    merchant_id=dr.merchant_id or cr.merchant_id)


Plan = list[tuple[str, list[tuple[int, int, int, str]]]]
postings = st.lists(st.tuples(st.integers(0, len(ACCOUNTS) - 1),
                              st.integers(0, len(ACCOUNTS) - 1),
                              st.integers(1, 10**9), st.sampled_from(["CNY", "USD"]))
                    .filter(lambda p: p[0] != p[1]), min_size=0, max_size=4)
steps = st.lists(st.one_of(
    st.tuples(st.just("post"), postings),
    st.tuples(st.just("rollback"), postings),
    st.tuples(st.just("checkpoint"), postings),  # posts between the mark and the write
    st.tuples(st.just("checkpoint_now"), st.just([])),
), min_size=1, max_size=8)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps)
def test_reads_through_checkpoints_equal_full_sums(ctx: ServiceContext, plan: Plan) -> None:
    for action, posts in plan:
        entries = [entry(*p) for p in posts]
        if action == "post":
            ledger.post_many(ctx, entries)
        elif action == "rollback":
            with pytest.raises(RuntimeError), ctx.db.unit_of_work() as uow:
                for e in entries:
                    uow.ledger.post(e, ctx.now())
                raise RuntimeError("rolled back")
        elif action == "checkpoint":
            # The mark is taken, entries are posted (above it), then the checkpoint is
            # written at the mark: they must count once, as lines above the mark.
            with ctx.db.unit_of_work() as uow:
                mark = uow.ledger.safe_high_water_mark(5.0)
            assert mark is not None
            ledger.post_many(ctx, entries)
            with ctx.db.unit_of_work() as uow:
                uow.ledger.write_checkpoint(mark, ctx.now())
        else:
            ledger.checkpoint(ctx)
        assert_reads_equal_full_sums(ctx)
    assert ledger.verify_checkpoint(ctx).ok


def test_checkpoint_is_idempotent_and_keeps_two(ctx: ServiceContext) -> None:
    assert ledger.checkpoint(ctx).through_entry_id == 0  # empty ledger: nothing to write
    marks = []
    for fen in (100, 200, 300):
        ledger.post(ctx, entry(0, 3, fen, "CNY"))
        first = ledger.checkpoint(ctx)
        again = ledger.checkpoint(ctx)
        assert first.created and not again.created
        assert again.through_entry_id == first.through_entry_id
        marks.append(first.through_entry_id)
    with ctx.db.unit_of_work() as uow:
        kept = sorted(set(uow.connection.execute(
            select(ledger_checkpoints.c.through_entry_id)).scalars()))
    assert kept == marks[-2:]  # older checkpoints are derived: pruned
    assert_reads_equal_full_sums(ctx)


def test_sales_and_settlement_balances_through_checkpoints(ctx: ServiceContext) -> None:
    add_merchant(ctx, A)
    before = balances(ctx)
    net = add_sales(ctx, A, DAY, [10000, 2500])
    ledger.checkpoint(ctx)
    seen = assert_balances(ctx, {CHANNEL_RECEIVABLE: 12500, merchant_unsettled(A): -12500},
                           since=before)
    more = add_sales(ctx, A, DAY, [700])  # after the checkpoint: lines above its mark
    assert_balances(ctx, {CHANNEL_RECEIVABLE: 700, merchant_unsettled(A): -700}, since=seen)
    ledger.checkpoint(ctx)
    assert_balances(ctx, {CHANNEL_RECEIVABLE: 13200, merchant_unsettled(A): -13200},
                    since=before)
    assert net + more == 13200 - fee_of(10000) - fee_of(2500) - fee_of(700)
    assert FEE_INCOME not in balances(ctx)  # no settlement yet: no fee booked
    assert ledger.verify_checkpoint(ctx).ok
    assert_reads_equal_full_sums(ctx)


def test_verify_detects_a_tampered_checkpoint(ctx: ServiceContext) -> None:
    ledger.post(ctx, entry(0, 3, 5000, "CNY"))
    written = ledger.checkpoint(ctx)
    assert ledger.verify_checkpoint(ctx).ok
    with ctx.db.unit_of_work() as uow:
        uow.connection.execute(
            update(ledger_checkpoints)
            .where(ledger_checkpoints.c.account_code == ACCOUNTS[3].code)
            .values(balance_minor=ledger_checkpoints.c.balance_minor + 1))
    result = ledger.verify_checkpoint(ctx)
    assert not result.ok and result.through_entry_id == written.through_entry_id
    assert [(m.account_code, m.checkpoint_minor, m.lines_minor) for m in result.mismatches] \
        == [(ACCOUNTS[3].code, -4999, -5000)]
    raised = alerts.list_alerts(ctx, SYSTEM)
    assert [a.kind for a in raised] == [ledger.CHECKPOINT_MISMATCH]
    with ctx.db.unit_of_work() as uow:  # never a silent fix: left as found
        assert uow.ledger.balance(ACCOUNTS[3].code, "CNY") == -4999
    ledger.verify_checkpoint(ctx)  # the same mismatch again: one alert (deduplicated)
    assert len(alerts.list_alerts(ctx, SYSTEM)) == 1


def test_checkpoint_job_runs_once_per_slot_and_verifies(ctx: ServiceContext) -> None:
    ledger.post(ctx, entry(0, 3, 4200, "CNY"))
    scheduler = ledger_jobs.build_scheduler(ctx, owner="s1")
    report = scheduler.tick()
    assert sorted(o.job_name for o in report.ran()) == [ledger_jobs.JOB_CHECKPOINT,
                                                        ledger_jobs.JOB_VERIFY]
    assert scheduler.tick().ran() == []  # same slot, same day: done
    with ctx.db.unit_of_work() as uow:
        assert uow.ledger.newest_checkpoint() > 0
    assert_reads_equal_full_sums(ctx)


def test_mark_waits_for_a_lower_id_in_flight(ctx: ServiceContext) -> None:
    """PostgreSQL commits ids in any order: while a transaction holding a lower id is open,
    no checkpoint covers the higher, committed one."""
    if ctx.db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers: no id is ever in flight below a committed one")
    # A connection of its own (a unit of work is one per thread), like another process's.
    with ctx.db.engine.connect() as conn, conn.begin():
        low = LedgerRepository(conn).post(entry(0, 3, 111, "CNY"), ctx.now())  # not committed
        high = ledger.post(ctx, entry(0, 3, 222, "CNY"))  # committed
        assert high.entry_id > low.entry_id
        assert ledger.checkpoint(ctx, wait_s=0.3).waited_out
        with ctx.db.unit_of_work() as uow:
            assert uow.ledger.newest_checkpoint() == 0
    written = ledger.checkpoint(ctx, wait_s=0.3)
    assert written.created and written.through_entry_id == high.entry_id
    assert_reads_equal_full_sums(ctx)
    with ctx.db.unit_of_work() as uow:
        assert uow.ledger.balance(ACCOUNTS[3].code, "CNY") == -333


def test_mark_does_not_wait_for_a_transaction_in_another_database(
        ctx: ServiceContext) -> None:
    """A snapshot lists the whole server's open transactions; one in another database (a
    neighbour on a shared server, another test worker) cannot write our journal and must
    not stall the checkpoint."""
    if ctx.db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no other databases in its snapshots")
    from sqlalchemy import create_engine, text

    other_name = f"{ctx.db.engine.url.database}_neighbour"
    admin = create_engine(ctx.db.engine.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{other_name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{other_name}"'))
    other = create_engine(ctx.db.engine.url.set(database=other_name))
    try:
        with other.connect() as conn, conn.begin():
            conn.execute(text("CREATE TABLE busy (n int)"))  # holds an xid, uncommitted
            assert conn.execute(text("SELECT pg_current_xact_id_if_assigned()")).scalar()
            high = ledger.post(ctx, entry(0, 3, 222, "CNY"))
            written = ledger.checkpoint(ctx, wait_s=0.3)
            assert not written.waited_out
            assert written.created and written.through_entry_id == high.entry_id
    finally:
        other.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{other_name}" WITH (FORCE)'))
        admin.dispose()
    assert_reads_equal_full_sums(ctx)


def test_checkpoint_after_a_settlement_run_fits_the_lease_table(ctx: ServiceContext) -> None:
    """The run key after the longest real settlement key stays within the lease table's
    limit (a longer one failed the job at every tick of `make run`)."""
    from datetime import UTC, datetime

    from autosettle.jobs.settlement import JOB_INTRADAY, intraday_key
    from autosettle.services import leases

    key = intraday_key(datetime(2026, 9, 18, 2, 30, tzinfo=UTC))
    assert leases.run_once(ctx, JOB_INTRADAY, key, lambda: {}).status == "done"
    ledger.post(ctx, entry(0, 3, 4200, "CNY"))
    report = ledger_jobs.build_scheduler(ctx, owner="s1").tick()
    after = [o for o in report.ran() if o.run_key == ledger_jobs.after_run_key(JOB_INTRADAY, key)]
    assert len(after) == 1 and after[0].status == "done"
    assert len(after[0].run_key) <= leases.RUN_KEY_LENGTH_MAX
