"""The change feed."""

from __future__ import annotations

import sqlalchemy as sa

from shared_context_server.domain.events import Change, ChangeEvent
from shared_context_server.storage.sql.dialect import Dialect
from shared_context_server.storage.sql.repository import Repository
from shared_context_server.storage.tables import change_feed

# Built once: SQLAlchemy then skips rebuilding and re-keying them per call.
LATEST_FEED_ID = sa.select(sa.func.max(change_feed.c.id))
_INSERT = sa.insert(change_feed)


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

    def latest_id(self) -> int:
        return int(self.conn.execute(LATEST_FEED_ID).scalar() or 0)
