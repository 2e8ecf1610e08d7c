"""Posting journal entries and reading derived balances."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from autosettle.domain.ledger import Account, JournalEntry
from autosettle.domain.ledger_records import BalanceRow, CheckpointMismatch, PostedEntry
from autosettle.services import alerts
from autosettle.services.access import Area, require_read
from autosettle.services.context import Principal, ServiceContext
from autosettle.services.merchants import get_merchant
from autosettle.store.uow import UnitOfWork

log = logging.getLogger(__name__)


def post(ctx: ServiceContext, entry: JournalEntry) -> PostedEntry:
    """Post one balanced entry in its own unit of work; a retry returns the first entry."""
    with ctx.db.unit_of_work() as uow:
        return post_in(uow, ctx, entry)


def post_in(uow: UnitOfWork, ctx: ServiceContext, entry: JournalEntry) -> PostedEntry:
    """Post inside the caller's unit of work, so the entry commits with the business change."""
    return uow.ledger.post(entry, ctx.now())


def post_many(ctx: ServiceContext, entries: Sequence[JournalEntry]) -> list[PostedEntry]:
    """Post several entries in one unit of work (all or nothing)."""
    with ctx.db.unit_of_work() as uow:
        return uow.ledger.post_batch(list(entries), ctx.now())


@dataclass(frozen=True, slots=True)
class AccountBalance:
    account: str
    account_type: str
    kind: str
    currency: str
    balance_minor: int


def merchant_balances(ctx: ServiceContext, who: Principal,
                      merchant_id: str) -> list[AccountBalance]:
    """Balances of a merchant's accounts, derived from the journal lines."""
    require_read(who, Area.BALANCES, merchant_id)
    get_merchant(ctx, who, merchant_id)
    with ctx.db.unit_of_work() as uow:
        rows: list[BalanceRow] = uow.ledger.balances_for_merchant(merchant_id)
    result = []
    for row in rows:
        account = Account.parse(row.account_code)
        result.append(AccountBalance(row.account_code, account.type.value, account.kind.value,
                                     row.currency, row.balance_minor))
    return result


def ledger_imbalance(ctx: ServiceContext) -> dict[str, int]:
    """Sum of every line per currency; all zero when the ledger is balanced."""
    with ctx.db.unit_of_work() as uow:
        return uow.ledger.imbalance_by_currency()


# -- balance checkpoints (docs/ledger.md, "Balance checkpoints") ----------------------------

CHECKPOINT_WAIT_S = 10.0  # how long a checkpoint waits for transactions in flight
CHECKPOINT_MISMATCH = "ledger_checkpoint_mismatch"


@dataclass(frozen=True, slots=True)
class CheckpointResult:
    """A checkpoint run: the mark it wrote (or the newest one when nothing was new)."""

    through_entry_id: int
    previous_entry_id: int
    accounts: int
    created: bool
    waited_out: bool = False  # transactions in flight stayed open too long: nothing written

    def counts(self) -> dict[str, object]:
        return {"through_entry_id": self.through_entry_id, "previous": self.previous_entry_id,
                "accounts": self.accounts, "created": self.created,
                "waited_out": self.waited_out}


@dataclass(frozen=True, slots=True)
class CheckpointVerification:
    through_entry_id: int
    mismatches: list[CheckpointMismatch]

    @property
    def ok(self) -> bool:
        return not self.mismatches


def checkpoint(ctx: ServiceContext, wait_s: float = CHECKPOINT_WAIT_S) -> CheckpointResult:
    """Write a balance checkpoint at the current safe high-water mark (idempotent: nothing
    when no entry is newer than the newest checkpoint). The mark is established first, in a
    transaction of its own that writes nothing (on PostgreSQL it waits for the transactions
    that were in flight), then the checkpoint is written in one unit of work."""
    with ctx.db.unit_of_work() as uow:
        mark = uow.ledger.safe_high_water_mark(wait_s)
        newest = uow.ledger.newest_checkpoint()
    if mark is None:
        log.warning("ledger checkpoint: transactions in flight for over %.0f s, skipped",
                    wait_s)
        return CheckpointResult(newest, newest, 0, False, waited_out=True)
    with ctx.db.unit_of_work() as uow:
        written = uow.ledger.write_checkpoint(mark, ctx.now())
    return CheckpointResult(written.through_entry_id, written.previous_entry_id,
                            written.accounts, written.created)


def verify_checkpoint(ctx: ServiceContext) -> CheckpointVerification:
    """Recompute the newest checkpoint from every journal line up to its mark. A mismatch
    raises a critical alert (never a silent fix: the checkpoint is left as found, for the
    investigation; ``autosettle ledger checkpoint`` after the fix writes a new one)."""
    with ctx.db.unit_of_work() as uow:
        mark, wrong = uow.ledger.verify_checkpoint()
    if wrong:
        shown = "; ".join(f"{m.account_code}/{m.currency}: checkpoint {m.checkpoint_minor}, "
                          f"lines {m.lines_minor}" for m in wrong[:5])
        log.error("ledger checkpoint %d disagrees with the journal: %s", mark, shown)
        alerts.raise_alert(ctx, "critical", CHECKPOINT_MISMATCH,
                           f"ledger checkpoint {mark} disagrees with the journal on "
                           f"{len(wrong)} account(s): {shown}",
                           dedup_key=f"{CHECKPOINT_MISMATCH}:{mark}")
    return CheckpointVerification(mark, wrong)
