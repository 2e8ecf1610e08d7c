"""Demo reconciliation: once per business date of a demo day, the other sides' files.

A while after ``serve`` starts (``make run``), and once per business date after that, the
issuer simulator writes its clearing file for the date from its own records with a few
planted faults (a missing line, an extra line, a different fee), and the bank simulator
answers the date's payout file (one payout returned: account closed). Both are written to
``<data_dir>/recon/inbox/``, imported and reconciled, so the discrepancy queue has
something to show (``autosettle recon discrepancies``; docs/reconciliation.md).
"""

from __future__ import annotations

import logging
import threading
from datetime import date
from pathlib import Path

from autosettle.domain.errors import AutosettleError
from autosettle.services import business_dates, recon
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.simulators.bank import read_payout_file, write_return_file
from autosettle.simulators.issuer import (
    ClearingFault,
    IssuerSimulator,
    clearing_lines,
    write_clearing_file,
)

log = logging.getLogger("autosettle.demo_recon")
DEMO_FAULTS = {ClearingFault.MISSING: 1, ClearingFault.EXTRA: 1, ClearingFault.FEE: 1}


def reconcile_demo_day(ctx: ServiceContext, on: date, inbox: Path) -> list[str]:
    """Write, import and reconcile both files of ``on``; what was done, one line each."""
    done: list[str] = []
    inbox.mkdir(parents=True, exist_ok=True)
    sim = ctx.channel
    if isinstance(sim, IssuerSimulator):
        acp = inbox / f"INN{on:%y%m%d}01ZM"
        if not acp.exists() and clearing_lines(sim, on)[0]:   # nothing cleared yet: later
            try:
                planted = write_clearing_file(sim, acp, on, faults=DEMO_FAULTS, seed=on.toordinal(),
                                              fee_for=recon.fee_function(ctx))
            except ValueError:   # too few transactions yet to plant the faults
                planted = write_clearing_file(sim, acp, on, fee_for=recon.fee_function(ctx))
            recon.import_file(ctx, SYSTEM, acp, "acp")
            run = recon.run_day(ctx, SYSTEM, on, sim.name)
            done.append(f"{acp.name}: planted {[f.value for f, _ in planted]}, found "
                        f"{ {k: v for k, v in run.counts.items() if v} }")
    payout_file = ctx.settings.data_dir / "payouts" / f"payouts-{on:%Y%m%d}.txt"
    answer = inbox / f"RET{on:%Y%m%d}.txt"
    if payout_file.exists() and not answer.exists():
        _, lines = read_payout_file(payout_file)
        returned = {lines[0].payout_id: ("R001", "账户已销户 account closed")} if lines else {}
        write_return_file(payout_file, answer, returned=returned)
        recon.import_file(ctx, SYSTEM, answer, "bank")
        run = recon.run_day(ctx, SYSTEM, on, recon.BANK_CHANNEL)
        done.append(f"{answer.name}: {run.counts}")
    return done


class DemoRecon:
    """The background thread of :func:`reconcile_demo_day` for ``serve``'s demo."""

    def __init__(self, ctx: ServiceContext, delay_s: float) -> None:
        self._ctx = ctx
        self._delay_s = delay_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="demo-recon", daemon=True)

    def start(self) -> DemoRecon:
        self._thread.start()
        return self

    def _loop(self) -> None:
        inbox = self._ctx.settings.data_dir / "recon" / "inbox"
        while not self._stop.wait(self._delay_s):
            try:
                on = business_dates.current_business_date(self._ctx)
                for line in reconcile_demo_day(self._ctx, on, inbox):
                    log.info("demo reconciliation %s", line)
            except (AutosettleError, OSError) as exc:
                log.warning("demo reconciliation skipped: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
