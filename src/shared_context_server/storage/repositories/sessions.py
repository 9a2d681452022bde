"""Sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from shared_context_server.domain.models import Session, SessionStatus


class SessionRepository(Protocol):
    def get(self, session_id: str) -> Session | None: ...

    def touch(self, session_id: str, now: datetime) -> SessionStatus | None:
        """Mark activity and hold the session's row to the end of the transaction, so its
        status and locks cannot change under the write; its status (None: no session)."""
        ...
