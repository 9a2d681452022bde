"""What every SQL repository holds: the transaction's connection and the backend."""

from __future__ import annotations

import sqlalchemy as sa

from shared_context_server.storage.sql.dialect import Dialect, turn_id


class Repository:
    __slots__ = ("conn", "dialect")

    def __init__(self, conn: sa.Connection, dialect: Dialect) -> None:
        self.conn = conn
        self.dialect = dialect

    def take_turn_on(self, *key: str) -> None:
        """Wait until no other transaction holds the turn on ``key``; hold it to commit."""
        self.dialect.take_turn(self.conn, turn_id(*key))
