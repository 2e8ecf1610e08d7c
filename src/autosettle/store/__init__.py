"""Storage: table definitions, the unit of work, repositories and Alembic migrations.

What lives here: SQLAlchemy Core tables (no ORM objects: rows come back as plain values),
one :class:`~autosettle.store.uow.UnitOfWork` per database transaction, repositories that
hide SQL from the services, and migrations. The same code runs on SQLite (embedded default)
and PostgreSQL (production).

Two modules worth knowing before changing settlement: :mod:`.settlement_claims` (which
items are in which batch: per-merchant cursors, items never rewritten by a run) and
:mod:`.bulk` (many-row INSERTs as one statement on both databases).

What may not: business rules. Repositories store and fetch; services decide. Every
merchant-owned table has ``merchant_id`` in its primary key so it can be distributed by
merchant later (Citus).
"""
