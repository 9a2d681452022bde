"""The few statements whose SQL differs between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignoring_conflict(
    dialect: str, table: sa.Table, values: dict[str, Any], keys: Sequence[str]
) -> sa.Executable:
    """INSERT … ON CONFLICT DO NOTHING RETURNING the primary key: a row back means inserted.

    (The driver's rowcount is not usable here: PostgreSQL reports -1 for such an insert.)
    """
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table).values(values).on_conflict_do_nothing(index_elements=list(keys))
    return statement.returning(*table.primary_key.columns)


def upsert(
    dialect: str,
    table: sa.Table,
    values: dict[str, Any],
    keys: Sequence[str],
    update: Sequence[str],
) -> sa.Executable:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table).values(values)
    return statement.on_conflict_do_update(
        index_elements=list(keys), set_={name: statement.excluded[name] for name in update}
    )


# Any constant will do; every server process sharing the database uses the same one.
MIGRATION_LOCK_ID = 0x5C5_0001


def serialise_migrations(connection: sa.Connection) -> None:
    """Make concurrent upgrades of one database take turns, inside the open transaction.

    SQLite needs nothing: its write transaction (BEGIN IMMEDIATE) already excludes other
    writers. PostgreSQL takes a transaction-scoped advisory lock, so a second process waits,
    then finds the schema at head and does nothing.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK_ID)))


AUDIT_LOCK_ID = 0x5C5_0002


def serialise_audit(connection: sa.Connection) -> None:
    """Audit appends take turns so the hash chain has one next link. SQLite's write
    transaction already excludes other writers; PostgreSQL takes an advisory lock."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(AUDIT_LOCK_ID)))
