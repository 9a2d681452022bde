"""Message rules: threads stay inside their session."""

from __future__ import annotations

from shared_context_server.errors import InvalidParentError


def require_parent_in_session(parent_id: int, parent_session: str | None, session_id: str) -> None:
    """A reply's parent is a message of the same session (``parent_session``: the parent's
    session, None if there is no such message)."""
    if parent_session != session_id:
        raise InvalidParentError(
            f"message {parent_id} is not in session {session_id!r}", parent_message_id=parent_id
        )
