"""Full-text candidates for search: SQLite FTS5, PostgreSQL text search (migration 0003).

The index narrows a session of any size to the newest few hundred messages that contain
the query's words; the search service then ranks those with RapidFuzz. Newest first lets
both engines stop at the limit instead of scoring every match.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from shared_context_server.domain.access import ReadScope
from shared_context_server.domain.models import Message
from shared_context_server.storage.sql_base import (
    SqlBase,
    message_of,
    reader_params,
    threaded,
    visible_to,
)
from shared_context_server.storage.store import QueryWord, TextSearch
from shared_context_server.storage.tables import messages

_fts = sa.table("messages_fts", sa.column("rowid"), sa.column("rank"), sa.column("messages_fts"))
_terms = sa.table("messages_terms", sa.column("term"))
_SQLITE_TERMS = sa.select(_terms.c.term).where(
    _terms.c.term >= sa.bindparam("low"), _terms.c.term < sa.bindparam("high")
)


def _pg_document(include_metadata: bool) -> sa.ColumnElement[Any]:
    # Exactly the expressions of migration 0003's indexes, constants inline, or PostgreSQL
    # would not use them.
    text = messages.c.sender.op("||")(sa.literal_column("' '")).op("||")(messages.c.content)
    if include_metadata:
        text = text.op("||")(sa.literal_column("' '")).op("||")(
            sa.cast(messages.c.metadata, sa.Text)
        )
    return sa.func.to_tsvector(sa.literal_column("'simple'"), text)


@functools.lru_cache(maxsize=64)
def _candidates(dialect: str, admin: bool, include_private: bool, metadata: bool) -> Any:
    scope = ReadScope("", "", admin, include_private)
    statement = sa.select(messages).where(
        messages.c.session_id == sa.bindparam("session_id"), visible_to(scope)
    )
    query: sa.BindParameter[str] = sa.bindparam("query")
    if dialect == "postgresql":
        document = _pg_document(metadata)
        tsquery = sa.func.to_tsquery(sa.literal_column("'simple'"), query)
        statement = statement.where(document.op("@@")(tsquery)).order_by(messages.c.id.desc())
    else:
        statement = (
            statement.join(_fts, _fts.c.rowid == messages.c.id)
            .where(_fts.c.messages_fts.op("MATCH")(query))
            .order_by(_fts.c.rowid.desc())
        )
    return statement.limit(sa.bindparam("limit"))


def _quoted(word: str, quote: str) -> str:
    return quote + word.replace(quote, quote * 2) + quote


def _sqlite_word(word: QueryWord) -> str:
    spellings = [_quoted(word.prefix, '"') + "*", *(_quoted(t, '"') for t in word.spellings)]
    return "(" + " OR ".join(spellings) + ")"


def _sqlite_match(search: TextSearch) -> str:
    """An FTS5 query: every (or any) word, each as a prefix or one of its spellings."""
    words = (" AND " if search.every else " OR ").join(_sqlite_word(w) for w in search.words)
    return words if search.include_metadata else f"{{sender content}} : ({words})"


def _pg_word(word: QueryWord) -> str:
    spellings = [_quoted(word.prefix, "'") + ":*", *(_quoted(t, "'") for t in word.spellings)]
    return "(" + " | ".join(spellings) + ")"


def _pg_match(search: TextSearch) -> str:
    """The same as a PostgreSQL tsquery."""
    return (" & " if search.every else " | ").join(_pg_word(w) for w in search.words)


class SearchRows(SqlBase):
    @threaded
    def search_terms(self, session_id: str, prefixes: Sequence[str]) -> list[str]:
        """Indexed words that start with one of ``prefixes``."""
        found: list[str] = []
        with self._read() as conn:
            for prefix in prefixes:
                if self.dialect == "postgresql":
                    found.extend(conn.execute(_PG_TERMS, _pg_terms_params(session_id, prefix)))
                else:
                    high = prefix[:-1] + chr(ord(prefix[-1]) + 1)
                    found.extend(conn.execute(_SQLITE_TERMS, {"low": prefix, "high": high}))
        return [row[0] for row in found]

    @threaded
    def search_messages(self, search: TextSearch) -> list[Message]:
        if not search.words:
            return []
        statement = _candidates(
            self.dialect, search.scope.admin, search.scope.include_private, search.include_metadata
        )
        match = _pg_match(search) if self.dialect == "postgresql" else _sqlite_match(search)
        params = {
            **reader_params(search.scope),
            "session_id": search.session_id,
            "query": match,
            "limit": search.limit,
        }
        with self._read() as conn:
            return [message_of(row) for row in conn.execute(statement, params)]


# ts_stat takes its query as text (so this one statement is a string); format(%L) quotes
# the session id. It reads the whole session: slower than SQLite's vocabulary table.
_PG_TERMS = sa.text(
    "SELECT word FROM ts_stat(format("
    "'SELECT to_tsvector(''simple'', sender || '' '' || content) "
    "FROM messages WHERE session_id = %L', CAST(:session_id AS text)"
    ")) WHERE word LIKE :pattern"
)


def _pg_terms_params(session_id: str, prefix: str) -> dict[str, str]:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return {"session_id": session_id, "pattern": escaped + "%"}
