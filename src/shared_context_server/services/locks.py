"""Session locks: claim a session (or share reading it) before conflicting work.

``read`` locks are shared; ``write`` and ``exclusive`` locks are held by one agent and
exclude every other lock; an ``exclusive`` lock also makes the session read-only for every
other agent. Each grant carries a fencing token larger than every earlier one. A lock ends
at its TTL or when its holder misses the heartbeat deadline, whichever comes first; renew
pushes both out. Each decision is one unit of work that first takes its turn on the
session (``tx.locks.lock_session``), so two agents racing for one lock never both get it;
each grant takes the next fencing token in that transaction, and each change records its
LOCK_CHANGED feed entry and audit record there too. Events go out after commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime

from shared_context_server.clock import Clock
from shared_context_server.domain.access import (
    require,
    require_may_lock_exclusive,
    require_may_release,
)
from shared_context_server.domain.audit import SYSTEM_AGENT, AuditEvent, audit, system_audit
from shared_context_server.domain.locks import (
    FENCING_COUNTER,
    Lock,
    LockRequest,
    LockType,
    expiry_audit,
    extended,
    granted,
    held_by,
    lock_audit,
    lock_changed,
    lock_payload,
    partition_live,
    require_any_live,
    require_held,
    require_unblocked,
)
from shared_context_server.domain.models import Message, Permission, Session
from shared_context_server.domain.principal import Principal
from shared_context_server.domain.sessions import require_writable
from shared_context_server.errors import (
    DomainError,
    InvalidInputError,
    LimitExceededError,
    NoLockHeldError,
    SessionNotFoundError,
)
from shared_context_server.events.bus import EventBus
from shared_context_server.services.messages import MessageService
from shared_context_server.services.sessions import SessionService
from shared_context_server.services.unit_of_work import commit
from shared_context_server.storage.store import Store
from shared_context_server.storage.unit_of_work import Transaction

logger = logging.getLogger(__name__)

COORDINATION = "coordination"
MAX_LOCK_NOTE = 1_000


@dataclass(frozen=True, slots=True)
class LockSettings:
    ttl_seconds: int = 300
    heartbeat_seconds: int = 60
    max_ttl_seconds: int = 3600


# --- the decisions, each the work of one transaction ---------------------------------------


def _session_locks(tx: Transaction, session_id: str) -> list[Lock]:
    """Take this transaction's turn on the session (it must exist), then read its locks."""
    if tx.locks.lock_session(session_id) is None:
        raise SessionNotFoundError(f"no session {session_id!r}", session_id=session_id)
    return tx.locks.of_session(session_id)


def _reclaim_expired(tx: Transaction, locks: list[Lock], now: datetime) -> list[Lock]:
    """Remove the expired locks (audited by the server as lock.expired, told in the feed);
    the live rest."""
    live, expired = partition_live(locks, now)
    for lock in expired:
        tx.locks.delete(lock.session_id, lock.holder)
        payload = lock_payload("expired", lock, holder=None, former_holder=lock.holder)
        tx.changed(lock_changed(lock, SYSTEM_AGENT, now, payload))
        tx.audited(expiry_audit(lock, now))
    return live


def acquire_lock(
    tx: Transaction, request: LockRequest, now: datetime, *, event: AuditEvent | None = None
) -> Lock:
    """Grant ``request`` or raise SESSION_LOCKED. The holder's own lock of the same type
    is renewed (same fencing token); of another type, replaced by a new grant."""
    # The session's status under this transaction's turn on it: archived since the
    # service looked means no grant.
    require_writable(request.session_id, tx.locks.lock_session(request.session_id))
    live = _reclaim_expired(tx, tx.locks.of_session(request.session_id), now)
    require_unblocked(request, live)
    mine = held_by(request.holder, live)
    extra: dict[str, object] = {}
    if mine is not None and mine.lock_type is request.lock_type:
        lock = extended(mine, now, request.ttl_seconds, request.heartbeat_seconds)
        tx.locks.update_deadlines(lock)
        action, event_type = "renewed", "lock.renewed"
    else:
        if mine is not None:
            tx.locks.delete(mine.session_id, mine.holder)
            extra = {"converted_from": mine.lock_type.value}
        lock = granted(request, tx.counters.next(FENCING_COUNTER), now)
        tx.locks.insert(lock)
        action, event_type = "acquired", "lock.acquired"
    payload = lock_payload(action, lock, holder=lock.holder, former_holder=None, **extra)
    tx.changed(lock_changed(lock, request.holder, now, payload))
    if event is not None:
        tx.audited(replace(lock_audit(event, lock, **extra), event_type=event_type))
    return lock


