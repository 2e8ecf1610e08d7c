"""Store and forward of reversals to the channel: a reversal is queued in the same
transaction that reverses our record, and sent until the channel acknowledges it, with
exponential backoff (the periodic job ``retry-reversals`` and, at once, the operation that
queued it). It reads and writes only the queue, so every payment service may use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from autosettle.channels.base import ChannelError, call_with_timeout
from autosettle.domain.errors import AutosettleError, ErrorCode
from autosettle.services.context import ServiceContext

REVERSAL_RETRY_BASE_S = 2.0
REVERSAL_RETRY_MAX_S = 300.0
REVERSAL_BATCH_MAX = 100


@dataclass(frozen=True, slots=True)
class ReversalRun:
    """How many queued reversals the channel acknowledged, and how many wait for a retry."""

    acknowledged: int
    failed: int


def process_reversals(ctx: ServiceContext, only: tuple[str, str] | None = None,
                      limit: int = REVERSAL_BATCH_MAX) -> ReversalRun:
    """Send due reversals to the channel; retry with backoff until acknowledged."""
    now = ctx.now()
    with ctx.db.unit_of_work() as uow:
        if only is not None:
            one = uow.reversals.get(*only)
            due = [one] if one is not None and one.state == "pending" else []
        else:
            due = uow.reversals.due(now, limit)
    if ctx.channel is None:
        raise AutosettleError("no channel is configured", ErrorCode.UNAVAILABLE)
    channel = ctx.channel
    acknowledged = failed = 0
    for item in due:
        try:
            ok = call_with_timeout(lambda ref=item.txn_id, why=item.reason:  # type: ignore[misc]
                                   channel.reverse(ref, why), ctx.settings.channel_timeout_s)
            error = "" if ok else "not acknowledged"
        except ChannelError as exc:
            ok, error = False, str(exc)
        with ctx.db.unit_of_work() as uow:
            if ok:
                uow.reversals.acknowledge(item.merchant_id, item.txn_id, ctx.now())
                acknowledged += 1
            else:
                delay = min(REVERSAL_RETRY_MAX_S, REVERSAL_RETRY_BASE_S * 2 ** item.attempts)
                uow.reversals.retry_later(item.merchant_id, item.txn_id,
                                          ctx.now() + timedelta(seconds=delay), error)
                failed += 1
    return ReversalRun(acknowledged, failed)
