"""Messages."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa

from shared_context_server.domain.access import ReadScope
from shared_context_server.domain.models import Message, NewMessage, Visibility
from shared_context_server.storage.repositories.messages import MessageQuery, Tally
from shared_context_server.storage.sql.repository import Repository
from shared_context_server.storage.sql.rows import message_of, reader_params, visible_to
from shared_context_server.storage.tables import messages

_m = messages.c
# Built once: SQLAlchemy then skips rebuilding and re-keying them per call.
_BY_ID = sa.select(messages).where(_m.id == sa.bindparam("message_id"))
_INSERT = sa.insert(messages)
_SET_VISIBILITY = (
    sa.update(messages)
    .where(_m.id == sa.bindparam("message_id"))
    .values(visibility=sa.bindparam("new_visibility"))
    .returning(*messages.c)
)


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


class SqlMessages(Repository):
    __slots__ = ()

    def insert(self, new: NewMessage, now: datetime) -> tuple[Message, dict[str, object]]:
        values: dict[str, Any] = {
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
        key = self.conn.execute(_INSERT, values).inserted_primary_key
        assert key is not None
        values["id"] = key[0]
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
        return message, values

    def get(self, message_id: int) -> Message | None:
        row = self.conn.execute(_BY_ID, {"message_id": message_id}).first()
        return message_of(row) if row else None

    def set_visibility(self, message_id: int, visibility: Visibility) -> dict[str, object]:
        params = {"message_id": message_id, "new_visibility": visibility.value}
        return dict(self.conn.execute(_SET_VISIBILITY, params).one()._mapping)

    def list(self, query: MessageQuery) -> list[Message]:
        return [message_of(row) for row in self.conn.execute(*_list(query))]

    def tally(self, session_ids: Sequence[str], scope: ReadScope, senders: int) -> dict[str, Tally]:
        if not session_ids:
            return {}
        seen = sa.and_(_m.session_id.in_(list(session_ids)), visible_to(scope))
        params = reader_params(scope)
        totals = sa.select(_m.session_id, sa.func.count(), sa.func.max(_m.created_at)).where(seen)
        by_sender = (
            sa.select(_m.session_id, _m.sender, sa.func.max(_m.id).label("last"))
            .where(seen)
            .group_by(_m.session_id, _m.sender)
            .order_by(_m.session_id, sa.desc("last"))
        )
        posted: dict[str, list[str]] = {}
        for session_id, sender, _ in self.conn.execute(by_sender, params):
            names = posted.setdefault(session_id, [])
            if len(names) < senders:
                names.append(sender)
        rows = self.conn.execute(totals.group_by(_m.session_id), params)
        return {
            session_id: Tally(int(count), last_at, posted.get(session_id, []))
            for session_id, count, last_at in rows
        }
