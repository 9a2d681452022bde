"""Engine construction: what differs by database lives here and in ``dialects``."""

from __future__ import annotations

import importlib.util
import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from shared_context_server.errors import StorageUnavailableError
from shared_context_server.storage.secret_files import restrict


def create_engine(url: str, *, busy_timeout_ms: int = 10_000) -> sa.Engine:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, busy_timeout_ms)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername == "postgresql+psycopg" and importlib.util.find_spec("psycopg") is None:
        raise StorageUnavailableError(
            "a PostgreSQL database needs the postgres extra: "
            "pip install 'shared-context-server[postgres]'"
        )
    # hide_parameters: a database error never carries message content into a log.
    return sa.create_engine(
        parsed, pool_pre_ping=True, pool_size=10, max_overflow=20, hide_parameters=True
    )


def _sqlite_engine(url: sa.URL, busy_timeout_ms: int) -> sa.Engine:
    if url.database and url.database != ":memory:":
        # Owner-only: the directory holds the data and, by default, the secrets.
        Path(url.database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = sa.create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
        pool_size=8,
        max_overflow=8,
        hide_parameters=True,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself, so writes can take the lock
        # up front (IMMEDIATE) and never fail on a read-to-write upgrade between processes.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        _use_wal(cursor, busy_timeout_ms)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Key prefixes and globs compare case-sensitively, as on PostgreSQL.
        cursor.execute("PRAGMA case_sensitive_like=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _use_wal(cursor: Any, busy_timeout_ms: int) -> None:
    """Switch a new database file to WAL (the mode persists in the file).

    The switch needs the file to itself and SQLite does not wait for that, so a process
    that starts while another holds it retries for up to the busy timeout.
    """
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def restrict_database_files(engine: sa.Engine) -> None:
    """A SQLite database and its -wal and -shm files become owner-only (0600); SQLite
    gives the files it creates later the database file's mode."""
    path = engine.url.database
    if engine.dialect.name != "sqlite" or not path or path == ":memory:":
        return
    for name in (path, path + "-wal", path + "-shm"):
        restrict(Path(name))


def read_options(engine: sa.Engine) -> dict[str, Any]:
    """Execution options for a read-only transaction."""
    return {"sqlite_begin": "DEFERRED"} if engine.dialect.name == "sqlite" else {}
