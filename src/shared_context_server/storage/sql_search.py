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


@functools.lru_cache(maxsize=64)
def _sqlite_terms(windows: int) -> Any:
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
    def search_terms(self, session_id: str, prefixes: Sequence[str], limit: int) -> list[str]:
        """Indexed words that start with each of ``prefixes``, the first ``limit`` of each
        alphabetically. SQLite's vocabulary spans every session (the limit bounds what is
        read); PostgreSQL's is the session's own, gathered in one pass."""
        found: list[str] = []
        with self._read() as conn:
            if self.dialect.name == "postgresql":
                params = {"session_id": session_id, "prefixes": list(prefixes), "limit": limit}
                found.extend(row[0] for row in conn.execute(_PG_TERMS, params))
            elif prefixes:
                windows: dict[str, Any] = {"limit": limit}
                for i, prefix in enumerate(prefixes):
                    windows[f"low{i}"] = prefix
                    windows[f"high{i}"] = prefix[:-1] + chr(ord(prefix[-1]) + 1)
                statement = _sqlite_terms(len(prefixes))
                found.extend(row[0] for row in conn.execute(statement, windows))
        return found

    @threaded
    def search_messages(self, search: TextSearch) -> list[Message]:
        if not search.words:
            return []
        statement = _candidates(
            self.dialect.name,
            search.scope.admin,
            search.scope.include_private,
            search.include_metadata,
        )
        match = _pg_match(search) if self.dialect.name == "postgresql" else _sqlite_match(search)
        params = {
            **reader_params(search.scope),
            "session_id": search.session_id,
            "query": match,
            "limit": search.limit,
        }
        with self._read() as conn:
            return [message_of(row) for row in conn.execute(statement, params)]


# ts_stat takes its query as text (so this one statement is a string); format(%L) quotes
# the session id. It reads the whole session once per search (the session's own words,
# never other sessions'); each prefix keeps its first :limit words. Words are compared
# without their accents, as SQLite's index (remove_diacritics) holds them: prefixes come
# without accents, and "jorg" must find "jörg".
_PG_TERMS = sa.text(
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
