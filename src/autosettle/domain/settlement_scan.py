"""What a settlement run reads and claims, as pure values: cursors, due groups, the scan of
a chunk of merchants and the batches it claims (the SQL is in
:mod:`autosettle.store.settlement_claims`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, slots=True)
class Claim:
    """A batch to make for (merchant, cycle, currency): its items, cursor move and carries."""

    batch_id: str
    merchant_id: str
    cycle: str
    currency: str


NEVER = date(1, 1, 1)


@dataclass(frozen=True, slots=True)
class Cursor:
    """A (merchant, cycle)'s settled range: items due by the date and recorded up to the id
    (see :mod:`autosettle.store.settlement_claims`)."""

    through_date: date
    through_item_id: int


START = Cursor(NEVER, 0)


@dataclass(frozen=True, slots=True)
class DueGroup:
    """Due, unheld, unsettled items of one merchant, cycle and currency, summed."""

    merchant_id: str
    cycle: str
    currency: str
    item_count: int
    gross_minor: int
    fee_minor: int


@dataclass
class DueScan:
    """What a run would settle for some merchants, read in the run's transaction."""

    upto_item_id: int
    run_date: date
    cursors: dict[tuple[str, str], Cursor]
    groups: list[DueGroup]
    held: dict[tuple[str, str], list[int]]
    """Held item ids inside the new ranges, per (merchant, cycle): carried when it moves."""
    released: dict[tuple[str, str, str], list[int]]
    """Carried item ids no longer held, per (merchant, cycle, currency): in its batch."""

    def new_cursor(self, merchant_id: str, cycle: str) -> Cursor:
        """Where the run moves the (merchant, cycle)'s cursor."""
        old = self.cursors.get((merchant_id, cycle), START)
        return Cursor(max(old.through_date, self.run_date), self.upto_item_id)
