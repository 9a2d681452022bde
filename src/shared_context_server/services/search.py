"""Fuzzy search over what the caller may see of a session.

Two steps keep it fast on sessions of any size: the full-text index picks the messages that
share a word (or a close spelling of one) with the query, then RapidFuzz scores those.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from rapidfuzz import fuzz, process, utils

from shared_context_server.config import Limits
from shared_context_server.domain.access import read_scope, require
from shared_context_server.domain.limits import check_page
from shared_context_server.domain.models import Message, Permission
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import InvalidInputError, LimitExceededError
from shared_context_server.services.sessions import SessionService
from shared_context_server.storage.store import Store, TextSearch

MAX_QUERY_CHARS = 1_000
# RapidFuzz scores the best full-text matches, at least this many (and five per hit asked
# for): it bounds the cost of a search on a huge session.
CANDIDATES = 500
# Query words this long also match indexed words spelled alike (same first two letters,
# RapidFuzz ratio at least SIMILAR_WORD): typos find their message.
TYPO_MIN_CHARS = 4
SIMILAR_WORD = 75


@dataclass(frozen=True, slots=True)
class SearchHit:
    message: Message
    score: float


def _searchable(message: Message, include_metadata: bool) -> str:
    text = f"{message.sender} {message.content}"
    if include_metadata and message.metadata:
        text += " " + json.dumps(message.metadata, ensure_ascii=False)
    return text


class SearchService:
    def __init__(self, store: Store, sessions: SessionService, limits: Limits) -> None:
        self._store = store
        self._sessions = sessions
        self._limits = limits

    async def fuzzy(
        self,
        principal: Principal,
        session_id: str,
        query: str,
        *,
        threshold: float = 60.0,
        limit: int = 10,
        include_metadata: bool = True,
    ) -> list[SearchHit]:
        if not query.strip():
            raise InvalidInputError("query must not be empty", field="query")
        if len(query) > MAX_QUERY_CHARS:
            raise LimitExceededError(
                f"query is longer than {MAX_QUERY_CHARS} characters", field="query"
            )
        if not 0 <= threshold <= 100:
            raise InvalidInputError("threshold must be between 0 and 100", field="threshold")
        check_page(self._limits, limit, cap=self._limits.search_hits)
        require(principal, Permission.READ)
        await self._sessions.find(session_id, principal)
        words = utils.default_process(query).split()
        candidates = await self._store.search_messages(
            TextSearch(
                session_id,
                read_scope(principal),
                words=[w for w in words if len(w) > 1],
                terms=[w for w in words if len(w) == 1]
                + await self._similar_words(session_id, words),
                include_metadata=include_metadata,
                limit=max(CANDIDATES, 5 * limit),
            )
        )
        choices = {m.id: _searchable(m, include_metadata) for m in candidates}
        by_id = {m.id: m for m in candidates}
        matches = process.extract(
            query,
            choices,
            scorer=fuzz.WRatio,
            processor=utils.default_process,
            score_cutoff=threshold,
            limit=limit,
        )
        hits = [SearchHit(by_id[key], round(float(score), 2)) for _, score, key in matches]
        # Best first; among equal scores, newest first.
        hits.sort(key=lambda hit: (-hit.score, -hit.message.id))
        return hits

    async def _similar_words(self, session_id: str, words: list[str]) -> list[str]:
        long_words = [w for w in words if len(w) >= TYPO_MIN_CHARS]
        prefixes = sorted({w[:2] for w in long_words})
        known = await self._store.search_terms(session_id, prefixes) if prefixes else []
        similar = {
            term
            for word in long_words
            for term, _, _ in process.extract(
                word, known, scorer=fuzz.ratio, score_cutoff=SIMILAR_WORD, limit=None
            )
        }
        return sorted(similar)
