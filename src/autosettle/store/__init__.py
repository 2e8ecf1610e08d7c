"""Storage: table definitions, the unit of work, repositories and Alembic migrations.

What lives here: SQLAlchemy Core tables (no ORM objects: rows come back as plain values),
one :class:`~autosettle.store.uow.UnitOfWork` per database transaction, repositories that
hide SQL from the services, and migrations. The same code runs on SQLite (embedded default)
and PostgreSQL (production).

What may not: business rules. Repositories store and fetch; services decide. Every
merchant-owned table has ``merchant_id`` in its primary key so it can be distributed by
merchant later (Citus).
"""
