"""Messages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared_context_server.domain.access import ReadScope
from shared_context_server.domain.models import Message, NewMessage, Session, Visibility


@dataclass(frozen=True, slots=True)
class MessageQuery:
    session_id: str
    scope: ReadScope
    limit: int = 50
    offset: int = 0
    after_id: int | None = None
    newest_first: bool = False
    senders: Sequence[str] = ()
    message_type: str | None = None
    visibilities: Sequence[Visibility] = ()
    sender_types: Sequence[str] = ()
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class MessageRead:
    """Messages read in one snapshot with their session and the change-feed position."""

    session: Session
    messages: list[Message]
    feed_cursor: int


@dataclass(frozen=True, slots=True)
class Tally:
    """What a reader may see of a session's messages, in numbers."""

    messages: int
    last_at: datetime | None
    # Who posted them, most recent first (at most ``senders`` of ``tally``).
    senders: list[str]


class MessageRepository(Protocol):
    def insert(self, new: NewMessage, now: datetime) -> tuple[Message, dict[str, object]]:
        """The stored message and the row written (for its audit digest)."""
        ...

    def get(self, message_id: int) -> Message | None: ...

    def set_visibility(self, message_id: int, visibility: Visibility) -> dict[str, object]:
        """The row after the change (for its audit digest)."""
        ...

    def list(self, query: MessageQuery) -> list[Message]: ...

    def tally(self, session_ids: Sequence[str], scope: ReadScope, senders: int) -> dict[str, Tally]:
        """Per session, the messages ``scope`` may see: how many, the latest's time and
        their most recent ``senders`` senders (a session without any is left out)."""
        ...
