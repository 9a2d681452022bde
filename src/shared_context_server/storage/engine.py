"""Engine construction: each backend's settings live in its dialect module."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from shared_context_server.storage.secret_files import restrict
from shared_context_server.storage.sql.dialect import Dialect


def dialect_for(url: str | sa.URL) -> Dialect:
    """The dialect module for a database URL's backend."""
    if sa.make_url(url).get_backend_name() == "postgresql":
        from shared_context_server.storage.sql.postgres import PostgresDialect

        return PostgresDialect()
    from shared_context_server.storage.sql.sqlite import SqliteDialect

    return SqliteDialect()


def create_engine(
    url: str, *, busy_timeout_ms: int = 10_000, dialect: Dialect | None = None
) -> sa.Engine:
    dialect = dialect or dialect_for(url)
    return dialect.create_engine(sa.make_url(url), busy_timeout_ms=busy_timeout_ms)


def restrict_database_files(engine: sa.Engine) -> None:
    """A SQLite database and its -wal and -shm files become owner-only (0600); SQLite
    gives the files it creates later the database file's mode."""
    path = engine.url.database
    if engine.dialect.name != "sqlite" or not path or path == ":memory:":
        return
    for name in (path, path + "-wal", path + "-shm"):
        restrict(Path(name))
