"""Presence: who is around, what they say they are doing, and who is active in a session.

Any authenticated call refreshes the caller's last-seen through ``seen``, which writes at
most once per agent (and per agent and session) every ``refresh_seconds``, in each process
and across the processes sharing the database (a sighting another process recorded lately
is not written again). Events go out only when what others see changes: a registered
status, an agent coming back from offline, an agent becoming active in a session. Agents not
seen within the window show as offline.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared_context_server.clock import Clock
from shared_context_server.domain.access import require
from shared_context_server.domain.audit import AuditEvent, audit
from shared_context_server.domain.events import Change, EventKind
from shared_context_server.domain.models import Permission
from shared_context_server.domain.presence import (
    NO_SESSION,
    AgentPresence,
    PresenceStatus,
    PresenceTouch,
    seen_status,
    status_after,
)
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import InvalidInputError
from shared_context_server.events.bus import EventBus
from shared_context_server.services.sessions import SessionService
from shared_context_server.services.unit_of_work import commit
from shared_context_server.storage.store import Store
from shared_context_server.storage.unit_of_work import Transaction

logger = logging.getLogger(__name__)

# Forget throttle entries beyond this many (oldest first), so memory stays bounded.
MAX_REMEMBERED = 10_000
MAX_LISTED = 500
# A status change is told to at most this many of the agent's recent sessions.
MAX_SESSIONS_TOLD = 20


def record_presence(
    tx: Transaction, touch: PresenceTouch, *, audit: AuditEvent | None = None
) -> AgentPresence:
    """A step of a unit of work: record that the agent was seen (in a session, if given
    and it exists) and, if given, its status; the stored presence.

    Records PRESENCE_CHANGED changes: one agent-level (session id ""), and one per recently
    active session, when its visible status changed (offline agents coming back count);
    and one for a session it newly became active in.
    """
    stored = tx.presence.claim(touch.agent_id)
    if stored is not None and recorded_lately(tx, stored, touch):
        return stored
    previous = seen_status(stored, touch.window_start)
    status = status_after(previous, touch.status)
    presence = tx.presence.save(
        touch.agent_id, touch.agent_type, status, touch.permissions, touch.now
    )
    told: set[str] = set()
    changed = status is not previous
    if changed:
        told.update(
            tx.presence.recent_sessions(touch.agent_id, touch.window_start, MAX_SESSIONS_TOLD)
        )
    joined = False
    if touch.session_id is not None and tx.sessions.get(touch.session_id) is not None:
        last = tx.presence.seen_in_session(
            touch.session_id, touch.agent_id, touch.agent_type, touch.now
        )
        joined = last is None or last <= touch.window_start
        if joined:
            told.add(touch.session_id)
    payload = {"status": status.value, "previous": previous.value, "agent_type": touch.agent_type}
    for session_id in ([NO_SESSION] if changed else []) + sorted(told):
        tx.changed(
            Change(
                EventKind.PRESENCE_CHANGED,
                session_id,
                touch.agent_id,
                touch.now,
                payload={**payload, "joined": joined and session_id == touch.session_id},
            )
        )
    if audit is not None:
        tx.audited(audit)
    return presence


def recorded_lately(tx: Transaction, stored: AgentPresence, touch: PresenceTouch) -> bool:
    """Whether another process recorded this sighting (and the session activity) after the
    touch's ``fresh_after``: nothing is left to write, nor to tell."""
    if touch.fresh_after is None or touch.status is not None:
        return False
    if stored.last_seen <= touch.fresh_after:
        return False
    if touch.session_id is None:
        return True
    last = tx.presence.last_seen_in(touch.session_id, touch.agent_id)
    return last is not None and last > touch.fresh_after


@dataclass(frozen=True, slots=True)
class AgentSeen:
    """An agent as one reader sees it: permissions only for admins and the agent itself."""

    agent_id: str
    agent_type: str
    status: PresenceStatus
    last_seen: datetime
    last_seen_in_session: datetime | None
    permissions: list[str] | None


