"""Session rules that every write into a session obeys."""

from __future__ import annotations

from shared_context_server.domain.models import SessionStatus
from shared_context_server.errors import SessionClosedError, SessionNotFoundError


def require_writable(session_id: str, status: SessionStatus | None) -> None:
    """A session takes writes unless it is missing (``None``) or archived."""
    if status is None:
        raise SessionNotFoundError(f"no session {session_id!r}", session_id=session_id)
    if status is SessionStatus.ARCHIVED:
        raise SessionClosedError(
            "the session is archived; reopen it with update_session first",
            session_id=session_id,
        )
