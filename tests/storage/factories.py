"""Builders for store-level records, shared by the storage and events tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from shared_context_server.domain.models import NewMessage, Session, SessionStatus, Visibility

T0 = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """A moment ``seconds`` after T0."""
    return T0 + timedelta(seconds=seconds)


def make_session(
    created_by: str = "alice",
    *,
    session_id: str | None = None,
    purpose: str = "work",
    status: SessionStatus = SessionStatus.ACTIVE,
    metadata: dict[str, Any] | None = None,
    now: datetime = T0,
) -> Session:
    return Session(
        id=session_id or "session_" + uuid.uuid4().hex[:16],
        purpose=purpose,
        created_by=created_by,
        status=status,
        metadata=metadata or {},
        created_at=now,
        updated_at=now,
        last_activity_at=now,
    )


def new_message(
    session_id: str,
    content: str = "hello",
    *,
    sender: str = "alice",
    sender_type: str = "claude",
    visibility: Visibility = Visibility.PUBLIC,
    message_type: str = "message",
    metadata: dict[str, Any] | None = None,
    parent_message_id: int | None = None,
) -> NewMessage:
    return NewMessage(
        session_id=session_id,
        sender=sender,
        sender_type=sender_type,
        content=content,
        visibility=visibility,
        message_type=message_type,
        metadata=metadata or {},
        parent_message_id=parent_message_id,
    )


# Raw rows, for tests that write below the store (migrations, upgrades).


def session_row(session: Session) -> dict[str, object]:
    return {
        "id": session.id,
        "purpose": session.purpose,
        "created_by": session.created_by,
        "status": session.status.value,
        "metadata": {},
        "created_at": T0,
        "updated_at": T0,
        "last_activity_at": T0,
    }


def message_row(session_id: str, content: str) -> dict[str, object]:
    return {
        "session_id": session_id,
        "sender": "alice",
        "sender_type": "claude",
        "content": content,
        "metadata": {},
        "message_type": "message",
        "visibility": "public",
        "parent_message_id": None,
        "created_at": T0,
    }
