"""The process test_payment_crash.py kills: it starts one sale and waits on a late issuer.

Usage: ``python payment_crash_child.py DB_URL SIM_URL PAN PIN MERCHANT TERMINAL AMOUNT_MINOR
PAN_KEY DATA_KEY``. The simulator is told to apply the debit and then sit on its answer for
far longer than the parent waits, and the channel deadline is longer still, so the process
is blocked inside the channel call with a pending record committed when it is killed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from autosettle.config import Settings
from autosettle.domain.money import Money
from autosettle.domain.transactions import TxnType
from autosettle.services import payments
from autosettle.services.context import ServiceContext
from autosettle.services.payments import CardInput, PaymentRequest
from autosettle.simulators.issuer import FaultKind, IssuerSimulator
from autosettle.store.uow import Database

LATE_ANSWER_MS = 30_000
CHANNEL_TIMEOUT_S = 60.0


def main(argv: list[str]) -> int:
    db_url, sim_url, pan, pin, merchant_id, terminal_id, amount, pan_key, data_key = argv
    settings = Settings(data_dir=Path(sim_url.removeprefix("sqlite:///")).parent / "child",
                        database_url=db_url, issuer_sim_url=sim_url,
                        channel_timeout_s=CHANNEL_TIMEOUT_S,
                        pan_token_key=pan_key, data_key=data_key)
    sim = IssuerSimulator(sim_url)
    sim.inject(FaultKind.LATE_ANSWER, latency_ms=LATE_ANSWER_MS)
    ctx = ServiceContext(settings=settings, db=Database(db_url), channel=sim)
    print("sending", flush=True)
    result = payments.authorize(ctx, PaymentRequest(
        TxnType.SALE, merchant_id, terminal_id, Money(int(amount)),
        CardInput(pan, "3012", pin)))
    print(f"answered {result.response_code}", flush=True)  # not reached: killed first
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