def renew_lock(
    tx: Transaction,
    session_id: str,
    holder: str,
    now: datetime,
    *,
    heartbeat_seconds: int,
    ttl_seconds: int | None = None,
    event: AuditEvent | None = None,
) -> Lock:
    """Extend the holder's live lock: TTL from now (its own, or ``ttl_seconds``) and the
    heartbeat deadline. An expired lock cannot be renewed (NO_LOCK_HELD): lock again."""
    mine = require_held(holder, _session_locks(tx, session_id), now, session_id)
    lock = extended(mine, now, ttl_seconds or mine.ttl_seconds, heartbeat_seconds)
    tx.locks.update_deadlines(lock)
    payload = lock_payload("renewed", lock, holder=holder, former_holder=None)
    tx.changed(lock_changed(lock, holder, now, payload))
    if event is not None:
        tx.audited(lock_audit(event, lock))
    return lock


def release_lock(
    tx: Transaction,
    session_id: str,
    holder: str,
    now: datetime,
    *,
    event: AuditEvent | None = None,
) -> Lock:
    """The holder gives up its live lock (returned); NO_LOCK_HELD if it holds none."""
    mine = require_held(holder, _session_locks(tx, session_id), now, session_id)
    tx.locks.delete(mine.session_id, mine.holder)
    payload = lock_payload("released", mine, holder=None, former_holder=holder)
    tx.changed(lock_changed(mine, holder, now, payload))
    if event is not None:
        tx.audited(lock_audit(event, mine))
    return mine


def force_release_locks(
    tx: Transaction,
    session_id: str,
    actor: str,
    now: datetime,
    *,
    event: AuditEvent | None = None,
) -> list[Lock]:
    """Remove every live lock on the session (an admin's act; one audit record and one
    feed entry per former holder); the removed locks. NO_LOCK_HELD when there is none."""
    live = _reclaim_expired(tx, _session_locks(tx, session_id), now)
    require_any_live(live, session_id)
    for lock in live:
        tx.locks.delete(lock.session_id, lock.holder)
        payload = lock_payload(
            "force_released", lock, holder=None, former_holder=lock.holder, by=actor
        )
        tx.changed(lock_changed(lock, actor, now, payload))
        if event is not None:
            tx.audited(replace(lock_audit(event, lock), target=lock.holder))
    return live


# --- the use cases -----------------------------------------------------------------------


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
        require_writable(session_id, session.status)
        return session

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
        event = audit(principal, "lock.acquired", now, target=session_id)
        return await commit(
            self._store, self._bus, lambda tx: acquire_lock(tx, request, now, event=event)
        )

    async def renew(
        self, principal: Principal, session_id: str, *, ttl_seconds: int | None = None
    ) -> Lock:
        """Extend the caller's live lock; NO_LOCK_HELD if it has none (an expired lock
        cannot be renewed: lock again)."""
        require(principal, Permission.WRITE)
        ttl = self._ttl(ttl_seconds)
        await self._sessions.find(session_id, principal)
        now = self._clock.now()
        event = audit(principal, "lock.renewed", now, target=session_id)
        heartbeat = self._settings.heartbeat_seconds

        def renew(tx: Transaction) -> Lock:
            return renew_lock(
                tx,
                session_id,
                principal.agent_id,
                now,
                heartbeat_seconds=heartbeat,
                ttl_seconds=ttl,
                event=event,
            )

        return await commit(self._store, self._bus, renew)

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
        event = audit(principal, "lock.released", now, target=session_id)
        return await commit(
            self._store,
            self._bus,
            lambda tx: release_lock(tx, session_id, holder, now, event=event),
        )

    async def release_revoked(self, session_id: str, holder: str) -> None:
        """The server releases the lock of an agent whose credential was revoked."""
        now = self._clock.now()
        event = system_audit("lock.released", now, target=session_id, revoked=True)
        try:
            await commit(
                self._store,
                self._bus,
                lambda tx: release_lock(tx, session_id, holder, now, event=event),
            )
        except NoLockHeldError:
            return

    async def status(self, principal: Principal, session_id: str) -> list[Lock]:
        require(principal, Permission.READ)
        await self._sessions.find(session_id, principal)
        now = self._clock.now()
        return await self._store.read(lambda tx: tx.locks.live(session_id, now))

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
        event = audit(principal, "lock.force_released", now, target=session_id)
        actor = principal.agent_id
        released = await commit(
            self._store,
            self._bus,
            lambda tx: force_release_locks(tx, session_id, actor, now, event=event),
        )
        for lock in released:
            await self._tell_former_holder(principal, lock)
        return released

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
