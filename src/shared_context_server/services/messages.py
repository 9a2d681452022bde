"""Messages: posting and reading under the visibility rules."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from shared_context_server.clock import Clock
from shared_context_server.domain.access import (
    ReadScope,
    can_read_message,
    read_scope,
    require,
    require_can_post,
    require_may_change_visibility,
    require_session,
)
from shared_context_server.domain.audit import AuditEvent, audit
from shared_context_server.domain.events import Change, EventKind
from shared_context_server.domain.idempotency import Remembered, fingerprint, replay
from shared_context_server.domain.limits import (
    Limits,
    check_agent_id,
    check_content,
    check_int,
    check_key,
    check_message_type,
    check_metadata,
    check_page,
    check_text,
    check_timestamp,
)
from shared_context_server.domain.locks import require_not_locked_out
from shared_context_server.domain.messages import require_parent_in_session
from shared_context_server.domain.models import (
    Message,
    NewMessage,
    Permission,
    Visibility,
)
from shared_context_server.domain.principal import Principal
from shared_context_server.domain.quotas import PostingRate, Quotas
from shared_context_server.domain.sessions import require_writable
from shared_context_server.errors import (
    InvalidInputError,
    InvalidParentError,
    MessageNotFoundError,
    SessionNotFoundError,
)
from shared_context_server.events.bus import EventBus
from shared_context_server.services.unit_of_work import commit
from shared_context_server.storage.repositories.messages import MessageQuery, MessageRead
from shared_context_server.storage.store import Store
from shared_context_server.storage.unit_of_work import Snapshot, Transaction

MAX_REASON_CHARS = 500


@dataclass(frozen=True, slots=True)
class MessagePage:
    messages: list[Message]
    # Pass back as ``cursor`` to read what comes after this page.
    next_cursor: int | None
    has_more: bool
    # The change-feed position before the read: wait_for_updates(cursor=...) resumes there.
    feed_cursor: int = 0


# The operation idempotency keys of posts are remembered under.
_POST = "add_message"


def _request(new: NewMessage) -> dict[str, Any]:
    """What a retry must repeat to be a replay of the first post."""
    return {
        "session_id": new.session_id,
        "content": new.content,
        "visibility": new.visibility.value,
        "message_type": new.message_type,
        "metadata": new.metadata,
        "parent_message_id": new.parent_message_id,
    }


class MessageService:
    def __init__(
        self,
        store: Store,
        bus: EventBus,
        clock: Clock,
        limits: Limits,
        quotas: Quotas | None = None,
    ) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._limits = limits
        self._rate = PostingRate((quotas or Quotas()).messages_per_minute)

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
        idempotency_key: str | None = None,
    ) -> Message:
        """Post a message. A retry with the same ``idempotency_key`` returns the first
        message instead of posting twice."""
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
            idempotency_key=check_key(self._limits, idempotency_key, "idempotency_key")
            if idempotency_key is not None
            else None,
        )
        require_session(principal, session_id)
        if parent_message_id is not None:
            check_int(parent_message_id, "parent_message_id")
        scope = read_scope(principal)
        now = self._clock.now()
        event = audit(
            principal,
            "message.added",
            now,
            session_id=session_id,
            visibility=visibility.value,
            message_type=new.message_type,
            parent_message_id=parent_message_id,
        )
        self._rate.take(principal.root_id, now)
        try:
            return await commit(self._store, self._bus, posting(new, now, scope, event))
        except BaseException:
            self._rate.give_back(principal.root_id, now)
            raise

    async def get(self, principal: Principal, message_id: int) -> Message:
        require(principal, Permission.READ)
        check_int(message_id, "message_id")
        message = await self._store.read(lambda tx: tx.messages.get(message_id))
        # A message the caller may not see does not exist for them.
        if message is None or not can_read_message(principal, message):
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
        visibilities: Sequence[Visibility] = (),
        senders: list[str] | None = None,
        sender_types: Sequence[str] = (),
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
        for sender_type in sender_types:
            check_agent_id(sender_type, "agent_type")
        if cursor is not None and cursor < 0:
            raise InvalidInputError("cursor must not be negative", field="cursor")
        if cursor is not None:
            check_int(cursor, "cursor")
        since = check_timestamp(since, "start_time") if since is not None else None
        until = check_timestamp(until, "end_time") if until is not None else None
        if since and until and since > until:
            raise InvalidInputError("start must not be after end", field="start")
        found = await self._read(
            principal,
            MessageQuery(
                session_id=session_id,
                scope=scope or read_scope(principal),
                limit=limit + 1,
                offset=offset,
                after_id=cursor,
                senders=senders or (),
                message_type=message_type,
                visibilities=visibilities,
                sender_types=sender_types,
                since=since,
                until=until,
            ),
        )
        has_more = len(found.messages) > limit
        rows = found.messages[:limit]
        next_cursor = rows[-1].id if rows else cursor
        return MessagePage(rows, next_cursor, has_more, found.feed_cursor)

    async def _read(self, principal: Principal, query: MessageQuery) -> MessageRead:
        require_session(principal, query.session_id)

        def read(tx: Snapshot) -> MessageRead:
            session = tx.sessions.get(query.session_id)
            if session is None:
                raise SessionNotFoundError(
                    f"no session {query.session_id!r}", session_id=query.session_id
                )
            # The feed position first: a change committed after it is after the cursor,
            # so a wait resumed from ``feed_cursor`` never misses it (each statement may
            # see a newer snapshot on PostgreSQL; the page may then show it too).
            feed_cursor = tx.feed.latest_id()
            return MessageRead(session, tx.messages.list(query), feed_cursor)

        return await self._store.read(read)

    async def advanced(
        self,
        principal: Principal,
        session_id: str,
        *,
        visibilities: Sequence[Visibility] = (),
        agent_type: str | None = None,
        include_admin_only: bool = False,
        limit: int = 50,
        offset: int = 0,
        cursor: int | None = None,
    ) -> MessagePage:
        """Messages filtered by visibility and sender type; admin_only ones only for an admin
        who asks for them with ``include_admin_only``."""
        if include_admin_only:
            require(principal, Permission.ADMIN)
        return await self.page(
            principal,
            session_id,
            limit=limit,
            offset=offset,
            cursor=cursor,
            visibilities=visibilities,
            sender_types=(agent_type,) if agent_type else (),
            scope=read_scope(principal, include_admin_only=include_admin_only),
        )

    async def set_visibility(
        self, principal: Principal, message_id: int, visibility: Visibility, reason: str
    ) -> Message:
        """The sender may change their own message; others need admin, as does admin_only."""
        require(principal, Permission.WRITE)
        check_text(reason, "reason")
        if not reason.strip() or len(reason) > MAX_REASON_CHARS:
            raise InvalidInputError(
                f"give a reason of 1-{MAX_REASON_CHARS} characters", field="reason"
            )
        message = await self.get(principal, message_id)
        require_may_change_visibility(principal, message, visibility)
        if visibility is message.visibility:
            return message
        now = self._clock.now()
        event = audit(
            principal,
            "message.visibility_changed",
            now,
            session_id=message.session_id,
            target=message_id,
            old=message.visibility.value,
            new=visibility.value,
            reason=reason,
        )
        work = changing_visibility(
            message_id, visibility, principal.agent_id, reason, now, event, read_scope(principal)
        )
        return await commit(self._store, self._bus, work)

    async def context(
        self,
        principal: Principal,
        session_id: str,
        *,
        limit: int = 50,
        offset: int = 0,
        include_private: bool = True,
    ) -> MessageRead:
        """The session and its newest visible messages (skipping ``offset``), oldest first."""
        require(principal, Permission.READ)
        check_page(self._limits, limit, offset)
        found = await self._read(
            principal,
            MessageQuery(
                session_id=session_id,
                scope=read_scope(principal, include_private=include_private),
                limit=limit,
                offset=offset,
                newest_first=True,
            ),
        )
        found.messages.reverse()
        return found


# The units of work of posting and of visibility changes: every storage-side rule of the
# use case, in one transaction (the service checks the caller and the input before).


def posting(
    new: NewMessage, now: datetime, scope: ReadScope, event: AuditEvent | None
) -> Callable[[Transaction], Message]:
    """Post ``new`` (or return the message a post with its idempotency key made) in a
    session that exists, is not archived and is not locked against the sender; a reply's
    parent must be a message of that session that ``scope`` may see. ``event``: the audit
    record's, for the row written."""

    def post(tx: Transaction) -> Message:
        replayed = _replayed(tx, new, now)
        if replayed is not None:
            return replayed
        session_id = new.session_id
        # Touching the session first holds its row for the rest of the transaction, so
        # its status and locks cannot change under this write.
        status = tx.sessions.touch(session_id, now)
        if status is not None and new.parent_message_id is not None:
            _require_parent(tx, scope, new.parent_message_id, session_id)
        require_writable(session_id, status)
        holder = tx.locks.exclusive_holder(session_id, new.sender, now)
        require_not_locked_out(holder, session_id)
        message, row = tx.messages.insert(new, now)
        tx.changed(Change.of_message(EventKind.MESSAGE_ADDED, message, now))
        if new.idempotency_key is not None:
            result = Remembered(fingerprint(_request(new)), {"message_id": message.id})
            tx.idempotency.remember(new.sender, _POST, new.idempotency_key, result, now)
        if event is not None:
            entity_id = str(message.id)
            tx.audited(event.of_row("message", entity_id, row, target=entity_id))
        return message

    return post


