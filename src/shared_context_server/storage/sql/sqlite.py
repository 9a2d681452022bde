"""SQLite, the embedded default: pragmas, one writer at a time, file-stat commit signal."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager, nullcontext
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import sqlite

from shared_context_server.storage.repositories.search import QueryWord
from shared_context_server.storage.sql.dialect import Dialect, quoted
from shared_context_server.storage.store import ChangeWatch
from shared_context_server.storage.tables import messages

if TYPE_CHECKING:
    from shared_context_server.storage.sql.store import SqlStore

# SQLite result codes (sqlite3 errors carry them as ``sqlite_errorname``; extended codes
# such as SQLITE_READONLY_DBMOVED or SQLITE_IOERR_WRITE start with these).
_UNAVAILABLE = (
    ("SQLITE_FULL", "disk_full"),
    ("SQLITE_READONLY", "read_only"),
    ("SQLITE_CANTOPEN", "unreachable"),
    ("SQLITE_IOERR", "io_error"),
    ("SQLITE_BUSY", "busy"),
    ("SQLITE_LOCKED", "busy"),
    ("SQLITE_NOTADB", "io_error"),
    ("SQLITE_CORRUPT", "io_error"),
)

# The FTS5 index of messages and its vocabulary (migration 0003).
_fts = sa.table("messages_fts", sa.column("rowid"), sa.column("rank"), sa.column("messages_fts"))
_terms = sa.table("messages_terms", sa.column("term"))


class SqliteDialect(Dialect):
    name = "sqlite"
    read_options = {"sqlite_begin": "DEFERRED"}
    snapshot_options = read_options  # a read transaction already sees one snapshot

    def __init__(self) -> None:
        # SQLite admits one writer at a time and makes the others sleep in its busy handler
        # (1 ms, 2 ms, 5 ms ... up to 100 ms). This process's writers take turns here
        # instead, so they never sleep against each other; other processes still meet the
        # busy timeout.
        self._write_turn = threading.Lock()

    def create_engine(self, url: sa.URL, *, busy_timeout_ms: int) -> sa.Engine:
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
            # up front (IMMEDIATE) and never fail on a read-to-write upgrade between
            # processes.
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

    def insert(self, table: sa.Table) -> Any:
        return sqlite.insert(table)

    def take_turn(self, conn: sa.Connection, lock_id: int) -> None:
        """Nothing to do: a write transaction (BEGIN IMMEDIATE) excludes every other writer."""

    def for_update(self, statement: sa.Select[Any]) -> sa.Select[Any]:
        return statement  # the write transaction already holds the whole database

    def write_turn(self) -> AbstractContextManager[Any]:
        return self._write_turn

    def begin_append(self, conn: sa.Connection, origin: str) -> None:
        """Nothing to do: one write transaction at a time commits in id order, and other
        processes see a commit in the file's stat (``watch_changes``)."""

    def watch_changes(
        self, store: SqlStore, interval: float
    ) -> AbstractAsyncContextManager[ChangeWatch]:
        return nullcontext(_StatWatch(self, store, interval))

    def commit_signal(self, engine: sa.Engine) -> object | None:
        """The size and modification time of the database and its WAL: two stat calls,
        cheap enough to ask every few milliseconds."""
        path = engine.url.database
        if not path or path == ":memory:":
            return None
        signal: list[tuple[int, int] | None] = []
        for name in (path, path + "-wal"):
            try:
                stat = os.stat(name)
            except FileNotFoundError:
                signal.append(None)
            else:
                signal.append((stat.st_mtime_ns, stat.st_size))
        return tuple(signal)

    def unavailable_reason(self, orig: BaseException) -> str | None:
        name = getattr(orig, "sqlite_errorname", None)
        if not isinstance(name, str):
            return None
        return next((reason for code, reason in _UNAVAILABLE if name.startswith(code)), None)

    def text_match(self, statement: sa.Select[Any], include_metadata: bool) -> sa.Select[Any]:
        # Which columns match is the query's (see text_query): one index serves both.
        return (
            statement.join(_fts, _fts.c.rowid == messages.c.id)
            .where(_fts.c.messages_fts.op("MATCH")(sa.bindparam("query")))
            .order_by(_fts.c.rowid.desc())
        )

    def text_query(self, words: Sequence[QueryWord], every: bool, include_metadata: bool) -> str:
        """An FTS5 query; without metadata, limited to the sender and content columns."""
        query = (" AND " if every else " OR ").join(_fts_word(w) for w in words)
        return query if include_metadata else f"{{sender content}} : ({query})"

    def indexed_terms(
        self, conn: sa.Connection, session_id: str, prefixes: Sequence[str], limit: int
    ) -> list[str]:
        """The vocabulary spans every session: the limit bounds what is read."""
        if not prefixes:
            return []
        windows: dict[str, Any] = {"limit": limit}
        for i, prefix in enumerate(prefixes):
            windows[f"low{i}"] = prefix
            windows[f"high{i}"] = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        return [row[0] for row in conn.execute(_terms_statement(len(prefixes)), windows)]


def _fts_word(word: QueryWord) -> str:
    spellings = [quoted(word.prefix, '"') + "*", *(quoted(t, '"') for t in word.spellings)]
    return "(" + " OR ".join(spellings) + ")"


@lru_cache(maxsize=64)
def _terms_statement(windows: int) -> Any:
    """One statement for ``windows`` prefixes: fts5vocab walks its terms in order, so with
    ORDER BY term and LIMIT each window reads no more than the limit, however many words
    other sessions added."""
    parts = [
        sa.select(_terms.c.term)
        .where(_terms.c.term >= sa.bindparam(f"low{i}"), _terms.c.term < sa.bindparam(f"high{i}"))
        .order_by(_terms.c.term)
        .limit(sa.bindparam("limit"))
        .subquery()
        .select()
        for i in range(windows)
    ]
    return sa.union_all(*parts) if len(parts) > 1 else parts[0]


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


# Even when the file's stat says nothing new, read the feed this often: a foreign commit
# that lands between one of ours and its stat counts as ours.
FULL_READ_SECONDS = 1.0


class _StatWatch:
    """Another process committed when the database file or its WAL changed and this
    store's last commit was not what changed them."""

    def __init__(self, dialect: SqliteDialect, store: SqlStore, interval: float) -> None:
        self._dialect, self._store, self._interval = dialect, store, interval
        self._seen: object | None = None

    async def wait(self) -> None:
        deadline = time.monotonic() + FULL_READ_SECONDS
        while time.monotonic() < deadline:
            signal = self._dialect.commit_signal(self._store.engine)
            if signal is None:  # an in-memory database: nobody else shares it
                await anyio.sleep(FULL_READ_SECONDS)
                return
            changed = signal != self._seen and signal != self._store.own_commit_signal
            self._seen = signal
            if changed:
                return
            await anyio.sleep(self._interval)
