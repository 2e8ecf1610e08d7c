"""The merchant's counter in shards (domain/risk_shards.py): the exact path never lets the
merchant pass a limit, refuses nothing that fits, and shares the room out so that no shard
can take more than the room left, whatever the shards held before (rolled-over days and
months, allotments made under other limits, shards over their allotment after a forced
take)."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from autosettle.domain import risk_shards as rs

DAY = date(2026, 12, 4)
LIMIT = st.one_of(st.none(), st.integers(0, 10**9))
AMOUNTS = st.integers(0, 10**8)


@st.composite
def shard_rows(draw: st.DrawFn) -> list[rs.Shard]:
    count = draw(st.integers(1, 10))
    out = []
    for n in range(count):
        day = draw(st.sampled_from([None, DAY, DAY - timedelta(days=1)]))
        month = draw(st.sampled_from([None, "2026-12", "2026-11"]))
        out.append(rs.Shard(n, day, draw(AMOUNTS), draw(st.integers(0, 1000)), month,
                            draw(AMOUNTS), draw(st.integers(0, 1000)),
                            rs.Limits(draw(LIMIT), None, draw(LIMIT), None),
                            rs.Limits(draw(LIMIT), draw(LIMIT), draw(LIMIT), draw(LIMIT))))
    return out


@given(shard_rows(), st.data(), st.integers(1, 10**7),
       st.builds(rs.Limits, LIMIT, LIMIT, LIMIT, LIMIT))
def test_the_exact_path_is_exact_and_its_allotments_add_up_to_the_limit(
        shards: list[rs.Shard], data: st.DataObject, amount: int, limits: rs.Limits) -> None:
    mine = data.draw(st.sampled_from([s.shard for s in shards]))
    before = rs.totals(shards, DAY)
    after = (before[0] + amount, before[1] + 1, before[2] + amount, before[3] + 1)
    plan = rs.rebalance(shards, mine, DAY, limits, amount, 1)
    fits = all(limit is None or value <= limit
               for limit, value in zip(limits.as_tuple(), after, strict=True))
    if not fits:
        assert plan == rs.over(limits, after)
        return
    assert isinstance(plan, list)
    assert rs.totals(plan, DAY) == after  # this sale taken, nothing else moved
    for i, limit in enumerate(limits.as_tuple()):
        allotments = [s.allotment.as_tuple()[i] for s in plan]
        if limit is None:
            assert allotments == [None] * len(plan)
            continue
        assert sum(a for a in allotments if a is not None) == limit
        for shard in plan:
            assert shard.used(DAY)[i] <= shard.allotment.as_tuple()[i]  # type: ignore[operator]
    assert all(s.limits == limits and s.day == DAY and s.month == "2026-12" for s in plan)


@given(shard_rows(), st.integers(1, 10**6))
def test_fast_takes_within_allotments_never_pass_the_limit(shards: list[rs.Shard],
                                                            amount: int) -> None:
    """After a share-out, any sequence of takes each within its shard's allotment (the fast
    path's WHERE) keeps the merchant within every limit."""
    limits = rs.Limits(10**7, 50, 10**8, 500)
    plan = rs.rebalance(shards, shards[0].shard, DAY, limits, 0, 0)
    if isinstance(plan, int):
        return
    totals = list(rs.totals(plan, DAY))
    for shard in plan:
        used = list(shard.used(DAY))
        allot = shard.allotment.as_tuple()
        while all(u + t <= a for u, t, a in zip(used, (amount, 1, amount, 1), allot,  # type: ignore[operator]
                                                 strict=True)):
            used = [u + t for u, t in zip(used, (amount, 1, amount, 1), strict=True)]
            totals = [v + t for v, t in zip(totals, (amount, 1, amount, 1), strict=True)]
    assert rs.over(limits, (totals[0], totals[1], totals[2], totals[3])) is None


def test_a_rolled_over_day_counts_nothing_but_the_month_goes_on() -> None:
    shard = rs.Shard(0, DAY - timedelta(days=1), 500, 5, "2026-12", 900, 9)
    assert shard.used(DAY) == (0, 0, 900, 9)
    assert shard.used(date(2027, 1, 1)) == (0, 0, 0, 0)


def test_a_terminal_always_lands_in_the_same_shard() -> None:
    assert rs.shard_of("BT000001") == rs.shard_of("BT000001")
    assert {rs.shard_of(f"T{n:07d}") for n in range(200)} == set(range(rs.SHARDS))
