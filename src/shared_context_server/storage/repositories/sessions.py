"""Sessions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shared_context_server.domain.models import Session, SessionStatus


@dataclass(frozen=True, slots=True)
class SessionQuery:
    limit: int = 50
    offset: int = 0
    status: SessionStatus | None = None
    created_by: str | None = None
    # Sessions this agent created or posted in.
    involving: str | None = None
    # Only this session (a token limited to one session lists just that one).
    only: str | None = None
    # Only ids that start with this text, case-sensitively on every backend (completion).
    id_prefix: str | None = None
    # Only sessions whose id or purpose holds this text, in any case.
    text: str | None = None


@dataclass(frozen=True, slots=True)
class SessionChanges:
    status: SessionStatus | None = None
    purpose: str | None = None
    metadata: dict[str, Any] | None = None


class SessionRepository(Protocol):
    def get(self, session_id: str) -> Session | None: ...

    def touch(self, session_id: str, now: datetime) -> SessionStatus | None:
        """Mark activity and hold the session's row to the end of the transaction, so its
        status and locks cannot change under the write; its status (None: no session)."""
        ...

    def insert(self, session: Session) -> dict[str, object]:
        """The row written (for its audit digest); a taken id is a conflict."""
        ...

    def count_open(self, created_by: str) -> int:
        """How many sessions the agent created that are not archived; in a write, the
        agent's turn on that count is held to commit, so a quota checked on it holds."""
        ...

    def update(
        self, session_id: str, changes: SessionChanges, now: datetime
    ) -> tuple[Session, dict[str, object]] | None:
        """Apply the given fields and mark activity at ``now``; the session and its row
        after (None: no session). The UPDATE holds the row to the end of the transaction."""
        ...

    def archive_inactive(self, before: datetime, now: datetime) -> list[dict[str, object]]:
        """Archive every session not archived whose last activity is before ``before``;
        their rows after, by id."""
        ...

    def list(self, query: SessionQuery) -> list[Session]:
        """Most recently active first."""
        ...
