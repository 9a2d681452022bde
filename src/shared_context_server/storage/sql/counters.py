"""Named counters."""

from __future__ import annotations

from shared_context_server.storage.sql.repository import Repository


class SqlCounters(Repository):
    __slots__ = ()

    def next(self, name: str) -> int:
        return self.dialect.next_counter(self.conn, name)
