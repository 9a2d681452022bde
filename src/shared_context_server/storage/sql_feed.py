"""The change feed, read by id."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.models import Message
from shared_context_server.storage.sql_base import (
    LATEST_FEED_ID,
    SqlBase,
    feed_event_of,
    message_of,
    threaded,
)
from shared_context_server.storage.tables import (
    change_feed,
    messages,
)

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


class FeedRows(SqlBase):
    @threaded
    def read_feed(self, after_id: int, limit: int) -> list[ChangeEvent]:
        with self._read() as conn:
            return self._events(conn, after_id, limit)

    @threaded
    def read_updates(
        self, after_id: int, limit: int, keep: Callable[[ChangeEvent], bool] | None = None
    ) -> tuple[list[ChangeEvent], list[Message]]:
        with self._read() as conn:
            events = self._events(conn, after_id, limit)
            if not events:
                return [], []
            if keep is not None:
                # Only the messages of the kept events: others' content is never read.
                ids = [
                    e.message_id
                    for e in events
                    if e.kind is EventKind.MESSAGE_ADDED and e.message_id and keep(e)
                ]
                rows = conn.execute(_BY_IDS, {"ids": ids}) if ids else []
                return events, [message_of(row) for row in rows]
            window = {"after_id": after_id, "last_id": events[-1].id}
            return events, [message_of(row) for row in conn.execute(_ADDED, window)]

    def _events(self, conn: sa.Connection, after_id: int, limit: int) -> list[ChangeEvent]:
        rows = conn.execute(_AFTER, {"after_id": after_id, "limit": limit})
        return [feed_event_of(row) for row in rows]

    @threaded
    def latest_feed_id(self) -> int:
        with self._read() as conn:
            return int(conn.execute(LATEST_FEED_ID).scalar() or 0)
