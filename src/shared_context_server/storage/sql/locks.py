"""Session locks."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from shared_context_server.storage.sql.repository import Repository
from shared_context_server.storage.tables import session_locks

_lk = session_locks.c
_EXCLUSIVE_HOLDER = (
    sa.select(_lk.holder)
    .where(
        _lk.session_id == sa.bindparam("session_id"),
        _lk.lock_type == "exclusive",
        _lk.holder != sa.bindparam("writer"),
        _lk.expires_at > sa.bindparam("now"),
        _lk.heartbeat_deadline > sa.bindparam("now"),
    )
    .limit(1)
)


class SqlLocks(Repository):
    __slots__ = ()

    def exclusive_holder(self, session_id: str, other_than: str, now: datetime) -> str | None:
        params = {"session_id": session_id, "writer": other_than, "now": now}
        holder = self.conn.execute(_EXCLUSIVE_HOLDER, params).scalar()
        return None if holder is None else str(holder)
