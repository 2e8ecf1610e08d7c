"""Migration 0017 on data written before it: on PostgreSQL a merchant's usage of the day
and month carries over into its shard 0 (a limit is not reset by an upgrade); SQLite keeps
the merchant's rows; the velocity buckets go, the terminal and card counters stay; and back
on downgrade. Both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from alembic import command
from migrationtools import database_at
from sqlalchemy import insert, select

from autosettle.domain import risk as rk
from autosettle.store import migrate
from autosettle.store.risk import RiskRepository
from autosettle.store.tables import risk_counters, risk_merchant_shards
from autosettle.store.uow import Database

MID = "898310054110001"
TODAY = date(2026, 12, 4)


@pytest.fixture(params=["sqlite", "postgres"])
def legacy_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database at revision 0016 (the merchant's counter in one row per period)."""
    yield from database_at("0016", request.param, tmp_path, "m0017")


def _rows(db: Database) -> set[tuple[str, str, int, int]]:
    with db.engine.connect() as conn:
        c = risk_counters.c
        return {(r[0], r[1], int(r[2]), int(r[3])) for r in conn.execute(
            select(c.key, c.bucket, c.amount_minor, c.txn_count))}


def test_migration_0017_carries_the_merchants_usage_into_its_shards(legacy_url: str) -> None:
    legacy = [("m:" + MID, "D2026-12-03", 70_000, 7), ("m:" + MID, "D2026-12-04", 12_345, 3),
              ("m:" + MID, "M2026-11", 9_000, 9), ("m:" + MID, "M2026-12", 82_345, 10),
              (f"t:{MID}/HL000001", "D2026-12-04", 12_345, 3),
              ("c:" + "a" * 64, "M2026-12", 500, 1),
              ("v:" + "a" * 64, "S1796391131", 500, 1),
              (f"w:{MID}/" + "a" * 60, "S1796391131", 500, 1)]
    db = Database(legacy_url)
    try:
        with db.engine.begin() as conn:
            conn.execute(insert(risk_counters), [
                {"key": k, "bucket": b, "amount_minor": a, "txn_count": n}
                for k, b, a, n in legacy])
        migrate.upgrade(legacy_url)
        sharded = db.is_postgres
        kept = "tc" if sharded else "tcm"
        assert _rows(db) == {r for r in legacy if r[0][0] in kept}  # v:, w: gone
        with db.engine.connect() as conn:
            s = risk_merchant_shards.c
            shards = conn.execute(select(s.merchant_id, s.shard, s.day, s.day_amount_minor,
                                         s.day_count, s.month, s.month_amount_minor,
                                         s.month_count, s.allot_day_amount_minor)).all()
            assert [tuple(r) for r in shards] == ([
                (MID, 0, TODAY, 12_345, 3, "2026-12", 82_345, 10, None)] if sharded else [])
            keys = [k for k in rk.counter_keys(MID, "HL000001", None, TODAY)
                    if k.subject is rk.Subject.MERCHANT]
            assert RiskRepository(conn).usage(keys) == {
                ("m:" + MID, "D2026-12-04"): (12_345, 3), ("m:" + MID, "M2026-12"): (82_345, 10)}
        command.downgrade(migrate.alembic_config(legacy_url), "0016")
        assert {r for r in _rows(db) if r[0].startswith("m:")} == ({
            ("m:" + MID, "D2026-12-04", 12_345, 3), ("m:" + MID, "M2026-12", 82_345, 10)}
            if sharded else {r for r in legacy if r[0].startswith("m:")})
    finally:
        db.dispose()
