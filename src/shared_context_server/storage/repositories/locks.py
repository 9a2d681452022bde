"""Session locks."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from shared_context_server.domain.locks import Lock
from shared_context_server.domain.models import SessionStatus


class LockRepository(Protocol):
    def lock_session(self, session_id: str) -> SessionStatus | None:
        """Hold the session's row to the end of the transaction, so lock decisions on it
        (and writes that check its locks) take turns; its status (None: no such session)."""
        ...

    def of_session(self, session_id: str) -> list[Lock]:
        """Every lock row of the session, live or not, oldest grant first."""
        ...

    def live(self, session_id: str, now: datetime) -> list[Lock]:
        """The session's live locks at ``now``, oldest grant first."""
        ...

    def insert(self, lock: Lock) -> None: ...

    def update_deadlines(self, lock: Lock) -> None:
        """Store the lock's expiry, heartbeat deadline and TTL (the holder's row)."""
        ...

    def delete(self, session_id: str, holder: str) -> None:
        """Remove the holder's lock on the session."""
        ...

    def exclusive_holder(self, session_id: str, other_than: str, now: datetime) -> str | None:
        """Another agent's live exclusive lock on the session: its holder, if any."""
        ...
