"""Payment housekeeping jobs: reversal retries and crash recovery."""

from __future__ import annotations

import logging

from autosettle.jobs.runner import PeriodicTask
from autosettle.services import reversals
from autosettle.services.context import ServiceContext

log = logging.getLogger(__name__)
REVERSAL_INTERVAL_S = 5.0
RECOVERY_INTERVAL_S = 30.0


def tasks(ctx: ServiceContext) -> list[PeriodicTask]:
    """Retry due reversals (store and forward) and reverse records stuck by a crash."""

    def retry_reversals() -> None:
        run = reversals.process_reversals(ctx)
        if run.acknowledged or run.failed:
            log.info("reversals: %d acknowledged, %d to retry", run.acknowledged, run.failed)

    def recover() -> None:
        count = reversals.recover_stuck(ctx)
        if count:
            log.warning("recovered %d transactions left pending by a crash", count)

    return [PeriodicTask("recover-stuck-payments", RECOVERY_INTERVAL_S, recover),
            PeriodicTask("retry-reversals", REVERSAL_INTERVAL_S, retry_reversals)]
