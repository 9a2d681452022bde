"""The change feed, read by id."""

from __future__ import annotations

import sqlalchemy as sa

from shared_context_server.domain.events import ChangeEvent
from shared_context_server.storage.sql_base import (
    SqlBase,
    feed_event_of,
    threaded,
)
from shared_context_server.storage.tables import (
    change_feed,
)


class FeedRows(SqlBase):
    @threaded
    def read_feed(self, after_id: int, limit: int) -> list[ChangeEvent]:
        statement = (
            sa.select(change_feed)
            .where(change_feed.c.id > after_id)
            .order_by(change_feed.c.id)
            .limit(limit)
        )
        with self._read() as conn:
            return [feed_event_of(row) for row in conn.execute(statement)]

    @threaded
    def latest_feed_id(self) -> int:
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.max(change_feed.c.id))).scalar() or 0)
