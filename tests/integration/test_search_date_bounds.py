"""The transaction search by business date also bounds created_at (store/payments.py, for
the newest-first indexes): a sale after the 23:00 cut-off belongs to the next business date
and is found by it, never by the date of its calendar day; the bound drops no record."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from paytools import sale as make_sale
from paytools import seed_shop, txn_id

from autosettle.domain.payment_records import TransactionQuery
from autosettle.services import transactions
from autosettle.services.context import SYSTEM, ServiceContext
from autosettle.simulators.issuer import IssuerSimulator

# Shanghai wall clock = UTC + 8
AT_0010 = datetime(2026, 9, 15, 16, 10, tzinfo=UTC)   # 16 Sep 00:10: business date 16 Sep
AT_2250 = datetime(2026, 9, 16, 14, 50, tzinfo=UTC)   # 16 Sep 22:50: business date 16 Sep
AT_2330 = datetime(2026, 9, 16, 15, 30, tzinfo=UTC)   # 16 Sep 23:30: business date 17 Sep


def _found(ctx: ServiceContext, first: date, last: date) -> set[str]:
    page = transactions.search(ctx, SYSTEM, TransactionQuery(date_from=first, date_to=last),
                               None, 50)
    return {v.record.txn_id for v in page.items}


def test_a_date_search_finds_every_sale_of_its_business_dates_and_no_other(
        ctx: ServiceContext, sim: IssuerSimulator, clock: Any) -> None:
    seed_shop(ctx, sim)
    made = {}
    for at in (AT_0010, AT_2250, AT_2330):
        clock.now = at
        made[at] = txn_id(make_sale(ctx, 1_000 + at.minute))
    sep15, sep16, sep17 = date(2026, 9, 15), date(2026, 9, 16), date(2026, 9, 17)
    assert _found(ctx, sep16, sep16) == {made[AT_0010], made[AT_2250]}
    assert _found(ctx, sep17, sep17) == {made[AT_2330]}
    assert _found(ctx, sep15, sep15) == set()
    assert _found(ctx, sep15, sep17) == set(made.values())
    assert _found(ctx, sep17, date(2026, 9, 30)) == {made[AT_2330]}
