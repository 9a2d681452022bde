"""The few statements whose SQL differs between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from shared_context_server.storage.tables import counters, sessions

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql


def _dialect_insert(dialect: str) -> Callable[[sa.Table], postgresql.Insert | sqlite.Insert]:
    """The dialect's INSERT with ON CONFLICT; PostgreSQL's dialect is imported only when a
    PostgreSQL database is used (a SQLite start is spared it)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    return sqlite.insert


def _insert(
    dialect: str, table: sa.Table, values: dict[str, Any] | None
) -> postgresql.Insert | sqlite.Insert:
    statement = _dialect_insert(dialect)(table)
    # Without values the statement is reusable: the row comes as execute() parameters.
    return statement if values is None else statement.values(values)


def insert_ignoring_conflict(
    dialect: str, table: sa.Table, values: dict[str, Any] | None, keys: Sequence[str]
) -> sa.Executable:
    """INSERT … ON CONFLICT DO NOTHING RETURNING the primary key: a row back means inserted.

    (The driver's rowcount is not usable here: PostgreSQL reports -1 for such an insert.)
    """
    statement = _insert(dialect, table, values).on_conflict_do_nothing(index_elements=list(keys))
    return statement.returning(*table.primary_key.columns)


def upsert(
    dialect: str,
    table: sa.Table,
    values: dict[str, Any] | None,
    keys: Sequence[str],
    update: Sequence[str],
    computed: Mapping[str, Any] | None = None,
) -> sa.Executable:
    """INSERT, or on a key conflict UPDATE the ``update`` columns from the new values and
    the ``computed`` ones from expressions (such as ``version + 1``)."""
    statement = _insert(dialect, table, values)
    assignments = {name: statement.excluded[name] for name in update}
    assignments.update(computed or {})
    return statement.on_conflict_do_update(index_elements=list(keys), set_=assignments)


def accumulate(
    dialect: str, table: sa.Table, keys: Sequence[str], totals: Sequence[str]
) -> sa.Executable:
    """INSERT a row of totals, or on a key conflict add the new values to the stored ones
    (``total = total + excluded.total``), RETURNING the totals after: one atomic statement
    that leaves the row locked; rows given at execute()."""
    statement = _insert(dialect, table, None)
    added = {name: table.c[name] + statement.excluded[name] for name in totals}
    upsert = statement.on_conflict_do_update(index_elements=list(keys), set_=added)
    return upsert.returning(*(table.c[name] for name in totals))


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


def serialise_session(connection: sa.Connection, session_id: str) -> str | None:
    """Lock decisions on one session take turns; returns the session's status (None: no
    such session).

    SQLite's write transaction (BEGIN IMMEDIATE) already excludes every other writer.
    PostgreSQL locks the session's row FOR UPDATE: the row ``add_message`` updates before it
    checks for an exclusive lock, so a grant and a write in that session are ordered too.
    """
    statement = sa.select(sessions.c.status).where(sessions.c.id == session_id)
    if connection.dialect.name == "postgresql":
        statement = statement.with_for_update()
    status = connection.execute(statement).scalar()
    return None if status is None else str(status)


def next_counter(connection: sa.Connection, name: str) -> int:
    """Bump the named counter inside the open transaction and return its new value.

    One atomic upsert on both backends; PostgreSQL keeps the row locked until commit, so
    values are handed out in commit order.
    """
    bump = (
        _dialect_insert(connection.dialect.name)(counters)
        .values(name=name, value=1)
        .on_conflict_do_update(index_elements=["name"], set_={"value": counters.c.value + 1})
        .returning(counters.c.value)
    )
    return int(connection.execute(bump).scalar_one())
