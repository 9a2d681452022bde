"""The change feed."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from shared_context_server.domain.events import Change, ChangeEvent, EventKind
from shared_context_server.domain.models import Message
from shared_context_server.storage.sql.dialect import Dialect
from shared_context_server.storage.sql.repository import Repository
from shared_context_server.storage.sql.rows import feed_event_of, message_of
from shared_context_server.storage.tables import change_feed, messages

# Built once: SQLAlchemy then skips rebuilding and re-keying them per call.
LATEST_FEED_ID = sa.select(sa.func.max(change_feed.c.id))
_INSERT = sa.insert(change_feed)
_AFTER = (
    sa.select(change_feed)
    .where(change_feed.c.id > sa.bindparam("after_id"))
    .order_by(change_feed.c.id)
    .limit(sa.bindparam("limit"))
)
_ADDED = (
    sa.select(messages)
    .join(change_feed, change_feed.c.message_id == messages.c.id)
    .where(
        change_feed.c.id > sa.bindparam("after_id"),
        change_feed.c.id <= sa.bindparam("last_id"),
        change_feed.c.kind == EventKind.MESSAGE_ADDED.value,
    )
    .order_by(messages.c.id)
)
_BY_IDS = (
    sa.select(messages)
    .where(messages.c.id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(messages.c.id)
)


class SqlFeed(Repository):
    __slots__ = ("origin",)

    def __init__(self, conn: sa.Connection, dialect: Dialect, origin: str) -> None:
        super().__init__(conn, dialect)
        self.origin = origin

    def append(self, change: Change) -> ChangeEvent:
        """One feed row; a message's carries what the access rule needs (sender, type,
        visibility) so readers are filtered without a join."""
        values = {
            "kind": change.kind.value,
            "session_id": change.session_id,
            "agent_id": change.agent_id,
            "message_id": change.message_id,
            "sender_type": change.sender_type,
            "visibility": change.visibility.value if change.visibility else None,
            "origin": self.origin,
            "created_at": change.at,
            "payload": change.payload,
        }
        key = self.conn.execute(_INSERT, values).inserted_primary_key
        assert key is not None
        return ChangeEvent(
            id=key[0],
            kind=change.kind,
            session_id=change.session_id,
            agent_id=change.agent_id,
            message_id=change.message_id,
            sender_type=change.sender_type,
            visibility=change.visibility,
            origin=self.origin,
            payload=change.payload or {},
        )

    def begin_append(self) -> None:
        """Wait for the append turn (held until this transaction commits), and have the
        commit announced to the other processes."""
        self.dialect.begin_append(self.conn, self.origin)

    def latest_id(self) -> int:
        return int(self.conn.execute(LATEST_FEED_ID).scalar() or 0)

    def after(self, after_id: int, limit: int) -> list[ChangeEvent]:
        rows = self.conn.execute(_AFTER, {"after_id": after_id, "limit": limit})
        return [feed_event_of(row) for row in rows]

    def added_messages(self, after_id: int, last_id: int) -> list[Message]:
        rows = self.conn.execute(_ADDED, {"after_id": after_id, "last_id": last_id})
        return [message_of(row) for row in rows]

    def messages_by_id(self, ids: Sequence[int]) -> list[Message]:
        if not ids:
            return []
        return [message_of(row) for row in self.conn.execute(_BY_IDS, {"ids": list(ids)})]
