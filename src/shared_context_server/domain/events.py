"""Domain events, published after commit. Adapters (MCP notifications, waits) subscribe.

Each event carries what the access rules need so a subscriber can decide, without a
database round trip, whether a given reader may hear of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared_context_server.domain.models import Message, Visibility


class EventKind(StrEnum):
    SESSION_CREATED = "session_created"
    SESSION_UPDATED = "session_updated"
    MESSAGE_ADDED = "message_added"
    # payload: {"old_visibility": ..., "reason": ...}; heard by readers under either visibility
    VISIBILITY_CHANGED = "visibility_changed"
    # payload: {"action": ..., "lock_type": ..., "fencing_token": ...}
    LOCK_CHANGED = "lock_changed"
    # payload: {"status": ...}
    PRESENCE_CHANGED = "presence_changed"
    # payload: {"jti": ...} or {"key": ...}. Heard by no reader (can_hear): it tells every
    # process sharing the database to drop its cached verifications of the credential.
    CREDENTIAL_REVOKED = "credential_revoked"


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """One row of the change feed."""

    id: int
    kind: EventKind
    session_id: str
    agent_id: str
    # For message events: who sent it and how visible it is; None for session events,
    # which every reader of the session may hear of.
    message_id: int | None = None
    sender_type: str | None = None
    visibility: Visibility | None = None
    origin: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Change:
    """A change a transaction records; at commit the feed gives it its id (``ChangeEvent``)."""

    kind: EventKind
    session_id: str
    agent_id: str
    at: datetime
    message_id: int | None = None
    sender_type: str | None = None
    visibility: Visibility | None = None
    payload: Mapping[str, Any] | None = None

    @classmethod
    def of_message(
        cls,
        kind: EventKind,
        message: Message,
        at: datetime,
        payload: Mapping[str, Any] | None = None,
    ) -> Change:
        """A message's change names its sender, type and visibility (whose access rule
        applies), so readers are filtered without reading the message."""
        return cls(
            kind,
            message.session_id,
            message.sender,
            at,
            message.id,
            message.sender_type,
            message.visibility,
            payload,
        )
