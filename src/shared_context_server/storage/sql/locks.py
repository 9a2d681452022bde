"""Session locks: the lock rows, and the session row lock decisions take turns on."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from shared_context_server.domain.locks import Lock, LockType
from shared_context_server.domain.models import SessionStatus
from shared_context_server.storage.sql.repository import Repository
from shared_context_server.storage.tables import session_locks, sessions

_lk = session_locks.c
_SESSION_STATUS = sa.select(sessions.c.status).where(sessions.c.id == sa.bindparam("session_id"))
_OF_SESSION = (
    sa.select(session_locks)
    .where(_lk.session_id == sa.bindparam("session_id"))
    .order_by(_lk.fencing_token)
)
_LIVE = (
    sa.select(session_locks)
    .where(
        _lk.session_id == sa.bindparam("session_id"),
        _lk.expires_at > sa.bindparam("now"),
        _lk.heartbeat_deadline > sa.bindparam("now"),
    )
    .order_by(_lk.fencing_token)
)
_HOLDERS_ROW = sa.and_(
    _lk.session_id == sa.bindparam("lock_session_id"), _lk.holder == sa.bindparam("lock_holder")
)
_INSERT = sa.insert(session_locks)
_UPDATE_DEADLINES = (
    sa.update(session_locks)
    .where(_HOLDERS_ROW)
    .values(
        expires_at=sa.bindparam("new_expires_at"),
        heartbeat_deadline=sa.bindparam("new_heartbeat_deadline"),
        ttl_seconds=sa.bindparam("new_ttl_seconds"),
    )
)
_DELETE = sa.delete(session_locks).where(_HOLDERS_ROW)
_EXCLUSIVE_HOLDER = (
    sa.select(_lk.holder)
    .where(
        _lk.session_id == sa.bindparam("session_id"),
        _lk.lock_type == LockType.EXCLUSIVE.value,
        _lk.holder != sa.bindparam("writer"),
        _lk.expires_at > sa.bindparam("now"),
        _lk.heartbeat_deadline > sa.bindparam("now"),
    )
    .limit(1)
)


def lock_of(row: sa.Row[Any]) -> Lock:
    return Lock(
        session_id=row.session_id,
        holder=row.holder,
        holder_type=row.holder_type,
        lock_type=LockType(row.lock_type),
        fencing_token=int(row.fencing_token),
        acquired_at=row.acquired_at,
        expires_at=row.expires_at,
        heartbeat_deadline=row.heartbeat_deadline,
        ttl_seconds=row.ttl_seconds,
        message=row.message,
    )


class SqlLocks(Repository):
    __slots__ = ()

    def lock_session(self, session_id: str) -> SessionStatus | None:
        # SQLite's write transaction (BEGIN IMMEDIATE) already excludes every other writer;
        # PostgreSQL locks the row FOR UPDATE: the row a post updates (SqlSessions.touch)
        # before it checks for an exclusive lock, so a grant and a write in that session
        # are ordered too.
        statement = self.dialect.for_update(_SESSION_STATUS)
        status = self.conn.execute(statement, {"session_id": session_id}).scalar()
        return None if status is None else SessionStatus(status)

    def of_session(self, session_id: str) -> list[Lock]:
        rows = self.conn.execute(_OF_SESSION, {"session_id": session_id})
        return [lock_of(row) for row in rows]

    def live(self, session_id: str, now: datetime) -> list[Lock]:
        rows = self.conn.execute(_LIVE, {"session_id": session_id, "now": now})
        return [lock_of(row) for row in rows]

    def insert(self, lock: Lock) -> None:
        self.conn.execute(
            _INSERT,
            {
                "session_id": lock.session_id,
                "holder": lock.holder,
                "holder_type": lock.holder_type,
                "lock_type": lock.lock_type.value,
                "fencing_token": lock.fencing_token,
                "acquired_at": lock.acquired_at,
                "expires_at": lock.expires_at,
                "heartbeat_deadline": lock.heartbeat_deadline,
                "ttl_seconds": lock.ttl_seconds,
                "message": lock.message,
            },
        )

    def update_deadlines(self, lock: Lock) -> None:
        self.conn.execute(
            _UPDATE_DEADLINES,
            {
                "lock_session_id": lock.session_id,
                "lock_holder": lock.holder,
                "new_expires_at": lock.expires_at,
                "new_heartbeat_deadline": lock.heartbeat_deadline,
                "new_ttl_seconds": lock.ttl_seconds,
            },
        )

    def delete(self, session_id: str, holder: str) -> None:
        self.conn.execute(_DELETE, {"lock_session_id": session_id, "lock_holder": holder})

    def exclusive_holder(self, session_id: str, other_than: str, now: datetime) -> str | None:
        params = {"session_id": session_id, "writer": other_than, "now": now}
        holder = self.conn.execute(_EXCLUSIVE_HOLDER, params).scalar()
        return None if holder is None else str(holder)
