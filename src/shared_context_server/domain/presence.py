"""Presence: which agents are around, what they say they are doing, when they were last seen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from shared_context_server.domain.models import Permission

# Agent-level presence events are not about one session; their feed rows carry this id.
NO_SESSION = ""


class PresenceStatus(StrEnum):
    ACTIVE = "active"
    BUSY = "busy"
    IDLE = "idle"
    # Never stored: an agent not seen within the presence window shows as offline.
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class AgentPresence:
    agent_id: str
    agent_type: str
    # What the agent last registered (or active); see ``status_at`` for what others see.
    status: PresenceStatus
    last_seen: datetime
    first_seen: datetime
    # The permissions of the last call that was recorded.
    permissions: frozenset[Permission]
    # For a session listing: when the agent was last active in that session.
    last_seen_in_session: datetime | None = None

    def status_at(self, window_start: datetime) -> PresenceStatus:
        return PresenceStatus.OFFLINE if self.last_seen <= window_start else self.status


@dataclass(frozen=True, slots=True)
class PresenceTouch:
    """One presence write: the agent (with its permissions), optionally the session it is
    active in, and the status it registers (None: keep it, or active if it was offline)."""

    agent_id: str
    agent_type: str
    permissions: frozenset[Permission]
    now: datetime
    window_start: datetime
    session_id: str | None = None
    status: PresenceStatus | None = None
    # A last-seen (and session activity) after this is recent enough: the write is skipped,
    # since another process sharing the database recorded it lately.
    fresh_after: datetime | None = None


def seen_status(stored: AgentPresence | None, window_start: datetime) -> PresenceStatus:
    """What others saw of an agent before it was seen again (offline if never seen)."""
    return PresenceStatus.OFFLINE if stored is None else stored.status_at(window_start)


def status_after(previous: PresenceStatus, registered: PresenceStatus | None) -> PresenceStatus:
    """The status a sighting leaves: the one registered; else the one kept, or active for
    an agent coming back from offline."""
    if registered is not None:
        return registered
    return PresenceStatus.ACTIVE if previous is PresenceStatus.OFFLINE else previous
