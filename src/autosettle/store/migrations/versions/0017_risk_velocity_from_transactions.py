"""risk: velocity counted on the card's transactions (the velocity buckets go); the
merchant's day and month counter in shards with allotments

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 14:10:00.000000

Written by hand; ``tests/terminal_host/test_schema.py`` checks it against ``tables.py``.

1. Velocity is counted on the card's own transactions (index
   ``ix_transactions_card_recent``), after the reservation has locked the card's counter
   rows (docs/risk.md), so the per-second velocity buckets (``v:``/``w:`` keys, buckets
   ``S<epoch seconds>``) in ``risk_counters`` are deleted. Nothing to give back on
   downgrade: a velocity window then starts empty.
2. On PostgreSQL the merchant's counter moves from ``risk_counters`` (``m:`` keys) to
   ``risk_merchant_shards`` (domain/risk_shards.py). Each merchant's newest day and month
   totals go to its shard 0, with no allotment (the first sale takes the exact path and
   shares the room out), so a merchant's usage of the day carries over the upgrade. A
   downgrade puts the shards' totals back into ``m:`` rows. SQLite (one writer) keeps the
   ``m:`` rows; the table is created there too, empty.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM risk_counters WHERE bucket >= 'S'")
    op.create_table(
        "risk_merchant_shards",
        sa.Column("merchant_id", sa.String(15), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=True),
        sa.Column("day_amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("day_count", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(7), nullable=True),
        sa.Column("month_amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("month_count", sa.Integer(), nullable=False),
        sa.Column("limit_day_amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("limit_day_count", sa.Integer(), nullable=True),
        sa.Column("limit_month_amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("limit_month_count", sa.Integer(), nullable=True),
        sa.Column("allot_day_amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("allot_day_count", sa.Integer(), nullable=True),
        sa.Column("allot_month_amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("allot_month_count", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("merchant_id", "shard", name=op.f("pk_risk_merchant_shards")),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    day = "CAST(substr(d.bucket, 2) AS DATE)"
    op.execute(
        "INSERT INTO risk_merchant_shards (merchant_id, shard, day, day_amount_minor, "
        "day_count, month, month_amount_minor, month_count) "
        f"SELECT m.mid, 0, {day}, COALESCE(d.amount_minor, 0), COALESCE(d.txn_count, 0), "
        "substr(mo.bucket, 2), COALESCE(mo.amount_minor, 0), COALESCE(mo.txn_count, 0) "
        "FROM (SELECT DISTINCT substr(key, 3) AS mid FROM risk_counters "
        "WHERE key LIKE 'm:%') m "
        "LEFT JOIN risk_counters d ON d.key = 'm:' || m.mid AND d.bucket = ("
        "SELECT max(bucket) FROM risk_counters WHERE key = 'm:' || m.mid "
        "AND bucket LIKE 'D%') "
        "LEFT JOIN risk_counters mo ON mo.key = 'm:' || m.mid AND mo.bucket = ("
        "SELECT max(bucket) FROM risk_counters WHERE key = 'm:' || m.mid "
        "AND bucket LIKE 'M%')")
    op.execute("DELETE FROM risk_counters WHERE key LIKE 'm:%'")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.drop_table("risk_merchant_shards")
        return
    day = "CAST(day AS VARCHAR)"
    op.execute(
        "INSERT INTO risk_counters (key, bucket, amount_minor, txn_count) "
        f"SELECT 'm:' || merchant_id, 'D' || {day}, sum(day_amount_minor), sum(day_count) "
        "FROM risk_merchant_shards WHERE day IS NOT NULL GROUP BY merchant_id, day")
    op.execute(
        "INSERT INTO risk_counters (key, bucket, amount_minor, txn_count) "
        "SELECT 'm:' || merchant_id, 'M' || month, sum(month_amount_minor), sum(month_count) "
        "FROM risk_merchant_shards WHERE month IS NOT NULL GROUP BY merchant_id, month")
    op.drop_table("risk_merchant_shards")
