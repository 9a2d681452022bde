"""What every SQL repository holds: the transaction's connection and the backend."""

from __future__ import annotations

import sqlalchemy as sa

from shared_context_server.storage.sql.dialect import Dialect


class Repository:
    __slots__ = ("conn", "dialect")

    def __init__(self, conn: sa.Connection, dialect: Dialect) -> None:
        self.conn = conn
        self.dialect = dialect
