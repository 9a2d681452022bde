"""Session locks: claim a session (or share reading it) before conflicting work.

``read`` locks are shared; ``write`` and ``exclusive`` locks are held by one agent and
exclude every other lock; an ``exclusive`` lock also makes the session read-only for every
other agent. Each grant carries a fencing token larger than every earlier one. A lock ends
at its TTL or when its holder misses the heartbeat deadline, whichever comes first; renew
pushes both out. The store makes each decision in one transaction; events go out after.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shared_context_server.clock import Clock
from shared_context_server.domain.access import (
    require,
    require_may_lock_exclusive,
    require_may_release,
)
from shared_context_server.domain.audit import audit, system_audit
from shared_context_server.domain.locks import Lock, LockChange, LockRequest, LockType
from shared_context_server.domain.models import Message, Permission, Session, SessionStatus
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import (
    DomainError,
    InvalidInputError,
    LimitExceededError,
    NoLockHeldError,
    SessionClosedError,
)
from shared_context_server.events.bus import EventBus
from shared_context_server.services.messages import MessageService
from shared_context_server.services.sessions import SessionService
from shared_context_server.storage.store import Store

logger = logging.getLogger(__name__)

COORDINATION = "coordination"
MAX_LOCK_NOTE = 1_000


@dataclass(frozen=True, slots=True)
class LockSettings:
    ttl_seconds: int = 300
    heartbeat_seconds: int = 60
    max_ttl_seconds: int = 3600


class LockService:
    def __init__(
        self,
        store: Store,
        bus: EventBus,
        clock: Clock,
        settings: LockSettings,
        sessions: SessionService,
        messages: MessageService,
    ) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._settings = settings
        self._sessions = sessions
        self._messages = messages

    def _ttl(self, ttl_seconds: int | None) -> int | None:
        if ttl_seconds is None:
            return None
        if ttl_seconds < 1:
            raise InvalidInputError("ttl_seconds must be at least 1", field="ttl_seconds")
        if ttl_seconds > self._settings.max_ttl_seconds:
            raise LimitExceededError(
                f"ttl_seconds is over the limit of {self._settings.max_ttl_seconds}",
                field="ttl_seconds",
                limit=self._settings.max_ttl_seconds,
            )
        return ttl_seconds

    async def _open_session(self, principal: Principal, session_id: str) -> Session:
        session = await self._sessions.find(session_id, principal)
        if session.status is SessionStatus.ARCHIVED:
            raise SessionClosedError(
                "the session is archived; reopen it with update_session first",
                session_id=session_id,
            )
        return session

    def _publish(self, change: LockChange) -> None:
        for event in change.events:
            self._bus.publish(event)

    async def lock(
        self,
        principal: Principal,
        session_id: str,
        lock_type: LockType = LockType.WRITE,
        *,
        ttl_seconds: int | None = None,
        message: str | None = None,
    ) -> Lock:
        """Take (or renew, or convert) the caller's lock; SESSION_LOCKED if others' locks
        stand in the way."""
        require(principal, Permission.WRITE)
        ttl = self._ttl(ttl_seconds) or self._settings.ttl_seconds
        if message is not None and len(message) > MAX_LOCK_NOTE:
            raise LimitExceededError(
                f"message is over {MAX_LOCK_NOTE} characters", field="message", limit=MAX_LOCK_NOTE
            )
        session = await self._open_session(principal, session_id)
        if lock_type is LockType.EXCLUSIVE:
            require_may_lock_exclusive(principal, session.created_by)
        now = self._clock.now()
        request = LockRequest(
            session_id=session_id,
            holder=principal.agent_id,
            holder_type=principal.agent_type,
            lock_type=lock_type,
            ttl_seconds=ttl,
            heartbeat_seconds=self._settings.heartbeat_seconds,
            message=message or None,
        )
        change = await self._store.acquire_lock(
            request, now, audit=audit(principal, "lock.acquired", now, target=session_id)
        )
        assert change.lock is not None
        self._publish(change)
        return change.lock

    async def renew(
        self, principal: Principal, session_id: str, *, ttl_seconds: int | None = None
    ) -> Lock:
        """Extend the caller's live lock; NO_LOCK_HELD if it has none (an expired lock
        cannot be renewed: lock again)."""
        require(principal, Permission.WRITE)
        ttl = self._ttl(ttl_seconds)
        await self._sessions.find(session_id, principal)
        now = self._clock.now()
        change = await self._store.renew_lock(
            session_id,
            principal.agent_id,
            now,
            heartbeat_seconds=self._settings.heartbeat_seconds,
            ttl_seconds=ttl,
            audit=audit(principal, "lock.renewed", now, target=session_id),
        )
        assert change.lock is not None
        self._publish(change)
        return change.lock

    async def unlock(
        self, principal: Principal, session_id: str, holder: str | None = None
    ) -> Lock:
        """Release the caller's lock, or (``holder``) one of its sub-agents'; NO_LOCK_HELD
        if that agent holds none."""
        require(principal, Permission.WRITE)
        holder = holder or principal.agent_id
        require_may_release(principal, holder)
        await self._sessions.find(session_id, principal)
        now = self._clock.now()
        change = await self._store.release_lock(
            session_id,
            holder,
            now,
            audit=audit(principal, "lock.released", now, target=session_id),
        )
        self._publish(change)
        return change.released[0]

    async def release_revoked(self, session_id: str, holder: str) -> None:
        """The server releases the lock of an agent whose credential was revoked."""
        now = self._clock.now()
        event = system_audit("lock.released", now, target=session_id, revoked=True)
        try:
            change = await self._store.release_lock(session_id, holder, now, audit=event)
        except NoLockHeldError:
            return
        self._publish(change)

    async def status(self, principal: Principal, session_id: str) -> list[Lock]:
        require(principal, Permission.READ)
        await self._sessions.find(session_id, principal)
        return await self._store.list_locks(session_id, self._clock.now())

    async def notify(self, principal: Principal, session_id: str, message: str | None) -> Message:
        """Post a coordination message to the session (subject to its locks, like any post)."""
        require(principal, Permission.WRITE)
        if message is None or not message.strip():
            raise InvalidInputError("notify needs a message", field="message")
        return await self._messages.add(
            principal,
            session_id,
            message,
            message_type=COORDINATION,
            metadata={"coordination": "notify"},
        )

    async def force_unlock(self, principal: Principal, session_id: str) -> list[Lock]:
        """An admin removes every live lock on the session. Audited; each former holder is
        told by a LOCK_CHANGED event naming them and a coordination message addressed to them."""
        require(principal, Permission.ADMIN)
        await self._sessions.find(session_id, principal)
        now = self._clock.now()
        change = await self._store.force_release_locks(
            session_id,
            principal.agent_id,
            now,
            audit=audit(principal, "lock.force_released", now, target=session_id),
        )
        self._publish(change)
        for lock in change.released:
            await self._tell_former_holder(principal, lock)
        return change.released

    async def _tell_former_holder(self, principal: Principal, lock: Lock) -> None:
        text = (
            f"@{lock.holder}: {principal.agent_id} force-unlocked your {lock.lock_type.value} "
            f"lock on this session (fencing token {lock.fencing_token})."
        )
        try:
            await self._messages.add(
                principal,
                lock.session_id,
                text,
                message_type=COORDINATION,
                metadata={
                    "coordination": "force_unlock",
                    "to": lock.holder,
                    "lock_type": lock.lock_type.value,
                    "fencing_token": lock.fencing_token,
                },
            )
        except DomainError:
            # The LOCK_CHANGED event already names them; the message is a courtesy.
            logger.warning("could not post the force-unlock notice to %s", lock.holder)
