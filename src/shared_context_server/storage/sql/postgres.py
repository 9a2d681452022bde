"""PostgreSQL: psycopg, advisory locks and row locks for turns, SQLSTATE error codes."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from shared_context_server.errors import StorageUnavailableError
from shared_context_server.storage.repositories.search import QueryWord
from shared_context_server.storage.sql.dialect import APPEND_LOCK_ID, Dialect, quoted
from shared_context_server.storage.sql.pg_listen import CHANNEL, PAYLOAD, listening
from shared_context_server.storage.store import ChangeWatch
from shared_context_server.storage.tables import messages

if TYPE_CHECKING:
    from shared_context_server.storage.sql.store import SqlStore

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
_BEGIN_APPEND = sa.text(
    f"SELECT pg_advisory_xact_lock(:lock_id), pg_notify('{CHANNEL}', {PAYLOAD})"
)


class PostgresDialect(Dialect):
    name = "postgresql"
    snapshot_options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}

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

    def begin_append(self, conn: sa.Connection, origin: str) -> None:
        # One round trip; NOTIFY is delivered when (and only if) the transaction commits.
        conn.execute(_BEGIN_APPEND, {"lock_id": APPEND_LOCK_ID, "origin": origin})

    def commit_signal(self, engine: sa.Engine) -> object | None:
        return None

    def watch_changes(
        self, store: SqlStore, interval: float
    ) -> AbstractAsyncContextManager[ChangeWatch]:
        return listening(store.engine.url, store.origin, interval)

    def unavailable_reason(self, orig: BaseException) -> str | None:
        state = getattr(orig, "sqlstate", None)
        if not isinstance(state, str):
            return None
        return _UNAVAILABLE.get(state) or _UNAVAILABLE_CLASSES.get(state[:2])

    def text_match(self, statement: sa.Select[Any], include_metadata: bool) -> sa.Select[Any]:
        tsquery = sa.func.to_tsquery(sa.literal_column("'simple'"), sa.bindparam("query"))
        matching = _document(include_metadata).op("@@")(tsquery)
        return statement.where(matching).order_by(messages.c.id.desc())

    def text_query(self, words: Sequence[QueryWord], every: bool, include_metadata: bool) -> str:
        """A tsquery (which columns match is the document's: see text_match)."""
        return (" & " if every else " | ").join(_tsquery_word(w) for w in words)

    def indexed_terms(
        self, conn: sa.Connection, session_id: str, prefixes: Sequence[str], limit: int
    ) -> list[str]:
        """The session's own words, gathered in one pass."""
        if not prefixes:
            return []
        params = {"session_id": session_id, "prefixes": list(prefixes), "limit": limit}
        return [row[0] for row in conn.execute(_TERMS, params)]


def _document(include_metadata: bool) -> sa.ColumnElement[Any]:
    # Exactly the expressions of migration 0003's indexes, constants inline, or PostgreSQL
    # would not use them.
    text = messages.c.sender.op("||")(sa.literal_column("' '")).op("||")(messages.c.content)
    if include_metadata:
        text = text.op("||")(sa.literal_column("' '")).op("||")(
            sa.cast(messages.c.metadata, sa.Text)
        )
    return sa.func.to_tsvector(sa.literal_column("'simple'"), text)


def _tsquery_word(word: QueryWord) -> str:
    spellings = [quoted(word.prefix, "'") + ":*", *(quoted(t, "'") for t in word.spellings)]
    return "(" + " | ".join(spellings) + ")"


# ts_stat takes its query as text (so this one statement is a string); format(%L) quotes
# the session id. It reads the whole session once per search (the session's own words,
# never other sessions'); each prefix keeps its first :limit words. Words are compared
# without their accents, as SQLite's index (remove_diacritics) holds them: prefixes come
# without accents, and "jorg" must find "jörg".
_TERMS = sa.text(
    "SELECT word FROM ("
    "SELECT s.word, row_number() OVER (PARTITION BY p.prefix ORDER BY s.word) AS n "
    "FROM ts_stat(format("
    "'SELECT to_tsvector(''simple'', sender || '' '' || content) "
    "FROM messages WHERE session_id = %L', CAST(:session_id AS text)"
    ")) AS s JOIN unnest(CAST(:prefixes AS text[])) AS p(prefix) "
    "ON starts_with(regexp_replace(normalize(s.word, NFD), '[\\u0300-\\u036f]', '', 'g'), "
    "p.prefix)"
    ") AS w WHERE n <= :limit ORDER BY word"
)
