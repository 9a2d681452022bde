"""The change feed: one row per change, read in id order."""

from __future__ import annotations

from typing import Protocol

from shared_context_server.domain.events import Change, ChangeEvent


class FeedRepository(Protocol):
    def append(self, change: Change) -> ChangeEvent:
        """Called by the unit of work at commit, never by services."""
        ...

    def latest_id(self) -> int: ...
