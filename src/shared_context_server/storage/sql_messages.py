"""Messages."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import sqlalchemy as sa

from shared_context_server.domain.audit import AuditEvent
from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.models import Message, NewMessage, SessionStatus, Visibility
from shared_context_server.errors import (
    InvalidParentError,
    MessageNotFoundError,
    SessionClosedError,
    SessionNotFoundError,
)
from shared_context_server.storage.sql_base import (
    SqlBase,
    message_of,
    threaded,
    visible_to,
)
from shared_context_server.storage.store import (
    MessageQuery,
)
from shared_context_server.storage.tables import (
    messages,
    sessions,
)


class MessageRows(SqlBase):
    @threaded
    def add_message(
        self, new: NewMessage, now: datetime, *, audit: AuditEvent | None = None
    ) -> tuple[Message, ChangeEvent | None]:
        request = {
            "session_id": new.session_id,
            "content": new.content,
            "visibility": new.visibility.value,
            "message_type": new.message_type,
            "metadata": new.metadata,
            "parent_message_id": new.parent_message_id,
        }
        with self._write() as conn:
            replayed = self._replay(
                conn, new.sender, "add_message", new.idempotency_key, request, now
            )
            if replayed is not None:
                row = conn.execute(
                    sa.select(messages).where(messages.c.id == replayed["message_id"])
                ).one()
                return message_of(row), None
            # Touching the session first holds its row for the rest of the transaction, so
            # its status and locks cannot change under this write.
            status = conn.execute(
                sa.update(sessions)
                .where(sessions.c.id == new.session_id)
                .values(last_activity_at=now)
                .returning(sessions.c.status)
            ).scalar()
            if status is None:
                raise SessionNotFoundError(
                    f"no session {new.session_id!r}", session_id=new.session_id
                )
            if status == SessionStatus.ARCHIVED.value:
                raise SessionClosedError(
                    "the session is archived; reopen it with update_session first",
                    session_id=new.session_id,
                )
            self._require_unlocked(conn, new.session_id, new.sender, now)
            if new.parent_message_id is not None:
                parent_session = conn.execute(
                    sa.select(messages.c.session_id).where(messages.c.id == new.parent_message_id)
                ).scalar()
                if parent_session != new.session_id:
                    raise InvalidParentError(
                        f"message {new.parent_message_id} is not in session {new.session_id!r}",
                        parent_message_id=new.parent_message_id,
                    )
            values = {
                "session_id": new.session_id,
                "sender": new.sender,
                "sender_type": new.sender_type,
                "content": new.content,
                "metadata": new.metadata,
                "message_type": new.message_type,
                "visibility": new.visibility.value,
                "parent_message_id": new.parent_message_id,
                "created_at": now,
            }
            key = conn.execute(sa.insert(messages).values(values)).inserted_primary_key
            assert key is not None
            message = Message(
                id=key[0],
                session_id=new.session_id,
                sender=new.sender,
                sender_type=new.sender_type,
                content=new.content,
                metadata=new.metadata,
                message_type=new.message_type,
                visibility=new.visibility,
                parent_message_id=new.parent_message_id,
                created_at=now,
            )
            event = self._feed(
                conn, EventKind.MESSAGE_ADDED, new.session_id, new.sender, now, message
            )
            self._remember(
                conn,
                new.sender,
                "add_message",
                new.idempotency_key,
                request,
                {"message_id": message.id},
                now,
            )
            if audit is not None:
                # The message's id is known only now.
                self._append_audit(conn, replace(audit, target=str(message.id)))
        return message, event

    @threaded
    def set_visibility(
        self,
        message_id: int,
        visibility: Visibility,
        actor: str,
        reason: str,
        now: datetime,
        *,
        audit: AuditEvent | None = None,
    ) -> tuple[Message, ChangeEvent]:
        with self._write(audit) as conn:
            row = conn.execute(sa.select(messages).where(messages.c.id == message_id)).first()
            if row is None:
                raise MessageNotFoundError(f"no message {message_id}", message_id=message_id)
            before = message_of(row)
            self._require_unlocked(conn, before.session_id, actor, now)
            conn.execute(
                sa.update(messages)
                .where(messages.c.id == message_id)
                .values(visibility=visibility.value)
            )
            after = replace(before, visibility=visibility)
            payload = {"old_visibility": before.visibility.value, "reason": reason, "by": actor}
            # The event names the sender (whose visibility rule applies), not the actor.
            event = self._feed(
                conn,
                EventKind.VISIBILITY_CHANGED,
                after.session_id,
                after.sender,
                now,
                after,
                payload,
            )
        return after, event

    @threaded
    def messages_by_ids(self, message_ids: list[int]) -> list[Message]:
        statement = sa.select(messages).where(messages.c.id.in_(message_ids))
        with self._read() as conn:
            return [message_of(row) for row in conn.execute(statement.order_by(messages.c.id))]

    @threaded
    def get_message(self, message_id: int) -> Message | None:
        with self._read() as conn:
            row = conn.execute(sa.select(messages).where(messages.c.id == message_id)).first()
        return message_of(row) if row else None

    @threaded
    def list_messages(self, q: MessageQuery) -> list[Message]:
        col = messages.c
        statement = sa.select(messages).where(col.session_id == q.session_id, visible_to(q.scope))
        if q.after_id is not None:
            statement = statement.where(col.id > q.after_id)
        if q.senders:
            statement = statement.where(col.sender.in_(list(q.senders)))
        if q.message_type:
            statement = statement.where(col.message_type == q.message_type)
        if q.visibilities:
            statement = statement.where(col.visibility.in_([v.value for v in q.visibilities]))
        if q.sender_types:
            statement = statement.where(col.sender_type.in_(list(q.sender_types)))
        if q.since:
            statement = statement.where(col.created_at >= q.since)
        if q.until:
            statement = statement.where(col.created_at <= q.until)
        order = col.id.desc() if q.newest_first else col.id
        statement = statement.order_by(order).limit(q.limit).offset(q.offset)
        with self._read() as conn:
            return [message_of(row) for row in conn.execute(statement)]
