"""Session locks: the types, what makes a lock live, and which locks stand in each other's way.

Pure rules, no I/O. The lock service applies them inside one write transaction per decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shared_context_server.domain.audit import AuditEvent, system_audit
from shared_context_server.domain.events import Change, EventKind
from shared_context_server.errors import NoLockHeldError, SessionLockedError

FENCING_COUNTER = "lock_fencing_token"


class LockType(StrEnum):
    # Shared: any number of agents hold one at once, while nobody holds write or exclusive.
    READ = "read"
    # Held by one agent; no other lock of any kind may exist beside it.
    WRITE = "write"
    # As write, and the session is read-only for every other agent (SESSION_LOCKED).
    EXCLUSIVE = "exclusive"


@dataclass(frozen=True, slots=True)
class Lock:
    session_id: str
    holder: str
    holder_type: str
    lock_type: LockType
    fencing_token: int
    acquired_at: datetime
    expires_at: datetime
    heartbeat_deadline: datetime
    ttl_seconds: int
    message: str | None = None

    def live_at(self, now: datetime) -> bool:
        """Live until its TTL runs out or its holder misses the heartbeat deadline."""
        return now < self.expires_at and now < self.heartbeat_deadline

    @property
    def ends_at(self) -> datetime:
        return min(self.expires_at, self.heartbeat_deadline)


@dataclass(frozen=True, slots=True)
class LockRequest:
    session_id: str
    holder: str
    holder_type: str
    lock_type: LockType
    ttl_seconds: int
    heartbeat_seconds: int
    message: str | None = None


def blockers(requested: LockType, holder: str, live: Sequence[Lock]) -> list[Lock]:
    """The live locks of other agents that keep ``holder`` from getting ``requested``.

    A read lock is blocked by another agent's write or exclusive lock; a write or exclusive
    lock by any lock another agent holds (so a sole reader may upgrade). The holder's own
    lock never blocks: a new request replaces it.
    """
    others = [lock for lock in live if lock.holder != holder]
    if requested is LockType.READ:
        return [lock for lock in others if lock.lock_type is not LockType.READ]
    return others


def partition_live(locks: Sequence[Lock], now: datetime) -> tuple[list[Lock], list[Lock]]:
    """``locks`` split into the live ones and the expired ones (to reclaim), order kept."""
    live = [lock for lock in locks if lock.live_at(now)]
    expired = [lock for lock in locks if not lock.live_at(now)]
    return live, expired


def require_unblocked(request: LockRequest, live: Sequence[Lock]) -> None:
    """SESSION_LOCKED, naming every blocking holder and when the first of them ends, if
    other agents' live locks keep the request from being granted."""
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


def held_by(holder: str, live: Sequence[Lock]) -> Lock | None:
    """The holder's own lock among ``live`` (an agent holds at most one per session)."""
    return next((lock for lock in live if lock.holder == holder), None)


def require_held(holder: str, locks: Sequence[Lock], now: datetime, session_id: str) -> Lock:
    """The holder's live lock; NO_LOCK_HELD if it has none (an expired one counts as none)."""
    mine = [lock for lock in locks if lock.holder == holder and lock.live_at(now)]
    if not mine:
        raise NoLockHeldError(f"{holder} holds no live lock on this session", session_id=session_id)
    return mine[0]


def require_any_live(live: Sequence[Lock], session_id: str) -> None:
    if not live:
        raise NoLockHeldError("nobody holds a live lock on this session", session_id=session_id)


def granted(request: LockRequest, fencing_token: int, now: datetime) -> Lock:
    """The lock a grant of ``request`` at ``now`` makes."""
    return Lock(
        session_id=request.session_id,
        holder=request.holder,
        holder_type=request.holder_type,
        lock_type=request.lock_type,
        fencing_token=fencing_token,
        acquired_at=now,
        expires_at=now + timedelta(seconds=request.ttl_seconds),
        heartbeat_deadline=now + timedelta(seconds=request.heartbeat_seconds),
        ttl_seconds=request.ttl_seconds,
        message=request.message,
    )


def extended(lock: Lock, now: datetime, ttl_seconds: int, heartbeat_seconds: int) -> Lock:
    """``lock`` renewed at ``now``: TTL and heartbeat deadline counted from now, same token."""
    return replace(
        lock,
        expires_at=now + timedelta(seconds=ttl_seconds),
        heartbeat_deadline=now + timedelta(seconds=heartbeat_seconds),
        ttl_seconds=ttl_seconds,
    )


def lock_changed(lock: Lock, by: str, now: datetime, payload: dict[str, object]) -> Change:
    """The change-feed entry of a lock decision ``by`` an agent (or the server)."""
    return Change(EventKind.LOCK_CHANGED, lock.session_id, by, now, payload=payload)


def lock_audit(event: AuditEvent, lock: Lock, **extra: Any) -> AuditEvent:
    """The caller's audit event of a lock decision, completed with the lock it touched."""
    metadata = {
        **event.metadata,
        "lock_type": lock.lock_type.value,
        "fencing_token": lock.fencing_token,
        "holder": lock.holder,
        **extra,
    }
    return replace(event, session_id=lock.session_id, metadata=metadata)


def expiry_audit(lock: Lock, now: datetime) -> AuditEvent:
    """The server's audit event for reclaiming an expired lock."""
    return system_audit(
        "lock.expired",
        now,
        session_id=lock.session_id,
        target=lock.holder,
        lock_type=lock.lock_type.value,
        fencing_token=lock.fencing_token,
    )


def lock_payload(
    action: str, lock: Lock, *, holder: str | None, former_holder: str | None, **extra: object
) -> dict[str, object]:
    """The change-feed payload of a lock event."""
    return {
        "action": action,
        "lock_type": lock.lock_type.value,
        "fencing_token": lock.fencing_token,
        "holder": holder,
        "former_holder": former_holder,
        **extra,
    }


def require_not_locked_out(exclusive_holder: str | None, session_id: str) -> None:
    """A session another agent holds an exclusive lock on is read-only for everyone else
    (``exclusive_holder``: that agent, None if there is none)."""
    if exclusive_holder is not None:
        raise SessionLockedError(
            f"{exclusive_holder} holds an exclusive lock on this session", session_id=session_id
        )
