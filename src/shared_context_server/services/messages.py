"""Messages: posting and reading under the visibility rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared_context_server.clock import Clock
from shared_context_server.config import Limits
from shared_context_server.domain.access import (
    ReadScope,
    read_scope,
    require,
    require_can_post,
)
from shared_context_server.domain.audit import audit
from shared_context_server.domain.limits import (
    check_agent_id,
    check_content,
    check_message_type,
    check_metadata,
    check_page,
)
from shared_context_server.domain.models import (
    Message,
    NewMessage,
    Permission,
    Session,
    SessionStatus,
    Visibility,
)
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import (
    InvalidInputError,
    InvalidParentError,
    MessageNotFoundError,
    SessionClosedError,
)
from shared_context_server.events.bus import EventBus
from shared_context_server.services.sessions import SessionService
from shared_context_server.storage.store import MessageQuery, Store


@dataclass(frozen=True, slots=True)
class MessagePage:
    messages: list[Message]
    # Pass back as ``cursor`` to read what comes after this page.
    next_cursor: int | None
    has_more: bool


class MessageService:
    def __init__(
        self,
        store: Store,
        bus: EventBus,
        clock: Clock,
        limits: Limits,
        sessions: SessionService,
    ) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._limits = limits
        self._sessions = sessions

    async def add(
        self,
        principal: Principal,
        session_id: str,
        content: str,
        *,
        visibility: Visibility = Visibility.PUBLIC,
        metadata: dict[str, Any] | None = None,
        parent_message_id: int | None = None,
        message_type: str = "message",
    ) -> Message:
        require_can_post(principal, visibility)
        new = NewMessage(
            session_id=session_id,
            sender=principal.agent_id,
            sender_type=principal.agent_type,
            content=check_content(self._limits, content),
            visibility=visibility,
            message_type=check_message_type(message_type),
            metadata=check_metadata(self._limits, metadata),
            parent_message_id=parent_message_id,
        )
        session = await self._sessions.find(session_id)
        if session.status is SessionStatus.ARCHIVED:
            raise SessionClosedError(
                "the session is archived; reopen it with update_session first",
                session_id=session_id,
            )
        if parent_message_id is not None:
            parent = await self._store.get_message(parent_message_id)
            if parent is None or not read_scope(principal).allows(parent):
                raise InvalidParentError(
                    f"no message {parent_message_id} to reply to",
                    parent_message_id=parent_message_id,
                )
        now = self._clock.now()
        message, event = await self._store.add_message(
            new,
            now,
            audit=audit(
                principal,
                "message.added",
                now,
                session_id=session_id,
                visibility=visibility.value,
                message_type=new.message_type,
                parent_message_id=parent_message_id,
            ),
        )
        self._bus.publish(event)
        return message

    async def get(self, principal: Principal, message_id: int) -> Message:
        require(principal, Permission.READ)
        message = await self._store.get_message(message_id)
        # A message the caller may not see does not exist for them.
        if message is None or not read_scope(principal).allows(message):
            raise MessageNotFoundError(f"no message {message_id}", message_id=message_id)
        return message

    async def page(
        self,
        principal: Principal,
        session_id: str,
        *,
        limit: int = 50,
        offset: int = 0,
        cursor: int | None = None,
        visibility: Visibility | None = None,
        senders: list[str] | None = None,
        message_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        scope: ReadScope | None = None,
    ) -> MessagePage:
        """Messages oldest first, after ``cursor`` if given, one more read to know if more exist."""
        require(principal, Permission.READ)
        check_page(self._limits, limit, offset)
        for sender in senders or ():
            check_agent_id(sender, "sender")
        if cursor is not None and cursor < 0:
            raise InvalidInputError("cursor must not be negative", field="cursor")
        if since and until and since > until:
            raise InvalidInputError("start must not be after end", field="start")
        await self._sessions.find(session_id)
        rows = await self._store.list_messages(
            MessageQuery(
                session_id=session_id,
                scope=scope or read_scope(principal),
                limit=limit + 1,
                offset=offset,
                after_id=cursor,
                senders=senders or (),
                message_type=message_type,
                visibilities=(visibility,) if visibility else (),
                since=since,
                until=until,
            )
        )
        has_more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = rows[-1].id if rows else cursor
        return MessagePage(rows, next_cursor, has_more)

    async def context(
        self,
        principal: Principal,
        session_id: str,
        *,
        limit: int = 50,
        offset: int = 0,
        include_private: bool = True,
    ) -> tuple[Session, list[Message]]:
        """The session and its newest visible messages (skipping ``offset``), oldest first."""
        require(principal, Permission.READ)
        check_page(self._limits, limit, offset)
        session = await self._sessions.find(session_id)
        rows = await self._store.list_messages(
            MessageQuery(
                session_id=session_id,
                scope=read_scope(principal, include_private=include_private),
                limit=limit,
                offset=offset,
                newest_first=True,
            )
        )
        rows.reverse()
        return session, rows

    async def all_visible(self, principal: Principal, session_id: str) -> list[Message]:
        """Every message of the session the caller may see (search works on the whole)."""
        require(principal, Permission.READ)
        await self._sessions.find(session_id)
        return await self._store.list_messages(
            MessageQuery(session_id=session_id, scope=read_scope(principal), limit=10**9)
        )
