"""A merchant's day and month counters split into shards, each with an allotment of the
room left under the merchant's limits (an escrow; docs/risk.md, "The merchant's counter in
shards").

Every sale of a merchant used to update the same two counter rows and hold them until its
commit, so the merchant's sales went through one at a time. Now the merchant's counter is
:data:`SHARDS` rows; a sale takes room in the shard of its terminal (:func:`shard_of`),
within that shard's allotment, and touches no other. The allotments never add up to more
than the limit, and a shard never holds more than its allotment, so the merchant's total
never passes its limit. A shard out of room (or allotted under other limits, or missing)
sends the sale down the exact path: every shard locked in order, the true total checked
against the limit (:func:`rebalance`: nothing that fits is refused), the room left shared
out again.

One shard row carries both the business day's and the month's totals, so a sale takes or
misses both at once and never holds one shard while waiting for others (no deadlock).
Pure: no I/O.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date

SHARDS = 8
"""Shards per merchant: sales of up to this many terminals take room without waiting for
each other while the merchant is far from its limits."""


def shard_of(terminal_id: str, shards: int = SHARDS) -> int:
    """The shard a terminal's sales take room in (stable across processes)."""
    return zlib.crc32(terminal_id.encode()) % shards


def month_of(day: date) -> str:
    return day.isoformat()[:7]


@dataclass(frozen=True, slots=True)
class Limits:
    """The merchant's decline limits for a day and a month (None: no such limit)."""

    day_amount: int | None = None
    day_count: int | None = None
    month_amount: int | None = None
    month_count: int | None = None

    def as_tuple(self) -> tuple[int | None, int | None, int | None, int | None]:
        return (self.day_amount, self.day_count, self.month_amount, self.month_count)


@dataclass(frozen=True, slots=True)
class Shard:
    """One shard row: its totals (of the day and month it last moved in), the limits its
    allotment was made under, and the allotment (None: that dimension has no limit)."""

    shard: int
    day: date | None = None
    day_amount: int = 0
    day_count: int = 0
    month: str | None = None
    month_amount: int = 0
    month_count: int = 0
    limits: Limits = Limits()
    allotment: Limits = Limits()

    def used(self, day: date) -> tuple[int, int, int, int]:
        """Its totals for business day ``day`` and that day's month (rolled over)."""
        same_day, same_month = self.day == day, self.month == month_of(day)
        return (self.day_amount if same_day else 0, self.day_count if same_day else 0,
                self.month_amount if same_month else 0,
                self.month_count if same_month else 0)


@dataclass(frozen=True, slots=True)
class Take:
    """What a transaction asks of its merchant's counter: room in shard ``shard`` on
    business day ``day`` under ``limits``; ``day_key``/``month_key`` name the merchant's day
    and month counters in the results ((key, bucket) pairs, as the other counters)."""

    merchant_id: str
    shard: int
    day: date
    limits: Limits
    day_key: tuple[str, str]
    month_key: tuple[str, str]


def totals(shards: Sequence[Shard], day: date) -> tuple[int, int, int, int]:
    """The merchant's totals for ``day`` and its month, over every shard."""
    sums = [0, 0, 0, 0]
    for shard in shards:
        for i, value in enumerate(shard.used(day)):
            sums[i] += value
    return (sums[0], sums[1], sums[2], sums[3])


def over(limits: Limits, after: tuple[int, int, int, int]) -> int | None:
    """Which limit (0 day amount, 1 day count, 2 month amount, 3 month count) the totals
    ``after`` pass, the first; None when within all."""
    for i, (limit, value) in enumerate(zip(limits.as_tuple(), after, strict=True)):
        if limit is not None and value > limit:
            return i
    return None


def rebalance(shards: Sequence[Shard], mine: int, day: date, limits: Limits, amount: int,
              count: int) -> list[Shard] | int:
    """The exact path, on every shard of the merchant (locked): the limit passed (see
    :func:`over`) when this transaction does not fit the merchant's true totals; otherwise
    every shard rolled to ``day``, shard ``mine`` with the transaction taken, and the room
    left under each limit shared out as allotments (shard ``mine`` gets the remainder).
    ``shards`` must include ``mine``."""
    used = {s.shard: s.used(day) for s in shards}
    now = totals(shards, day)
    taken = (amount, count, amount, count)
    after = tuple(v + t for v, t in zip(now, taken, strict=True))
    passed = over(limits, (after[0], after[1], after[2], after[3]))
    if passed is not None:
        return passed
    n = len(shards)
    out: list[Shard] = []
    for shard in shards:
        own = list(used[shard.shard])
        if shard.shard == mine:
            own = [v + t for v, t in zip(own, taken, strict=True)]
        allot: list[int | None] = []
        for i, limit in enumerate(limits.as_tuple()):
            if limit is None:
                allot.append(None)
                continue
            free = max(limit - after[i], 0)
            share = free // n + (free % n if shard.shard == mine else 0)
            allot.append(own[i] + share)
        out.append(replace(shard, day=day, day_amount=own[0], day_count=own[1],
                           month=month_of(day), month_amount=own[2], month_count=own[3],
                           limits=limits,
                           allotment=Limits(allot[0], allot[1], allot[2], allot[3])))
    return out
