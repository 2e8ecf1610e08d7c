"""A process killed (SIGKILL) while a sale waits on the issuer: after restart, no money moved.

The child (payment_crash_child.py) commits its pending record, sends the sale to the issuer
simulator, which applies the debit and then sits on its answer. Once the debit shows at the
simulator the child is killed, so it never learns the answer and never reverses anything.
A fresh context on the same database and simulator files, with a clock past the channel
deadline, must then find the record stuck, reverse it here and at the issuer, and leave the
card, the merchant's balance and the ledger as if the sale had never been attempted.

Runs on SQLite (a file in tmp_path) and, when configured, on PostgreSQL (the db_url fixture).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from autosettle.config import Settings
from autosettle.domain.cards import luhn_check_digit
from autosettle.domain.merchants import AccountType, MerchantType
from autosettle.domain.payment_records import TransactionRecord
from autosettle.services import merchants, reversals
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.simulators.issuer import IssuerSimulator
from autosettle.store.tables import transactions
from autosettle.store.uow import Database

CHILD = Path(__file__).with_name("payment_crash_child.py")
MID = "898310054110001"
TID = "HL000001"
PIN = "123456"
PAN_BODY = "622202000000000001"
PAN = PAN_BODY + luhn_check_digit(PAN_BODY)
BALANCE_MINOR = 100_000
SALE_MINOR = 4_321
DEBIT_SEEN_S_MAX = 30.0
POLL_S = 0.05
PAN_KEY = "11" * 32
DATA_KEY = "22" * 32


def _seed(ctx: ServiceContext, sim: IssuerSimulator) -> None:
    merchants.create_merchant(ctx, SYSTEM, merchants.NewMerchant(
        MID, "Hualian Supermarket Co., Ltd.", MerchantType.ENTERPRISE, "5411"))
    merchants.add_settlement_account(ctx, SYSTEM, MID, merchants.NewSettlementAccount(
        "ICBC", "6212260200001234567", "Hualian Supermarket Co., Ltd.", AccountType.CORPORATE))
    merchants.add_terminal(ctx, SYSTEM, MID, merchants.NewTerminal(TID))
    sim.add_card(PAN, balance_minor=BALANCE_MINOR, pin=PIN)


def _pending_sale(db: Database) -> TransactionRecord | None:
    with db.unit_of_work() as uow:
        row = uow.connection.execute(select(transactions.c.txn_id).where(
            transactions.c.merchant_id == MID)).first()
        return uow.transactions.get(MID, row.txn_id) if row else None


def _start_child(db_url: str, sim_url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), db_url, sim_url, PAN, PIN, MID, TID, str(SALE_MINOR),
         PAN_KEY, DATA_KEY],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _wait_for_debit(child: subprocess.Popen[str], sim: IssuerSimulator, db: Database) -> str:
    """Block until the simulator has applied the debit; returns the sale's txn id."""
    deadline = time.monotonic() + DEBIT_SEEN_S_MAX
    while time.monotonic() < deadline:
        if child.poll() is not None:
            _, err = child.communicate()
            raise AssertionError(f"the child ended early ({child.returncode}): {err}")
        record = _pending_sale(db)
        if record is not None and sim.auth_state(record.txn_id) == "applied":
            assert sim.card(PAN).balance_minor == BALANCE_MINOR - SALE_MINOR
            return record.txn_id
        time.sleep(POLL_S)
    child.kill()
    raise AssertionError("the simulator never applied the sale")


def test_sigkill_while_waiting_on_the_issuer_ends_reversed(
        ctx: ServiceContext, sim: IssuerSimulator, db_url: str, tmp_path: Path) -> None:
    _seed(ctx, sim)
    sim_url = f"sqlite:///{tmp_path / 'issuer-sim.db'}"
    child = _start_child(db_url, sim_url)
    try:
        txn_id = _wait_for_debit(child, sim, ctx.db)
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=10)
    assert child.returncode == -signal.SIGKILL

    stuck = _pending_sale(ctx.db)
    assert stuck is not None and stuck.status == "pending" and stuck.response_code is None

    # A restarted process: new engine, new simulator handle, a clock past every deadline.
    later = max(datetime.now(UTC), ctx.now()) + timedelta(hours=1)
    settings = Settings(data_dir=tmp_path / "restart", database_url=db_url,
                        issuer_sim_url=sim_url, pan_token_key=PAN_KEY,
                        data_key=DATA_KEY)
    issuer = IssuerSimulator(sim_url)
    restarted = ServiceContext(settings=settings, db=Database(db_url), clock=lambda: later,
                               channel=issuer)
    try:
        assert reversals.recover_stuck(restarted) == 1
        reversals.process_reversals(restarted)
        assert reversals.recover_stuck(restarted) == 0, "recovery is idempotent"

        with restarted.db.unit_of_work() as uow:
            record = uow.transactions.get(MID, txn_id)
            queued = uow.reversals.get(MID, txn_id)
            imbalance = uow.ledger.imbalance_by_currency()
            unsettled = -uow.ledger.balance(f"merchant_unsettled:{MID}", "CNY")
            entries = uow.ledger.entry_count()
        assert record is not None and record.status == "reversed"
        assert record.response_code == "98"
        assert queued is not None and queued.state == "acknowledged"
        assert issuer.auth_state(txn_id) == "reversed"
        assert issuer.card(PAN).balance_minor == BALANCE_MINOR
        assert issuer.card(PAN).held_minor == 0
        assert all(v == 0 for v in imbalance.values())
        assert unsettled == 0
        assert entries == 0, "a sale that never got its answer posts nothing"
    finally:
        issuer.close()
        restarted.db.dispose()