class PresenceService:
    def __init__(
        self,
        store: Store,
        bus: EventBus,
        clock: Clock,
        sessions: SessionService,
        *,
        window_seconds: float,
        refresh_seconds: float,
    ) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._sessions = sessions
        self.window = timedelta(seconds=window_seconds)
        self._refresh = timedelta(seconds=refresh_seconds)
        self._touched: dict[tuple[str, str], datetime] = {}

    def _fresh(self, key: tuple[str, str], now: datetime) -> bool:
        last = self._touched.get(key)
        return last is not None and last <= now < last + self._refresh

    def _remember(self, keys: list[tuple[str, str]], now: datetime) -> None:
        for key in keys:
            self._touched[key] = now
        if len(self._touched) > MAX_REMEMBERED:
            oldest = sorted(self._touched, key=self._touched.__getitem__)
            for key in oldest[: len(oldest) - MAX_REMEMBERED // 2]:
                del self._touched[key]

    def _touch(
        self,
        principal: Principal,
        now: datetime,
        session_id: str | None,
        status: PresenceStatus | None,
        fresh_after: datetime | None = None,
    ) -> PresenceTouch:
        return PresenceTouch(
            agent_id=principal.agent_id,
            agent_type=principal.agent_type,
            permissions=principal.permissions,
            now=now,
            window_start=now - self.window,
            session_id=session_id,
            status=status,
            fresh_after=fresh_after,
        )

    async def seen(self, principal: Principal, session_id: str | None = None) -> None:
        """Refresh the caller's last-seen (and activity in ``session_id``), cheaply: nothing
        is written if both were recorded within ``refresh_seconds``. Never fails the call
        it is part of; a failed write is logged and retried on the next call. Activity is
        recorded only in a session that exists and the caller may read; the caller learns
        nothing either way."""
        if session_id is not None and not (
            principal.has(Permission.READ) and principal.may_access(session_id)
        ):
            session_id = None
        now = self._clock.now()
        keys = [(principal.agent_id, "")]
        if session_id:
            keys.append((principal.agent_id, session_id))
        if all(self._fresh(key, now) for key in keys):
            return
        agent_fresh = self._fresh(keys[0], now)
        self._remember(keys, now)
        try:
            # Only the session is due: a read spares a write for a session that is not there.
            if agent_fresh and session_id and not await self._exists(session_id):
                return
            touch = self._touch(principal, now, session_id, None, fresh_after=now - self._refresh)
            done = await self._store.write(lambda tx: record_presence(tx, touch))
        except Exception:
            logger.warning("presence not recorded for %s", principal.agent_id, exc_info=True)
            for key in keys:
                self._touched.pop(key, None)
            return
        for event in done.events:
            self._bus.publish(event)

    async def _exists(self, session_id: str) -> bool:
        return await self._store.read(lambda tx: tx.sessions.get(session_id)) is not None

    async def register(self, principal: Principal, status: PresenceStatus) -> AgentPresence:
        """Set the caller's status (active, busy or idle); audited, and told to others."""
        require(principal, Permission.READ)
        if status is PresenceStatus.OFFLINE:
            raise InvalidInputError("status must be active, busy or idle", field="status")
        now = self._clock.now()
        touch = self._touch(principal, now, None, status)
        event = audit(
            principal, "presence.registered", now, target=principal.agent_id, status=status.value
        )
        presence = await commit(
            self._store, self._bus, lambda tx: record_presence(tx, touch, audit=event)
        )
        self._remember([(principal.agent_id, "")], now)
        return presence

    def view(self, principal: Principal, presence: AgentPresence, now: datetime) -> AgentSeen:
        own = principal.is_admin or principal.agent_id == presence.agent_id
        return AgentSeen(
            agent_id=presence.agent_id,
            agent_type=presence.agent_type,
            status=presence.status_at(now - self.window),
            last_seen=presence.last_seen,
            last_seen_in_session=presence.last_seen_in_session,
            permissions=sorted(p.value for p in presence.permissions) if own else None,
        )

    async def active_agents(
        self, principal: Principal, session_id: str | None = None, *, include_offline: bool = False
    ) -> list[AgentSeen]:
        """Agents seen within the window, most recent first (with ``include_offline``, every
        known agent, the others marked offline); for a session, those active in it within
        the window, by their last activity there."""
        require(principal, Permission.READ)
        # A token limited to one session sees who is active there, not everyone.
        session_id = session_id or principal.session_id
        if session_id is not None:
            await self._sessions.find(session_id, principal)
        now = self._clock.now()
        window_start = now - self.window
        found = await self._store.read(
            lambda tx: tx.presence.list(
                window_start,
                session_id=session_id,
                include_offline=include_offline,
                limit=MAX_LISTED,
            )
        )
        return [self.view(principal, presence, now) for presence in found]
