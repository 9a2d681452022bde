"""Builders for store-level records, shared by the storage and events tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from shared_context_server.domain.access import ReadScope
from shared_context_server.domain.audit import AuditEvent
from shared_context_server.domain.events import ChangeEvent
from shared_context_server.domain.models import (
    Message,
    NewMessage,
    Session,
    SessionStatus,
    Visibility,
)
from shared_context_server.domain.quotas import Quota
from shared_context_server.services import sessions, updates
from shared_context_server.services.messages import changing_visibility, posting
from shared_context_server.storage.repositories.messages import MessageQuery
from shared_context_server.storage.repositories.sessions import SessionChanges, SessionQuery
from shared_context_server.storage.store import Store

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


async def create_session(
    store: Store, session: Session, *, audit: AuditEvent | None = None, quota: Quota | None = None
) -> tuple[Session, ChangeEvent]:
    """Store ``session`` in the session service's unit of work: the session and its
    SESSION_CREATED feed event."""
    committed = await store.write(
        lambda tx: sessions.create_session(tx, session, audit=audit, quota=quota)
    )
    return committed.value, committed.events[0]


async def get_session(store: Store, session_id: str) -> Session | None:
    return await store.read(lambda tx: tx.sessions.get(session_id))


async def list_sessions(store: Store, query: SessionQuery) -> list[Session]:
    return await store.read(lambda tx: tx.sessions.list(query))


async def update_session(
    store: Store,
    session_id: str,
    changes: SessionChanges,
    agent_id: str,
    now: datetime,
    *,
    audit: AuditEvent | None = None,
) -> tuple[Session, ChangeEvent]:
    """An update in the session service's unit of work (the lock check included): the
    session after and its SESSION_UPDATED feed event."""
    committed = await store.write(
        lambda tx: sessions.update_session(tx, session_id, changes, agent_id, now, audit=audit)
    )
    return committed.value, committed.events[0]


async def archive_inactive_sessions(
    store: Store, before: datetime, now: datetime
) -> list[ChangeEvent]:
    """The maintenance sweep's archiving unit of work: its feed events."""
    committed = await store.write(lambda tx: sessions.archive_inactive_sessions(tx, before, now))
    return committed.events


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


async def post(
    store: Store, new: NewMessage, now: datetime, *, audit: AuditEvent | None = None
) -> tuple[Message, ChangeEvent | None]:
    """Post ``new`` in the message service's unit of work (every storage-side rule of
    posting), its sender seeing every message: the message and its feed event (None for
    a replay)."""
    scope = ReadScope(new.sender, new.sender_type, admin=True)
    committed = await store.write(posting(new, now, scope, audit))
    return committed.value, next(iter(committed.events), None)


async def change_visibility(
    store: Store,
    message_id: int,
    visibility: Visibility,
    actor: str,
    reason: str,
    now: datetime,
    *,
    audit: AuditEvent | None = None,
) -> tuple[Message, ChangeEvent]:
    """A visibility change in the message service's unit of work, and its feed event."""
    scope = ReadScope(actor, "claude", admin=True)
    work = changing_visibility(message_id, visibility, actor, reason, now, audit, scope)
    committed = await store.write(work)
    return committed.value, committed.events[0]


async def get_message(store: Store, message_id: int) -> Message | None:
    return await store.read(lambda tx: tx.messages.get(message_id))


async def list_messages(store: Store, query: MessageQuery) -> list[Message]:
    return await store.read(lambda tx: tx.messages.list(query))


async def read_feed(store: Store, after_id: int, limit: int) -> list[ChangeEvent]:
    return await store.read(lambda tx: tx.feed.after(after_id, limit))


async def latest_feed_id(store: Store) -> int:
    return await store.read(lambda tx: tx.feed.latest_id())


async def read_updates(
    store: Store, after_id: int, limit: int, keep: Callable[[ChangeEvent], bool] | None = None
) -> tuple[list[ChangeEvent], list[Message]]:
    """What wait_for_updates reads per batch: events and the messages they added."""
    return await store.read(lambda tx: updates.read_updates(tx, after_id, limit, keep))


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
