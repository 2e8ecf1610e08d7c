"""Hypothesis drives random payment sequences against the issuer simulator (SQLite).

Sales, pre-authorizations, voids, partial refunds, completions, cancels, completion voids,
reversals (冲正), batch closes and issuer faults in any order, on two cards. After every step
both sides must agree:

* the ledger balances (every currency sums to zero, every entry balances);
* each card at the simulator shows what our approved records say it should: the opening
  balance less what was captured plus what was given back, and the holds of the
  pre-authorizations still open;
* the merchant's unsettled balance is what was captured less what was voided or refunded;
* no refund exceeds its sale: ``refunded_minor`` is the sum of its approved refunds and
  stays within the amount;
* every record's status agrees with its children (a voided sale has exactly one approved
  void, a completed pre-authorization exactly one approved completion, ...);
* nothing is left pending, neither a record nor a reversal for the issuer.

Each example gets a fresh database (a copy of the migrated template) and a fresh simulator.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)
from paytools import MID, PIN, TID, make_pan, seed_shop

from autosettle.config import Settings
from autosettle.domain.ledger import Account, AccountType
from autosettle.domain.money import Money
from autosettle.domain.payment_records import TransactionQuery, TransactionRecord
from autosettle.domain.response_codes import RESPONSE_TABLE
from autosettle.domain.response_codes import ResponseCode as RC
from autosettle.domain.transactions import TxnType
from autosettle.services import payments, reversals
from autosettle.services.context import ServiceContext
from autosettle.services.payments import CardInput, OriginalRef, PaymentRequest, PaymentResult
from autosettle.simulators.issuer import FaultKind, IssuerSimulator
from autosettle.store.uow import Database

DEBIT = make_pan(11)
CREDIT = make_pan(12, bin6="625802")
CARDS = {DEBIT: (100_000, 0), CREDIT: (0, 80_000)}
"""PAN → (opening balance, credit limit) in fen."""
AMOUNTS = st.integers(min_value=1, max_value=60_000)
CAPTURES = frozenset({"sale", "completion"})
RETURNS = frozenset({"void", "completion_void", "refund"})
NEVER = frozenset({RC.SYSTEM_MALFUNCTION, RC.FORMAT_ERROR})
"""Codes no step here may produce: 96 means a request got lost in flight, 30 a bad request."""


class PaymentsMachine(RuleBasedStateMachine):
    template: ClassVar[Path]
    workdir: ClassVar[Path]

    captures = Bundle("captures")
    """Sales and completions (whatever their answer): originals for voids and refunds."""
    preauths = Bundle("preauths")
    completions = Bundle("completions")
    records = Bundle("records")
    """Every record, for reversals."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(dir=self.workdir))
        shutil.copyfile(self.template, self.dir / "autosettle.db")
        db_url = f"sqlite:///{self.dir / 'autosettle.db'}"
        self.sim = IssuerSimulator(f"sqlite:///{self.dir / 'issuer-sim.db'}")
        self.now = datetime(2026, 9, 18, 2, 0, tzinfo=UTC)
        config = Settings(data_dir=self.dir, database_url=db_url, pan_token_key="11" * 32,
                          data_key="22" * 32)
        self.ctx = ServiceContext(settings=config, db=Database(db_url),
                                  clock=lambda: self.now, channel=self.sim)
        seed_shop(self.ctx)
        for pan, (balance, limit) in CARDS.items():
            self.sim.add_card(pan, balance_minor=balance, credit_limit_minor=limit, pin=PIN,
                              kind="credit" if limit else "debit")
        self.tokens = {self.ctx.tokenizer.token(pan): pan for pan in CARDS}

    def teardown(self) -> None:
        self.ctx.db.dispose()
        self.sim.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- helpers ---------------------------------------------------------------------------
    def _tick(self) -> None:
        self.now += timedelta(seconds=7)

    def _answered(self, result: PaymentResult) -> PaymentResult:
        assert result.response_code in RESPONSE_TABLE
        assert result.response_code not in NEVER, (result.response_code, result.message)
        self._tick()
        return result

    def _send(self, txn_type: TxnType, amount: int | None = None, pan: str | None = None,
              original: str | None = None) -> str:
        result = self._answered(payments.authorize(self.ctx, PaymentRequest(
            txn_type, MID, TID, Money(amount) if amount is not None else None,
            CardInput(pan, "3012", PIN) if pan else None,
            OriginalRef(txn_id=original) if original else None)))
        assert result.record is not None, result.message
        return result.record.txn_id

    # -- rules -----------------------------------------------------------------------------
    @rule(target=captures, pan=st.sampled_from(sorted(CARDS)), amount=AMOUNTS)
    def sale(self, pan: str, amount: int) -> str:
        return self._send(TxnType.SALE, amount, pan)

    @rule(target=preauths, pan=st.sampled_from(sorted(CARDS)), amount=AMOUNTS)
    def preauth(self, pan: str, amount: int) -> str:
        return self._send(TxnType.PREAUTH, amount, pan)

    @rule(target=records, original=captures)
    def void(self, original: str) -> str:
        return self._send(TxnType.VOID, original=original)

    @rule(target=records, original=captures, amount=AMOUNTS)
    def refund(self, original: str, amount: int) -> str:
        return self._send(TxnType.REFUND, amount, original=original)

    @rule(target=completions, original=preauths,
          amount=st.integers(min_value=1, max_value=70_000))
    def completion(self, original: str, amount: int) -> str:
        return self._send(TxnType.COMPLETION, amount, original=original)

    @rule(target=records, original=preauths)
    def cancel(self, original: str) -> str:
        return self._send(TxnType.PREAUTH_VOID, original=original)

    @rule(target=records, original=completions)
    def completion_void(self, original: str) -> str:
        return self._send(TxnType.COMPLETION_VOID, original=original)

    @rule(txn=st.one_of(records, captures, preauths, completions),
          unacknowledged=st.booleans())
    def reverse(self, txn: str, unacknowledged: bool) -> None:
        if unacknowledged:  # the issuer ignores the first attempt; store and forward retries
            self.sim.inject(FaultKind.REVERSAL_UNAVAILABLE)
        result = self._answered(reversals.reverse(self.ctx, MID, TID, OriginalRef(txn_id=txn)))
        assert result.response_code in (RC.APPROVED, RC.INVALID_TRANSACTION), result.message
        self.now += timedelta(seconds=reversals.REVERSAL_RETRY_MAX_S)
        reversals.process_reversals(self.ctx)
        self.sim.clear_faults()

    @rule(pan=st.sampled_from(sorted(CARDS)), amount=AMOUNTS)
    def issuer_down(self, pan: str, amount: int) -> None:
        self.sim.inject(FaultKind.UNAVAILABLE)
        result = self._send(TxnType.SALE, amount, pan)
        assert self._record(result).status == "reversed"

    @rule()
    def settle_batch(self) -> None:
        """Close the terminal's open batch: its sales can no longer be voided (22)."""
        with self.ctx.db.unit_of_work() as uow:
            batch = uow.batches.open_batch(MID, TID)
            if batch is not None:
                uow.batches.close(MID, TID, batch.batch_no, self.now)

    # -- invariants ------------------------------------------------------------------------
    def _record(self, txn: str) -> TransactionRecord:
        with self.ctx.db.unit_of_work() as uow:
            found = uow.transactions.get(MID, txn)
        assert found is not None
        return found

    def _all(self) -> list[TransactionRecord]:
        with self.ctx.db.unit_of_work() as uow:
            return uow.transactions.search(TransactionQuery(merchant_id=MID), None, 500)

    @invariant()
    def ledger_balances(self) -> None:
        with self.ctx.db.unit_of_work() as uow:
            assert all(v == 0 for v in uow.ledger.imbalance_by_currency().values())
            assert uow.ledger.unbalanced_entries() == []

    @invariant()
    def both_sides_agree(self) -> None:
        records = self._all()
        by_id = {r.txn_id: r for r in records}
        captured: Counter[str] = Counter()
        returned: Counter[str] = Counter()
        held: Counter[str] = Counter()
        for r in records:
            assert r.status != "pending", f"{r.txn_type} {r.txn_id} left pending"
            pan = self.tokens[r.card_token or ""]
            if r.txn_type in CAPTURES and r.status in ("approved", "voided"):
                captured[pan] += r.amount_minor
            elif r.txn_type in RETURNS and r.status == "approved":
                returned[pan] += r.amount_minor
                if r.txn_type != "refund":
                    assert r.amount_minor == by_id[r.original_txn_id or ""].amount_minor
            elif r.txn_type == "preauth" and r.status == "approved":
                held[pan] += r.amount_minor
        for pan, (opening, _limit) in CARDS.items():
            card = self.sim.card(pan)
            assert card.balance_minor == opening - captured[pan] + returned[pan], pan
            assert card.held_minor == held[pan], pan
        with self.ctx.db.unit_of_work() as uow:
            unsettled = -uow.ledger.balance(f"merchant_unsettled:{MID}", "CNY")
            holds = uow.ledger.balance(Account(AccountType.CARD_HOLDS).code, "CNY")
            assert uow.reversals.pending_count() == 0
        assert unsettled == sum(captured.values()) - sum(returned.values())
        assert holds == sum(held.values())

    @invariant()
    def refunds_within_sales(self) -> None:
        records = self._all()
        refunded: defaultdict[str, int] = defaultdict(int)
        for r in records:
            if r.txn_type == "refund" and r.status == "approved":
                refunded[r.original_txn_id or ""] += r.amount_minor
        for r in records:
            assert 0 <= r.refunded_minor <= r.amount_minor
            assert r.refunded_minor == refunded[r.txn_id], r.txn_id

    @invariant()
    def statuses_agree_with_children(self) -> None:
        records = self._all()
        approved_children: defaultdict[tuple[str, str], int] = defaultdict(int)
        for r in records:
            if r.original_txn_id and r.status == "approved":
                approved_children[(r.original_txn_id, r.txn_type)] += 1
        closing = {"sale": {"voided": "void"}, "completion": {"voided": "completion_void"},
                   "preauth": {"completed": "completion", "cancelled": "preauth_void"}}
        for r in records:
            for status, child_type in closing.get(r.txn_type, {}).items():
                count = approved_children[(r.txn_id, child_type)]
                assert count == (1 if r.status == status else 0), (r.txn_type, r.status)


@pytest.mark.slow
def test_random_payment_sequences_keep_both_sides_in_agreement(
        sqlite_template: Path, tmp_path: Path) -> None:
    PaymentsMachine.template = sqlite_template
    PaymentsMachine.workdir = tmp_path
    run_state_machine_as_test(PaymentsMachine, settings=settings(
        max_examples=25, stateful_step_count=15, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
