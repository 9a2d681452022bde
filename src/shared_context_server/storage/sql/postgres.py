"""PostgreSQL: psycopg, advisory locks and row locks for turns, SQLSTATE error codes."""

from __future__ import annotations

import importlib.util
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import sqlalchemy as sa

from shared_context_server.errors import StorageUnavailableError
from shared_context_server.storage.sql.dialect import Dialect

# SQLSTATEs: exact codes, then classes.
_UNAVAILABLE = {
    "53100": "disk_full",
    "25006": "read_only",
    "57P01": "unreachable",  # admin shutdown
    "57P02": "unreachable",  # crash shutdown
    "57P03": "unreachable",  # cannot connect now
    "55P03": "busy",  # lock not available
    "57014": "busy",  # statement timeout
}
_UNAVAILABLE_CLASSES = {"08": "unreachable", "53": "busy", "58": "io_error"}


class PostgresDialect(Dialect):
    name = "postgresql"

    def create_engine(self, url: sa.URL, *, busy_timeout_ms: int) -> sa.Engine:
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        if url.drivername == "postgresql+psycopg" and importlib.util.find_spec("psycopg") is None:
            raise StorageUnavailableError(
                "a PostgreSQL database needs the postgres extra: "
                "pip install 'shared-context-server[postgres]'"
            )
        # hide_parameters: a database error never carries message content into a log.
        return sa.create_engine(
            url, pool_pre_ping=True, pool_size=10, max_overflow=20, hide_parameters=True
        )

    def insert(self, table: sa.Table) -> Any:
        # Imported only when a PostgreSQL database is used: a SQLite start is spared it.
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)

    def take_turn(self, conn: sa.Connection, lock_id: int) -> None:
        """A transaction-scoped advisory lock: released at commit or rollback."""
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_id)))

    def for_update(self, statement: sa.Select[Any]) -> sa.Select[Any]:
        return statement.with_for_update()

    def write_turn(self) -> AbstractContextManager[Any]:
        return nullcontext()  # row locks order the writers that meet

    def commit_signal(self, engine: sa.Engine) -> object | None:
        return None

    def unavailable_reason(self, orig: BaseException) -> str | None:
        state = getattr(orig, "sqlstate", None)
        if not isinstance(state, str):
            return None
        return _UNAVAILABLE.get(state) or _UNAVAILABLE_CLASSES.get(state[:2])
