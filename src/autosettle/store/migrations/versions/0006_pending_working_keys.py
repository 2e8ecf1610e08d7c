"""terminal host: pending working keys (a sign-on no longer replaces keys in use)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:00:00.000000

Written by hand; ``tests/terminal_host/test_schema.py`` checks it against ``tables.py``.

A sign-on (0800) is not authenticated in the CUP protocol: anyone who knows a terminal's
merchant and terminal ids can send one. Until now it replaced the working keys at once,
so a stranger's sign-on knocked the real terminal off (its next sale got A0). Now the keys
a sign-on issues while working keys exist are kept *pending* in these columns; the current
keys stay valid until the terminal's next MAC'd message verifies under the pending MAK,
which proves it decrypted field 62 with the TMK (see docs/terminal-integration.md).

Existing rows get no pending keys (all columns NULL).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from autosettle.store.types import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("pending_generation", sa.Integer()),
    ("pending_pik_sealed", sa.LargeBinary()),
    ("pending_pik_kcv", sa.String(length=8)),
    ("pending_mak_sealed", sa.LargeBinary()),
    ("pending_mak_kcv", sa.String(length=8)),
    ("pending_tdk_sealed", sa.LargeBinary()),
    ("pending_tdk_kcv", sa.String(length=8)),
    ("pending_double_length", sa.Boolean()),
    ("pending_issued_at", UTCDateTime()),
)


def upgrade() -> None:
    with op.batch_alter_table("terminal_keys", schema=None) as batch_op:
        for name, type_ in _COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("terminal_keys", schema=None) as batch_op:
        for name, _type in reversed(_COLUMNS):
            batch_op.drop_column(name)
