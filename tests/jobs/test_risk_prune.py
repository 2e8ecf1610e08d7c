"""Pruning the velocity buckets (``risk-prune``, jobs/risk_scoring.py): buckets no velocity
window can reach go, everything else stays (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from autosettle.domain import risk as rk
from autosettle.services import risk
from autosettle.services.context import ServiceContext

NOW = datetime(2026, 9, 18, 4, 0, tzinfo=UTC)
TOKEN = "ab" * 32


USED: list[rk.CounterKey] = []


def _keys(at: datetime) -> list[rk.CounterKey]:
    return rk.velocity_keys("M1", TOKEN, at) + rk.counter_keys("M1", "T1", TOKEN, at.date())


def _reserve(ctx: ServiceContext, at: datetime) -> None:
    USED.extend(_keys(at))
    with ctx.db.unit_of_work() as uow:
        uow.risk.reserve([rk.CounterLimit(k, None, None) for k in _keys(at)], 100)


def _rows(ctx: ServiceContext) -> set[tuple[str, str]]:
    """The counter rows there are, of every key reserved in this test."""
    with ctx.db.unit_of_work() as uow:
        return set(uow.risk.usage(sorted(set(USED), key=lambda k: k.pair)))


def test_buckets_older_than_the_longest_window_and_a_day_go_and_nothing_else(
        ctx: ServiceContext) -> None:
    USED.clear()
    kept = NOW - risk.VELOCITY_KEPT
    old, edge, recent = kept - timedelta(seconds=1), kept, NOW - timedelta(minutes=5)
    for at in (old, edge, recent):
        _reserve(ctx, at)
    before = _rows(ctx)
    assert risk.prune_velocity_buckets(ctx, NOW) == 2
    after = _rows(ctx)
    gone = before - after
    assert gone == {(k.key, k.bucket) for k in rk.velocity_keys("M1", TOKEN, old)}
    # the day and month counters of that old day, and the younger buckets, are all there
    assert {(k.key, k.bucket) for k in rk.counter_keys("M1", "T1", TOKEN, old.date())} <= after
    for at in (edge, recent):
        assert {(k.key, k.bucket) for k in rk.velocity_keys("M1", TOKEN, at)} <= after
    assert risk.prune_velocity_buckets(ctx, NOW) == 0


def test_pruning_works_in_chunks(ctx: ServiceContext,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    USED.clear()
    monkeypatch.setattr(risk, "PRUNE_CHUNK", 3)
    start = NOW - risk.VELOCITY_KEPT - timedelta(hours=1)
    for n in range(5):
        _reserve(ctx, start + timedelta(seconds=n))
    assert risk.prune_velocity_buckets(ctx, NOW) == 10
    assert not any(b.startswith("S") for _, b in _rows(ctx))
    assert len(_rows(ctx)) == 6  # the day and month counters of merchant, terminal, card
