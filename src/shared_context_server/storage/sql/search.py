"""Full-text candidates for search on the index of migration 0003.

The index narrows a session of any size to the newest few hundred messages that contain
the query's words; the search service then ranks those with RapidFuzz. Newest first lets
both engines stop at the limit instead of scoring every match. The index's statements
are the backend's (``Dialect.text_match``, ``text_query``, ``indexed_terms``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from shared_context_server.domain.access import ReadScope
from shared_context_server.domain.models import Message
from shared_context_server.storage.repositories.search import TextSearch
from shared_context_server.storage.sql.repository import Repository
from shared_context_server.storage.sql.rows import message_of, reader_params, visible_to
from shared_context_server.storage.tables import messages

# Built once per backend and shape of scope: (dialect class, admin, private, metadata).
_CANDIDATES: dict[tuple[type, bool, bool, bool], sa.Select[Any]] = {}


class SqlSearch(Repository):
    __slots__ = ()

    def terms(self, session_id: str, prefixes: Sequence[str], limit: int) -> list[str]:
        return self.dialect.indexed_terms(self.conn, session_id, prefixes, limit)

    def matches(self, search: TextSearch) -> list[Message]:
        if not search.words:
            return []
        scope = search.scope
        params = {
            **reader_params(scope),
            "session_id": search.session_id,
            "query": self.dialect.text_query(search.words, search.every, search.include_metadata),
            "limit": search.limit,
        }
        statement = self._candidates(scope.admin, scope.include_private, search.include_metadata)
        return [message_of(row) for row in self.conn.execute(statement, params)]

    def _candidates(self, admin: bool, include_private: bool, metadata: bool) -> sa.Select[Any]:
        key = (type(self.dialect), admin, include_private, metadata)
        statement = _CANDIDATES.get(key)
        if statement is None:
            scope = ReadScope("", "", admin, include_private)
            visible = sa.select(messages).where(
                messages.c.session_id == sa.bindparam("session_id"), visible_to(scope)
            )
            matching = self.dialect.text_match(visible, metadata)
            statement = _CANDIDATES[key] = matching.limit(sa.bindparam("limit"))
        return statement
