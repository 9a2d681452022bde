"""Messages."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import sqlalchemy as sa

from shared_context_server.domain.audit import AuditEvent
from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.models import (
    Message,
    NewMessage,
)
from shared_context_server.errors import (
    InvalidParentError,
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
    ) -> tuple[Message, ChangeEvent]:
        with self._write() as conn:
            touched = conn.execute(
                sa.update(sessions)
                .where(sessions.c.id == new.session_id)
                .values(last_activity_at=now)
            )
            if touched.rowcount == 0:
                raise SessionNotFoundError(
                    f"no session {new.session_id!r}", session_id=new.session_id
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
            if audit is not None:
                # The message's id is known only now.
                self._append_audit(conn, replace(audit, target=str(message.id)))
        return message, event

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
        if q.since:
            statement = statement.where(col.created_at >= q.since)
        if q.until:
            statement = statement.where(col.created_at <= q.until)
        order = col.id.desc() if q.newest_first else col.id
        statement = statement.order_by(order).limit(q.limit).offset(q.offset)
        with self._read() as conn:
            return [message_of(row) for row in conn.execute(statement)]
