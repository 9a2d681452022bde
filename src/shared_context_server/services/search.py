"""Fuzzy search over what the caller may see of a session.

Two steps keep it fast on sessions of any size: the full-text index picks the messages that
share a word (or a close spelling of one) with the query, then RapidFuzz scores those.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from rapidfuzz import fuzz, process, utils

from shared_context_server.config import Limits
from shared_context_server.domain.access import read_scope, require
from shared_context_server.domain.limits import check_page, check_text
from shared_context_server.domain.models import Message, Permission
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import InvalidInputError, LimitExceededError
from shared_context_server.services.sessions import SessionService
from shared_context_server.storage.store import QueryWord, Store, TextSearch

MAX_QUERY_CHARS = 1_000
# RapidFuzz scores this many full-text matches (or five per hit asked for, if more): the
# newest that contain every query word, then the newest that contain any. It bounds the
# cost of a search on a huge session.
CANDIDATES = 500
# Query words this long also match indexed words spelled alike (same first two letters,
# RapidFuzz ratio at least SIMILAR_WORD): typos find their message.
TYPO_MIN_CHARS = 4
SIMILAR_WORD = 75
# The expansion's budget. The index's vocabulary spans every session on SQLite, so another
# session's words (say, one agent's flood of private ones) must not make this search read
# more: per query word it reads the first TERMS_PER_WINDOW indexed words (alphabetically)
# that start with the word's first 2, 3 and 4 letters, for at most TYPO_WORDS words of a
# query, and keeps the SPELLINGS_PER_WORD closest: at most TERM_BUDGET words examined.
TYPO_WORDS = 4
TERMS_PER_WINDOW = 200
WINDOWS = (2, 3, 4)
TERM_BUDGET = TYPO_WORDS * len(WINDOWS) * TERMS_PER_WINDOW
SPELLINGS_PER_WORD = 16


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
        check_text(query, "query")
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
        candidates = await self._candidates(
            TextSearch(
                session_id,
                read_scope(principal),
                await self._query_words(session_id, query),
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

    async def _candidates(self, search: TextSearch) -> list[Message]:
        found = await self._store.search_messages(replace(search, every=True))
        if len(found) < search.limit and len(search.words) > 1:
            seen = {m.id for m in found}
            more = await self._store.search_messages(search)
            found += [m for m in more if m.id not in seen][: search.limit - len(found)]
        return found

    async def _query_words(self, session_id: str, query: str) -> list[QueryWord]:
        """The query's words (one letter is too short to look up), each with the indexed
        words spelled alike if it is long enough to hold a typo (the first TYPO_WORDS)."""
        words = [w for w in dict.fromkeys(utils.default_process(query).split()) if len(w) > 1]
        long_words = [w for w in words if len(w) >= TYPO_MIN_CHARS][:TYPO_WORDS]
        windows = {w: _windows(w) for w in long_words}
        prefixes = sorted({p for found in windows.values() for p in found})
        known = (
            await self._store.search_terms(session_id, prefixes, TERMS_PER_WINDOW)
            if prefixes
            else []
        )
        return [QueryWord(w, self._alike(w, known) if w in windows else ()) for w in words]

    @staticmethod
    def _alike(word: str, known: list[str]) -> tuple[str, ...]:
        candidates = [term for term in dict.fromkeys(known) if term[:2] == word[:2]]
        matches = process.extract(
            word, candidates, scorer=fuzz.ratio, score_cutoff=SIMILAR_WORD, limit=None
        )
        best = [term for term, _, _ in matches if term != word][:SPELLINGS_PER_WORD]
        return tuple(sorted(best))


def _windows(word: str) -> list[str]:
    """The prefixes whose first indexed words are read for ``word``: its first 2, 3 and 4
    letters, but never the whole word (its prefix search finds those already)."""
    return [word[:n] for n in WINDOWS if n < len(word)]
