"""Messages."""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa

from shared_context_server.domain.access import ReadScope
from shared_context_server.domain.audit import AuditEvent
from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.models import Message, NewMessage, SessionStatus, Visibility
from shared_context_server.errors import (
    InvalidParentError,
    MessageNotFoundError,
    SessionClosedError,
    SessionNotFoundError,
)
from shared_context_server.storage.repositories.messages import MessageQuery, MessageRead
from shared_context_server.storage.sql_base import (
    LATEST_FEED_ID,
    SESSION_BY_ID,
    SqlBase,
    message_of,
    reader_params,
    session_of,
    threaded,
    visible_to,
)
from shared_context_server.storage.tables import (
    messages,
    sessions,
)

_m = messages.c
# Built once (see sql_base): the statements of the common reads and of add_message.
_TOUCH_SESSION = (
    sa.update(sessions)
    .where(sessions.c.id == sa.bindparam("touched_id"))
    .values(last_activity_at=sa.bindparam("touched_at"))
    .returning(sessions.c.status)
)
_PARENT_SESSION = sa.select(_m.session_id).where(_m.id == sa.bindparam("message_id"))
_MESSAGE_BY_ID = sa.select(messages).where(_m.id == sa.bindparam("message_id"))
_INSERT_MESSAGE = sa.insert(messages)


class _Shape(NamedTuple):
    """Which filters a message query uses: one statement is built per shape."""

    include_private: bool
    admin: bool
    after_id: bool
    senders: bool
    message_type: bool
    visibilities: bool
    sender_types: bool
    since: bool
    until: bool
    newest_first: bool


@functools.lru_cache(maxsize=256)
def _list_statement(shape: _Shape) -> sa.Select[Any]:
    scope = ReadScope("", "", shape.admin, shape.include_private)
    statement = sa.select(messages).where(
        _m.session_id == sa.bindparam("session_id"), visible_to(scope)
    )
    if shape.after_id:
        statement = statement.where(_m.id > sa.bindparam("after_id"))
    if shape.senders:
        statement = statement.where(_m.sender.in_(sa.bindparam("senders", expanding=True)))
    if shape.message_type:
        statement = statement.where(_m.message_type == sa.bindparam("message_type"))
    if shape.visibilities:
        statement = statement.where(_m.visibility.in_(sa.bindparam("visibilities", expanding=True)))
    if shape.sender_types:
        statement = statement.where(
            _m.sender_type.in_(sa.bindparam("sender_types", expanding=True))
        )
    if shape.since:
        statement = statement.where(_m.created_at >= sa.bindparam("since"))
    if shape.until:
        statement = statement.where(_m.created_at <= sa.bindparam("until"))
    order = _m.id.desc() if shape.newest_first else _m.id
    return statement.order_by(order).limit(sa.bindparam("limit")).offset(sa.bindparam("offset"))


def _list(q: MessageQuery) -> tuple[sa.Select[Any], dict[str, Any]]:
    shape = _Shape(
        q.scope.include_private,
        q.scope.admin,
        q.after_id is not None,
        bool(q.senders),
        bool(q.message_type),
        bool(q.visibilities),
        bool(q.sender_types),
        q.since is not None,
        q.until is not None,
        q.newest_first,
    )
    params: dict[str, Any] = {
        **reader_params(q.scope),
        "session_id": q.session_id,
        "after_id": q.after_id,
        "senders": list(q.senders),
        "message_type": q.message_type,
        "visibilities": [v.value for v in q.visibilities],
        "sender_types": list(q.sender_types),
        "since": q.since,
        "until": q.until,
        "limit": q.limit,
        "offset": q.offset,
    }
    return _list_statement(shape), params


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
                row = conn.execute(_MESSAGE_BY_ID, {"message_id": replayed["message_id"]}).one()
                return message_of(row), None
            # Touching the session first holds its row for the rest of the transaction, so
            # its status and locks cannot change under this write.
            status = conn.execute(
                _TOUCH_SESSION, {"touched_id": new.session_id, "touched_at": now}
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
                    _PARENT_SESSION, {"message_id": new.parent_message_id}
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
            key = conn.execute(_INSERT_MESSAGE, values).inserted_primary_key
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
                # The message's id is known only now; the digest is of the values written.
                values["id"] = message.id
                entity_id = str(message.id)
                sealed = audit.of_row("message", entity_id, values, target=entity_id)
                self._append_audit(conn, sealed)
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
        with self._write() as conn:
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
            if audit is not None:
                changed = {**row._mapping, "visibility": visibility.value}
                self._append_audit(conn, audit.of_row("message", str(message_id), changed))
        return after, event

    @threaded
    def get_message(self, message_id: int) -> Message | None:
        with self._read() as conn:
            row = conn.execute(_MESSAGE_BY_ID, {"message_id": message_id}).first()
        return message_of(row) if row else None

    @threaded
    def list_messages(self, q: MessageQuery) -> list[Message]:
        with self._read() as conn:
            return [message_of(row) for row in conn.execute(*_list(q))]

    @threaded
    def read_messages(self, q: MessageQuery) -> MessageRead | None:
        with self._read() as conn:
            session = conn.execute(SESSION_BY_ID, {"session_id": q.session_id}).first()
            if session is None:
                return None
            # One snapshot: the rows and the feed position agree, so a wait resumed from
            # ``feed_cursor`` neither repeats nor misses a change.
            feed_cursor = conn.execute(LATEST_FEED_ID).scalar() or 0
            rows = [message_of(row) for row in conn.execute(*_list(q))]
        return MessageRead(session_of(session), rows, int(feed_cursor))
