"""Fuzzy search over what the caller may see of a session (RapidFuzz)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from rapidfuzz import fuzz, process, utils

from shared_context_server.config import Limits
from shared_context_server.domain.limits import check_page
from shared_context_server.domain.models import Message
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import InvalidInputError, LimitExceededError
from shared_context_server.services.messages import MessageService

MAX_QUERY_CHARS = 1_000


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
    def __init__(self, messages: MessageService, limits: Limits) -> None:
        self._messages = messages
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
        visible = await self._messages.all_visible(principal, session_id)
        choices = {m.id: _searchable(m, include_metadata) for m in visible}
        by_id = {m.id: m for m in visible}
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
