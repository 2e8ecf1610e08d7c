"""risk velocity counted on the card's transactions again: the velocity buckets go

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 14:10:00.000000

Written by hand. Velocity is counted on the card's own transactions (index
``ix_transactions_card_recent``), after the reservation has locked the card's counter rows
(docs/risk.md), so the per-second velocity buckets (``v:``/``w:`` keys, buckets
``S<epoch seconds>``) in ``risk_counters`` are no longer written or read: they are deleted
here. The day and month counters (buckets ``D...``/``M...``, which sort below ``S``) stay.
Nothing to give back on downgrade: the buckets of the last days are rebuilt by no one, and
a velocity window then starts empty.
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM risk_counters WHERE bucket >= 'S'")


def downgrade() -> None:
    pass
