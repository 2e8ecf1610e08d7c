"""audit by object: an object's audit history, and the discrepancy queue by owner

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 11:40:00.000000

Written by hand; ``tests/terminal_host/test_schema.py`` checks it against ``tables.py``.

- ``audit_log.resource`` names the object a record is about (``recon/discrepancies/7``,
  ``users/alice``, ...). ``(resource, audit_id)`` answers "every record of this object, in
  order" (``AuditRepository.for_resource``) without reading the rest of the log; the
  console's discrepancy history used to take the newest 200 records of each recon action
  and keep those of the discrepancy, so an older action went missing.
- ``recon_discrepancies (owner, discrepancy_id)``: the queue filtered by owner, in id order
  and paged by id in SQL (it was filtered in Python over at most 10,000 rows).
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_NEW = (
    ("ix_audit_log_resource", "audit_log", ["resource", "audit_id"]),
    ("ix_recon_discrepancies_owner", "recon_discrepancies", ["owner", "discrepancy_id"]),
)


def upgrade() -> None:
    for name, table, columns in _NEW:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(_NEW):
        op.drop_index(name, table_name=table)
