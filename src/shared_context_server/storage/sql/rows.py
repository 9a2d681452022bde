"""Rows as domain objects, and the visibility rule in SQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from shared_context_server.domain.access import ReadScope
from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.models import (
    ApiKey,
    KeyBinding,
    MemoryEntry,
    Message,
    Permission,
    Session,
    SessionStatus,
    Visibility,
)
from shared_context_server.storage.tables import messages


def visible_to(scope: ReadScope) -> sa.ColumnElement[bool]:
    """``ReadScope`` compiled to SQL; must agree with ``ReadScope.allows`` (tested).

    The reader's id and type are named parameters, so a statement built once for a scope's
    shape serves every reader of that shape (see ``reader_params``).
    """
    col = messages.c
    clauses: list[sa.ColumnElement[bool]] = [
        col.visibility == Visibility.PUBLIC.value,
        sa.and_(
            col.visibility == Visibility.AGENT_ONLY.value,
            col.sender_type == sa.bindparam("reader_type", scope.agent_type),
        ),
    ]
    if scope.include_private:
        clauses.append(
            sa.and_(
                col.visibility == Visibility.PRIVATE.value,
                col.sender == sa.bindparam("reader_id", scope.agent_id),
            )
        )
    if scope.admin:
        clauses.append(col.visibility == Visibility.ADMIN_ONLY.value)
    return sa.or_(*clauses)


def reader_params(scope: ReadScope) -> dict[str, str]:
    return {"reader_id": scope.agent_id, "reader_type": scope.agent_type}


def session_of(row: sa.Row[Any]) -> Session:
    return Session(
        id=row.id,
        purpose=row.purpose,
        created_by=row.created_by,
        status=SessionStatus(row.status),
        metadata=row.metadata,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_activity_at=row.last_activity_at,
    )


def message_of(row: sa.Row[Any]) -> Message:
    # A row of ``select(messages)``: its columns are the table's, in the table's order.
    # Unpacking it is a third of the cost of ten attribute lookups, on the hottest path
    # (every page, search and feed read maps each message through here).
    values: tuple[Any, ...] = tuple(row)
    id_, session_id, sender, sender_type, content, metadata, kind, visibility, parent, at = values
    return Message(
        id_,
        session_id,
        sender,
        sender_type,
        content,
        metadata,
        kind,
        Visibility(visibility),
        parent,
        at,
    )


def memory_of(row: sa.Row[Any]) -> MemoryEntry:
    return MemoryEntry(
        agent_id=row.agent_id,
        session_id=row.scope or None,
        key=row.key,
        value=row.value,
        metadata=row.metadata,
        created_at=row.created_at,
        updated_at=row.updated_at,
        expires_at=row.expires_at,
        version=row.version,
    )


def api_key_of(row: sa.Row[Any]) -> ApiKey:
    types = row.agent_types
    return ApiKey(
        id=row.id,
        name=row.name,
        permissions=frozenset(Permission(p) for p in row.permissions),
        created_at=row.created_at,
        binding=KeyBinding(
            agent_id=row.agent_id,
            agent_pattern=row.agent_pattern,
            agent_types=None if types is None else frozenset(types),
            any_agent=bool(row.any_agent),
        ),
        revoked_at=row.revoked_at,
    )


def feed_event_of(row: sa.Row[Any]) -> ChangeEvent:
    return ChangeEvent(
        id=row.id,
        kind=EventKind(row.kind),
        session_id=row.session_id,
        agent_id=row.agent_id,
        message_id=row.message_id,
        sender_type=row.sender_type,
        visibility=Visibility(row.visibility) if row.visibility else None,
        origin=row.origin,
        payload=row.payload or {},
    )
