"""Domain events, published after commit. Adapters (MCP notifications, waits) subscribe.

Each event carries what the access rules need so a subscriber can decide, without a
database round trip, whether a given reader may hear of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shared_context_server.domain.models import Visibility


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
