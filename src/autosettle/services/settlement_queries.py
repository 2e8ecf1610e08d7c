"""What the settlement side shows: a merchant's batches with their payouts and items, one
batch, the payouts list. Who may see what is decided here (:mod:`autosettle.services.access`),
so every adapter shows the same."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from autosettle.domain.errors import NotFoundError
from autosettle.domain.payouts import PayoutStatus
from autosettle.domain.settlement_records import BatchDetail, BatchRecord, PayoutRecord
from autosettle.services.access import Area, may_read, require_read
from autosettle.services.context import Principal, ServiceContext
from autosettle.store.uow import UnitOfWork


def _details(uow: UnitOfWork, batches: Sequence[BatchRecord],
             items_max: int) -> list[BatchDetail]:
    return [BatchDetail(batch, uow.settlement.payout_of_batch(batch.batch_id),
                        uow.claims.items_of_batch(batch.batch_id, limit=items_max)
                        if items_max else [])
            for batch in batches]


def list_settlements(ctx: ServiceContext, who: Principal, merchant_id: str,
                     date_from: date | None, date_to: date | None, limit: int,
                     items_max: int) -> list[BatchDetail]:
    """The merchant's batches, newest first, each with its payout and up to ``items_max``
    items (``not_found`` for a merchant the caller may not see or that does not exist)."""
    require_read(who, Area.SETTLEMENTS, merchant_id)
    with ctx.db.unit_of_work() as uow:
        if uow.merchants.get(merchant_id) is None:
            raise NotFoundError(f"merchant {merchant_id} not found")
        batches = uow.settlement.batches(merchant_id, date_from, date_to, limit)
        return _details(uow, batches, items_max)


def get_settlement(ctx: ServiceContext, who: Principal, batch_id: str,
                   items_max: int) -> BatchDetail:
    """One batch with its payout and up to ``items_max`` items (``not_found`` when it does
    not exist or belongs to a merchant the caller may not see)."""
    with ctx.db.unit_of_work() as uow:
        batch = uow.settlement.batch(batch_id)
        if batch is None or not may_read(who, Area.SETTLEMENTS, batch.merchant_id):
            raise NotFoundError(f"settlement {batch_id} not found")
        return _details(uow, [batch], items_max)[0]


def list_payouts(ctx: ServiceContext, who: Principal, status: PayoutStatus | None,
                 merchant_id: str | None, limit: int) -> list[PayoutRecord]:
    """Payouts, oldest first (operator)."""
    who.require_operator()
    with ctx.db.unit_of_work() as uow:
        return uow.settlement.payouts(status=status, merchant_id=merchant_id, limit=limit)
