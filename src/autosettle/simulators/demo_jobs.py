"""The direct demo cashier as a periodic task.

``autosettle serve`` no longer uses it: its demo traffic is the terminal simulator's demo
fleet, over the terminal host (see docs/terminal-simulator.md). Kept for embedding
autosettle without a terminal host.
"""

from __future__ import annotations

import logging

from autosettle.jobs.runner import PeriodicTask
from autosettle.services.context import ServiceContext
from autosettle.simulators.demo_traffic import DemoCashier, seed_cards
from autosettle.simulators.issuer import IssuerSimulator

log = logging.getLogger(__name__)


def traffic_task(ctx: ServiceContext, interval_s: float) -> PeriodicTask:
    """Seed the demo cards at the simulator, then play one payment per interval."""
    if isinstance(ctx.channel, IssuerSimulator):
        seed_cards(ctx.channel)
    cashier = DemoCashier(ctx)

    def play() -> None:
        result = cashier.step()
        record = result.record
        log.info("demo %s %s %s: %s %s", record.txn_type if record else "request",
                 record.amount_minor if record else "", record.pan_masked if record else "",
                 result.response_code.value, result.message)

    return PeriodicTask("demo-traffic", interval_s, play)
