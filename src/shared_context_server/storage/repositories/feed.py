"""The change feed: one row per change, read in id order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from shared_context_server.domain.events import Change, ChangeEvent
from shared_context_server.domain.models import Message


class FeedRepository(Protocol):
    def append(self, change: Change) -> ChangeEvent:
        """Called by the unit of work at commit, never by services."""
        ...

    def latest_id(self) -> int: ...

    def after(self, after_id: int, limit: int) -> list[ChangeEvent]:
        """At most ``limit`` events in id order, from just after ``after_id``."""
        ...

    def added_messages(self, after_id: int, last_id: int) -> list[Message]:
        """The messages that the message_added events after ``after_id`` up to
        ``last_id`` (inclusive) added, in id order."""
        ...

    def messages_by_id(self, ids: Sequence[int]) -> list[Message]:
        """The messages of ``ids`` that exist, in id order."""
        ...
