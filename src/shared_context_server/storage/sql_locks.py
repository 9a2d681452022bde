"""Session locks: every decision is one write transaction that serialises on the session.

Check and grant happen in the same transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: the
session row FOR UPDATE), so two agents racing for one lock never both get it. Each grant
bumps the global fencing counter in that transaction, and each change writes a
LOCK_CHANGED feed row and its audit record there too.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from shared_context_server.domain.audit import AuditEvent, system_audit
from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.locks import (
    FENCING_COUNTER,
    Lock,
    LockChange,
    LockRequest,
    LockType,
    blockers,
    lock_payload,
)
from shared_context_server.errors import (
    NoLockHeldError,
    SessionLockedError,
    SessionNotFoundError,
)
from shared_context_server.storage import dialects
from shared_context_server.storage.sql_base import SqlBase, threaded
from shared_context_server.storage.tables import session_locks

SYSTEM = "system"


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


def _audited(audit: AuditEvent | None, lock: Lock, **extra: Any) -> AuditEvent | None:
    """The service's audit event, completed with what only the transaction knows."""
    if audit is None:
        return None
    metadata = {
        **audit.metadata,
        "lock_type": lock.lock_type.value,
        "fencing_token": lock.fencing_token,
        "holder": lock.holder,
        **extra,
    }
    return replace(audit, session_id=lock.session_id, metadata=metadata)


