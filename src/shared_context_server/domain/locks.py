"""Session locks: the types, what makes a lock live, and which locks stand in each other's way.

Pure rules, no I/O. Storage applies them inside one write transaction per decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from shared_context_server.domain.events import ChangeEvent
from shared_context_server.errors import SessionLockedError

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


@dataclass(frozen=True, slots=True)
class LockChange:
    """What one lock decision did: the caller's lock now (if any), the locks it removed,
    and the change-feed events written with it (to publish after commit)."""

    lock: Lock | None
    released: list[Lock] = field(default_factory=list)
    events: list[ChangeEvent] = field(default_factory=list)


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
