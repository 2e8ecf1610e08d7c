"""The print queue's background work: follow new slips, deliver due jobs.

Both run in their own thread in ``autosettle serve`` (a printer that hangs up to its
timeout never delays reversal retries or settlement). Any number of instances may run
them: enqueueing is idempotent on the job key and a job is claimed by one conditional
update (services/printing.py).
"""

from __future__ import annotations

import logging

from autosettle.jobs.runner import PeriodicTask
from autosettle.services import printing
from autosettle.services.context import ServiceContext

log = logging.getLogger(__name__)


def tasks(ctx: ServiceContext) -> list[PeriodicTask]:
    """Follow (enqueue new slips) then deliver (print due jobs), every ``print_interval_s``."""

    def run() -> None:
        enqueued = printing.follow(ctx)
        delivered = printing.deliver(ctx)
        if enqueued or delivered.printed or delivered.failed:
            log.log(logging.INFO if not delivered.failed else logging.WARNING,
                    "print queue: %d enqueued, %d printed, %d failed, %d waiting", enqueued,
                    delivered.printed, delivered.failed, delivered.waiting)

    return [PeriodicTask("print-queue", ctx.settings.print_interval_s, run)]
