"""Leases, claimed in one statement: INSERT, or take over a lapsed or own row."""

from __future__ import annotations

from datetime import datetime

from shared_context_server.storage.sql.repository import Repository
from shared_context_server.storage.tables import leases


class SqlLeases(Repository):
    __slots__ = ()

    def claim(self, name: str, holder: str, now: datetime, until: datetime) -> bool:
        statement = self.dialect.insert(leases).values(name=name, holder=holder, expires_at=until)
        claim = statement.on_conflict_do_update(
            index_elements=["name"],
            set_={"holder": statement.excluded.holder, "expires_at": statement.excluded.expires_at},
            where=(leases.c.holder == holder) | (leases.c.expires_at <= now),
        ).returning(leases.c.name)
        return self.conn.execute(claim).first() is not None
