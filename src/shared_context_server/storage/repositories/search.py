"""Search: full-text candidates and the index's words (migration 0003's index)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from shared_context_server.domain.access import ReadScope
from shared_context_server.domain.models import Message


@dataclass(frozen=True, slots=True)
class QueryWord:
    """A word of a search: found as the prefix of an indexed word, or as one of
    ``spellings`` (indexed words spelled alike) whole."""

    prefix: str
    spellings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TextSearch:
    """Messages of a session, visible in ``scope``, that contain every one of ``words``
    (``every``) or any of them; newest first, at most ``limit``."""

    session_id: str
    scope: ReadScope
    words: Sequence[QueryWord]
    every: bool = False
    include_metadata: bool = True
    limit: int = 500


class SearchRepository(Protocol):
    def terms(self, session_id: str, prefixes: Sequence[str], limit: int) -> list[str]:
        """Indexed words starting with each of ``prefixes``, at most ``limit`` per prefix
        (the first in alphabetical order), for typo-tolerant search."""
        ...

    def matches(self, search: TextSearch) -> list[Message]:
        """The messages the index finds for ``search``, newest first."""
        ...