class LockRows(SqlBase):
    def _session_locks(self, conn: sa.Connection, session_id: str) -> list[Lock]:
        """Serialise on the session (it must exist), then read its lock rows."""
        if dialects.serialise_session(conn, session_id) is None:
            raise SessionNotFoundError(f"no session {session_id!r}", session_id=session_id)
        rows = conn.execute(
            sa.select(session_locks)
            .where(session_locks.c.session_id == session_id)
            .order_by(session_locks.c.fencing_token)
        )
        return [lock_of(row) for row in rows]

    def _delete(self, conn: sa.Connection, lock: Lock) -> None:
        conn.execute(
            sa.delete(session_locks).where(
                session_locks.c.session_id == lock.session_id,
                session_locks.c.holder == lock.holder,
            )
        )

    def _lock_event(
        self, conn: sa.Connection, by: str, now: datetime, payload: dict[str, Any], lock: Lock
    ) -> ChangeEvent:
        return self._feed(conn, EventKind.LOCK_CHANGED, lock.session_id, by, now, payload=payload)

    def _reclaim_expired(
        self, conn: sa.Connection, locks: list[Lock], now: datetime, events: list[ChangeEvent]
    ) -> list[Lock]:
        """Remove expired locks (audited as lock.expired, told in the feed); the live rest."""
        live = []
        for lock in locks:
            if lock.live_at(now):
                live.append(lock)
                continue
            self._delete(conn, lock)
            payload = lock_payload("expired", lock, holder=None, former_holder=lock.holder)
            events.append(self._lock_event(conn, SYSTEM, now, payload, lock))
            self._append_audit(
                conn,
                system_audit(
                    "lock.expired",
                    now,
                    session_id=lock.session_id,
                    target=lock.holder,
                    lock_type=lock.lock_type.value,
                    fencing_token=lock.fencing_token,
                ),
            )
        return live

    def _extend(
        self, conn: sa.Connection, lock: Lock, now: datetime, ttl_seconds: int, heartbeat: int
    ) -> Lock:
        renewed = replace(
            lock,
            expires_at=now + timedelta(seconds=ttl_seconds),
            heartbeat_deadline=now + timedelta(seconds=heartbeat),
            ttl_seconds=ttl_seconds,
        )
        conn.execute(
            sa.update(session_locks)
            .where(
                session_locks.c.session_id == lock.session_id,
                session_locks.c.holder == lock.holder,
            )
            .values(
                expires_at=renewed.expires_at,
                heartbeat_deadline=renewed.heartbeat_deadline,
                ttl_seconds=ttl_seconds,
            )
        )
        return renewed

    @threaded
    def acquire_lock(
        self, request: LockRequest, now: datetime, *, audit: AuditEvent | None = None
    ) -> LockChange:
        """Grant ``request`` or raise SESSION_LOCKED. The holder's own lock of the same type
        is renewed (same fencing token); of another type, replaced by a new grant."""
        events: list[ChangeEvent] = []
        with self._write() as conn:
            locks = self._session_locks(conn, request.session_id)
            live = self._reclaim_expired(conn, locks, now, events)
            blocking = blockers(request.lock_type, request.holder, live)
            if blocking:
                first = blocking[0]
                raise SessionLockedError(
                    f"{first.holder} holds a {first.lock_type.value} lock on this session",
                    session_id=request.session_id,
                    holders=[lock.holder for lock in blocking],
                    lock_types=[lock.lock_type.value for lock in blocking],
                    retry_after=min(lock.ends_at for lock in blocking).isoformat(),
                )
            mine = next((lock for lock in live if lock.holder == request.holder), None)
            if mine is not None and mine.lock_type is request.lock_type:
                lock = self._extend(conn, mine, now, request.ttl_seconds, request.heartbeat_seconds)
                action, event_type, extra = "renewed", "lock.renewed", {}
            else:
                if mine is not None:
                    self._delete(conn, mine)
                lock = self._grant(conn, request, now)
                action, event_type = "acquired", "lock.acquired"
                extra = {"converted_from": mine.lock_type.value} if mine else {}
            payload = lock_payload(action, lock, holder=lock.holder, former_holder=None, **extra)
            events.append(self._lock_event(conn, request.holder, now, payload, lock))
            done = _audited(audit, lock, **extra)
            if done is not None:
                self._append_audit(conn, replace(done, event_type=event_type))
        return LockChange(lock, [], events)

    def _grant(self, conn: sa.Connection, request: LockRequest, now: datetime) -> Lock:
        lock = Lock(
            session_id=request.session_id,
            holder=request.holder,
            holder_type=request.holder_type,
            lock_type=request.lock_type,
            fencing_token=dialects.next_counter(conn, FENCING_COUNTER),
            acquired_at=now,
            expires_at=now + timedelta(seconds=request.ttl_seconds),
            heartbeat_deadline=now + timedelta(seconds=request.heartbeat_seconds),
            ttl_seconds=request.ttl_seconds,
            message=request.message,
        )
        conn.execute(
            sa.insert(session_locks).values(
                session_id=lock.session_id,
                holder=lock.holder,
                holder_type=lock.holder_type,
                lock_type=lock.lock_type.value,
                fencing_token=lock.fencing_token,
                acquired_at=lock.acquired_at,
                expires_at=lock.expires_at,
                heartbeat_deadline=lock.heartbeat_deadline,
                ttl_seconds=lock.ttl_seconds,
                message=lock.message,
            )
        )
        return lock

    def _held(self, conn: sa.Connection, session_id: str, holder: str, now: datetime) -> Lock:
        mine = [
            lock
            for lock in self._session_locks(conn, session_id)
            if lock.holder == holder and lock.live_at(now)
        ]
        if not mine:
            raise NoLockHeldError(
                f"{holder} holds no live lock on this session", session_id=session_id
            )
        return mine[0]

    @threaded
    def renew_lock(
        self,
        session_id: str,
        holder: str,
        now: datetime,
        *,
        heartbeat_seconds: int,
        ttl_seconds: int | None = None,
        audit: AuditEvent | None = None,
    ) -> LockChange:
        """Extend the holder's live lock: TTL from now (its own, or ``ttl_seconds``) and the
        heartbeat deadline. An expired lock cannot be renewed (NO_LOCK_HELD): lock again."""
        with self._write() as conn:
            mine = self._held(conn, session_id, holder, now)
            lock = self._extend(conn, mine, now, ttl_seconds or mine.ttl_seconds, heartbeat_seconds)
            payload = lock_payload("renewed", lock, holder=holder, former_holder=None)
            event = self._lock_event(conn, holder, now, payload, lock)
            done = _audited(audit, lock)
            if done is not None:
                self._append_audit(conn, done)
        return LockChange(lock, [], [event])

    @threaded
    def release_lock(
        self, session_id: str, holder: str, now: datetime, *, audit: AuditEvent | None = None
    ) -> LockChange:
        """The holder gives up its live lock; NO_LOCK_HELD if it holds none."""
        with self._write() as conn:
            mine = self._held(conn, session_id, holder, now)
            self._delete(conn, mine)
            payload = lock_payload("released", mine, holder=None, former_holder=holder)
            event = self._lock_event(conn, holder, now, payload, mine)
            done = _audited(audit, mine)
            if done is not None:
                self._append_audit(conn, done)
        return LockChange(None, [mine], [event])

    @threaded
    def force_release_locks(
        self, session_id: str, actor: str, now: datetime, *, audit: AuditEvent | None = None
    ) -> LockChange:
        """Remove every live lock on the session (an admin's act; one audit record and one
        feed event per former holder). NO_LOCK_HELD when there is none."""
        events: list[ChangeEvent] = []
        with self._write() as conn:
            live = self._reclaim_expired(conn, self._session_locks(conn, session_id), now, events)
            if not live:
                raise NoLockHeldError(
                    "nobody holds a live lock on this session", session_id=session_id
                )
            for lock in live:
                self._delete(conn, lock)
                payload = lock_payload(
                    "force_released", lock, holder=None, former_holder=lock.holder, by=actor
                )
                events.append(self._lock_event(conn, actor, now, payload, lock))
                done = _audited(audit, lock)
                if done is not None:
                    self._append_audit(conn, replace(done, target=lock.holder))
        return LockChange(None, live, events)

    @threaded
    def list_locks(self, session_id: str, now: datetime) -> list[Lock]:
        """The live locks on the session, oldest grant first."""
        col = session_locks.c
        statement = (
            sa.select(session_locks)
            .where(col.session_id == session_id, col.expires_at > now, col.heartbeat_deadline > now)
            .order_by(col.fencing_token)
        )
        with self._read() as conn:
            return [lock_of(row) for row in conn.execute(statement)]