def _replayed(tx: Transaction, new: NewMessage, now: datetime) -> Message | None:
    """The message an earlier call with this idempotency key posted, if any."""
    if new.idempotency_key is None:
        return None
    found = tx.idempotency.find(new.sender, _POST, new.idempotency_key, now)
    result = replay(found, _request(new), new.idempotency_key)
    if result is None:
        return None
    return tx.messages.get(result["message_id"])


def _require_parent(tx: Transaction, scope: ReadScope, parent_id: int, session_id: str) -> None:
    parent = tx.messages.get(parent_id)
    # A parent the caller may not see does not exist for them.
    if parent is None or not scope.allows(parent):
        raise InvalidParentError(f"no message {parent_id} to reply to", parent_message_id=parent_id)
    require_parent_in_session(parent_id, parent.session_id, session_id)


def changing_visibility(
    message_id: int,
    visibility: Visibility,
    actor: str,
    reason: str,
    now: datetime,
    event: AuditEvent | None,
    scope: ReadScope,
) -> Callable[[Transaction], Message]:
    """Change a message's visibility, unless its session is locked against ``actor``.
    The message as this transaction reads it must still be one ``scope`` sees (an admin
    may have hidden it since the caller looked) and not already of that visibility."""

    def change(tx: Transaction) -> Message:
        before = tx.messages.get(message_id)
        if before is None or not scope.allows(before):
            raise MessageNotFoundError(f"no message {message_id}", message_id=message_id)
        if before.visibility is visibility:
            return before
        holder = tx.locks.exclusive_holder(before.session_id, actor, now)
        require_not_locked_out(holder, before.session_id)
        row = tx.messages.set_visibility(message_id, visibility)
        after = replace(before, visibility=visibility)
        payload = {"old_visibility": before.visibility.value, "reason": reason, "by": actor}
        # The change names the sender (whose visibility rule applies), not the actor.
        tx.changed(Change.of_message(EventKind.VISIBILITY_CHANGED, after, now, payload))
        if event is not None:
            old = {**event.metadata, "old": before.visibility.value}
            tx.audited(replace(event, metadata=old).of_row("message", str(message_id), row))
        return after

    return change
