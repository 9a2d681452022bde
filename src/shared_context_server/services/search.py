"""Fuzzy search over what the caller may see of a session.

Two steps keep it fast on sessions of any size: the full-text index picks the messages that
share a word (or a close spelling of one) with the query, then ``domain.relevance`` scores
those word by word, so a typo finds its message however long the message is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from rapidfuzz import utils

from shared_context_server.domain import relevance
from shared_context_server.domain.access import ReadScope, read_scope, require, require_session
from shared_context_server.domain.limits import Limits, check_page, check_text
from shared_context_server.domain.models import Message, Permission
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import (
    InvalidInputError,
    LimitExceededError,
    SessionNotFoundError,
)
from shared_context_server.storage.repositories.messages import MessageQuery
from shared_context_server.storage.repositories.search import QueryWord, TextSearch
from shared_context_server.storage.store import Store
from shared_context_server.storage.unit_of_work import Snapshot

MAX_QUERY_CHARS = 1_000
# A search scores this many full-text matches (or five per hit asked for, if more): the
# newest that contain every query word, then the newest that contain any. It bounds the
# cost of a search on a huge session.
CANDIDATES = 500
# ... and the newest this many messages the caller may see, whatever the index says (all
# of them, without the index, if the caller sees no more).
RECENT = 100
# The default fuzzy_threshold: relevance's score is the length-weighted share of the query's
# words found (each as spelled, or as close as a typo), so 60 asks for the longer part of
# the query, typos allowed; a message holding only "cache" of "cache invalidation" scores 31.
DEFAULT_THRESHOLD = 60.0
# Query words this long also match indexed words spelled alike (relevance's word score at
# least relevance.WORD_FLOOR): typos find their message.
TYPO_MIN_CHARS = 4
# The expansion's budget. The index's vocabulary spans every session on SQLite, so another
# session's words (say, one agent's flood of private ones) must not make this search read
# more: per query word it reads the first TERMS_PER_WINDOW indexed words (alphabetically)
# in each of at most WINDOWS_PER_WORD windows (see _windows), for at most TYPO_WORDS words
# of a query, and keeps the SPELLINGS_PER_WORD closest: at most TERM_BUDGET words examined.
TYPO_WORDS = 4
TERMS_PER_WINDOW = 200
WINDOWS = (2, 3, 4)
WINDOWS_PER_WORD = len(WINDOWS) + 5
TERM_BUDGET = TYPO_WORDS * WINDOWS_PER_WORD * TERMS_PER_WINDOW
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
    def __init__(self, store: Store, limits: Limits) -> None:
        self._store = store
        self._limits = limits

    async def fuzzy(
        self,
        principal: Principal,
        session_id: str,
        query: str,
        *,
        threshold: float = DEFAULT_THRESHOLD,
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
        require_session(principal, session_id)
        scope = read_scope(principal)
        wanted = max(CANDIDATES, 5 * limit)
        candidates = await self._store.read(
            lambda tx: _candidates(tx, scope, session_id, query, include_metadata, wanted)
        )
        texts = [set(relevance.words(_searchable(m, include_metadata))) for m in candidates]
        matcher = relevance.Matcher(relevance.Query.of(query), set().union(*texts))
        scored = ((matcher.score(t), m) for t, m in zip(texts, candidates, strict=True))
        # A message that matches no query word is no hit, even at threshold 0.
        hits = [SearchHit(m, round(s, 2)) for s, m in scored if s >= threshold and s > 0]
        # Best first; among equal scores, newest first.
        hits.sort(key=lambda hit: (-hit.score, -hit.message.id))
        return hits[:limit]


def _candidates(
    tx: Snapshot, scope: ReadScope, session_id: str, query: str, metadata: bool, limit: int
) -> list[Message]:
    """The newest RECENT messages the caller may see, whatever the index says, so there
    a typo the expansion cannot correct (in a word's first letters, a word split in two)
    still finds its message; if the caller sees no more than those, that is all. Else
    the full-text matches too: the newest with every query word, then with any. One
    snapshot."""
    if tx.sessions.get(session_id) is None:
        raise SessionNotFoundError(f"no session {session_id!r}", session_id=session_id)
    recent = tx.messages.list(MessageQuery(session_id, scope, limit=RECENT, newest_first=True))
    if len(recent) < RECENT:
        return recent
    search = TextSearch(
        session_id,
        scope,
        _query_words(tx, session_id, query),
        include_metadata=metadata,
        limit=limit,
    )
    found = tx.search.matches(replace(search, every=True))
    if len(found) < search.limit and len(search.words) > 1:
        seen = {m.id for m in found}
        more = tx.search.matches(search)
        found += [m for m in more if m.id not in seen][: search.limit - len(found)]
    seen = {m.id for m in found}
    return found + [m for m in recent if m.id not in seen]


def _query_words(tx: Snapshot, session_id: str, query: str) -> list[QueryWord]:
    """The query's words (one letter is too short to look up), each with the indexed
    words spelled alike if it is long enough to hold a typo (the first TYPO_WORDS).
    A word is looked up as typed (PostgreSQL indexes accents; SQLite ignores them) and
    compared without its accents."""
    typed = [w for w in dict.fromkeys(utils.default_process(query).split()) if len(w) > 1]
    plain = {w: relevance.normalise(w) for w in typed}
    long_words = [w for w in typed if len(plain[w]) >= TYPO_MIN_CHARS][:TYPO_WORDS]
    windows = {w: _windows(plain[w]) for w in long_words}
    prefixes = sorted({p for found in windows.values() for p in found})
    known = tx.search.terms(session_id, prefixes, TERMS_PER_WINDOW) if prefixes else []
    return [QueryWord(w, _alike(w, plain[w], known) if w in windows else ()) for w in typed]


def _alike(typed: str, word: str, known: list[str]) -> tuple[str, ...]:
    """The SPELLINGS_PER_WORD indexed words the scorer rates closest to ``word``, compared
    as the scorer sees them (PostgreSQL indexes "jörg" as written; "jorg" must find it),
    but not ``typed`` itself: the prefix search finds that."""
    seen: dict[str, list[str]] = {}
    for term in dict.fromkeys(known):
        seen.setdefault(relevance.normalise(term), []).append(term)
    scores = relevance.word_scores(word, list(seen))
    best = sorted(scores, key=lambda t: (-scores[t], t))
    spellings = [term for t in best for term in seen[t] if term != typed]
    return tuple(sorted(spellings[:SPELLINGS_PER_WORD]))


def _windows(word: str) -> list[str]:
    """The prefixes whose first indexed words are read for ``word``: its first 2, 3 and 4
    letters (never the whole word: its prefix search finds those already), and the first
    3 letters the word would start with if one of its first letters were a slip: two
    neighbours swapped (at 0-1, 1-2, 2-3) or a letter too many (at 0, 1, 2)."""
    own = [word[:n] for n in WINDOWS if n < len(word)]
    a, b, c, d = word[0], word[1], word[2], word[3]
    slips = [b + a + c, a + c + b, a + b + d, b + c + d, a + c + d]
    return list(dict.fromkeys(own + [s for s in slips if s not in own]))[:WINDOWS_PER_WORD]
