"""A settlement job run in a process of its own, for the lease tests (race and SIGKILL).

Usage: ``python settle_child.py DB_URL DATA_DIR NOW_ISO RUN_DATE LEASE_S DELAY_S START_AT
OWNER [manual]``. The clock is fixed at NOW_ISO, so leases are deterministic. The process
waits until the wall-clock time START_AT (epoch seconds; a start line shared by racing
processes), then runs the ``settle-daily`` job for RUN_DATE under its lease, settling one
merchant per database transaction and sleeping DELAY_S after each (so that it can be killed
half-way). It prints one line per merchant settled and, at the end, its outcome as JSON.
With ``manual`` it runs an operator's run instead (``autosettle settle``: job
``settle-manual``, its own key, the default lease; LEASE_S and OWNER are not used).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import date, datetime
from pathlib import Path

from autosettle.config import Settings
from autosettle.services import leases, settlement
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.services.settlement import NEXT_DAY
from autosettle.store.uow import Database

PAN_KEY = "11" * 32
DATA_KEY = "22" * 32


def main(argv: list[str]) -> int:
    db_url, data_dir, now_iso, run_date, lease_s, delay_s, start_at, owner = argv[:8]
    manual = argv[8:] == ["manual"]
    now = datetime.fromisoformat(now_iso)
    settings = Settings(data_dir=Path(data_dir), database_url=db_url,
                        pan_token_key=PAN_KEY, data_key=DATA_KEY)  # type: ignore[arg-type]
    ctx = ServiceContext(settings=settings, db=Database(db_url), clock=lambda: now)
    # One merchant per database transaction, so that a kill lands between commits.
    settlement.CHUNK_MERCHANTS_MAX = 1
    day = date.fromisoformat(run_date)

    def slowly() -> None:
        print("settled one", flush=True)
        time.sleep(float(delay_s))

    def job() -> dict[str, object]:
        return leases.summary_counts(settlement.settle(ctx, day, NEXT_DAY, progress=slowly))

    while time.time() < float(start_at):
        time.sleep(0.005)
    if manual:
        outcome = leases.settle_now(ctx, SYSTEM, day, NEXT_DAY, progress=slowly).outcome
    else:
        outcome = leases.run_once(ctx, "settle-daily", day.isoformat(), job,
                                  lease_s=float(lease_s), owner=owner)
    print(json.dumps({"status": outcome.status, "owner": owner,
                      "batches": outcome.counts.get("batches")}), flush=True)
    ctx.db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
