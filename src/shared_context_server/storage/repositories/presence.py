"""The presence repository: the agent registry and who was last seen in which session."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from shared_context_server.domain.models import Permission
from shared_context_server.domain.presence import AgentPresence, PresenceStatus


class PresenceRepository(Protocol):
    def get(self, agent_id: str) -> AgentPresence | None: ...

    def claim(self, agent_id: str) -> AgentPresence | None:
        """``get``, after taking the agent's turn (held to commit): records of one agent,
        from any process, follow one another."""
        ...

    def last_seen_in(self, session_id: str, agent_id: str) -> datetime | None:
        """When the agent was last seen in the session (None: never)."""
        ...

    def save(
        self,
        agent_id: str,
        agent_type: str,
        status: PresenceStatus,
        permissions: frozenset[Permission],
        now: datetime,
    ) -> AgentPresence:
        """Insert the agent, or update its type, status, permissions and last seen (its
        first seen stays); the stored presence after."""
        ...

    def recent_sessions(self, agent_id: str, after: datetime, limit: int) -> list[str]:
        """The sessions the agent was last seen in after ``after``, most recent first."""
        ...

    def seen_in_session(
        self, session_id: str, agent_id: str, agent_type: str, now: datetime
    ) -> datetime | None:
        """Record the agent as seen in the session at ``now``; when it was seen there
        before (None: never)."""
        ...

    def list(
        self,
        window_start: datetime,
        *,
        session_id: str | None = None,
        include_offline: bool = False,
        limit: int = 500,
    ) -> list[AgentPresence]:
        """Agents seen after ``window_start`` (all known ones with ``include_offline``),
        most recently seen first; for a session, those seen in it, by their last activity
        there."""
        ...
