"""Sessions: the unit of shared work."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared_context_server.clock import Clock
from shared_context_server.domain.access import (
    read_scope,
    require,
    require_may_update_session,
    require_session,
)
from shared_context_server.domain.audit import SYSTEM_AGENT, AuditEvent, audit, system_audit
from shared_context_server.domain.events import Change, EventKind
from shared_context_server.domain.limits import Limits, check_metadata, check_page, check_text
from shared_context_server.domain.locks import require_not_locked_out
from shared_context_server.domain.models import Permission, Session, SessionStatus
from shared_context_server.domain.principal import Principal
from shared_context_server.domain.quotas import Quota, Quotas
from shared_context_server.errors import (
    InvalidInputError,
    LimitExceededError,
    PermissionDeniedError,
    SessionNotFoundError,
)
from shared_context_server.events.bus import EventBus
from shared_context_server.services.unit_of_work import commit
from shared_context_server.storage.repositories.messages import Tally
from shared_context_server.storage.repositories.sessions import SessionChanges, SessionQuery
from shared_context_server.storage.store import Store
from shared_context_server.storage.unit_of_work import Snapshot, Transaction

# Steps of a unit of work (run inside ``store.write``); the service's use cases and the
# maintenance sweep run them, as do the storage tests.


def create_session(
    tx: Transaction,
    session: Session,
    *,
    audit: AuditEvent | None = None,
    quota: Quota | None = None,
) -> Session:
    """Store a new session; ``quota`` is checked against its creator's sessions that are
    not archived, inside the transaction."""
    if quota is not None:
        quota.check(tx.sessions.count_open(session.created_by))
    row = tx.sessions.insert(session)
    tx.changed(
        Change(EventKind.SESSION_CREATED, session.id, session.created_by, session.created_at)
    )
    if audit is not None:
        tx.audited(audit.of_row("session", session.id, row))
    return session


def update_session(
    tx: Transaction,
    session_id: str,
    changes: SessionChanges,
    agent_id: str,
    now: datetime,
    *,
    audit: AuditEvent | None = None,
) -> Session:
    """Apply ``changes`` for ``agent_id``; refused while another agent holds an exclusive
    lock on the session."""
    updated = tx.sessions.update(session_id, changes, now)
    if updated is None:
        raise SessionNotFoundError(f"no session {session_id!r}", session_id=session_id)
    # After the UPDATE, which holds the session row: no exclusive grant can slip in.
    require_not_locked_out(tx.locks.exclusive_holder(session_id, agent_id, now), session_id)
    session, row = updated
    tx.changed(Change(EventKind.SESSION_UPDATED, session_id, agent_id, now))
    if audit is not None:
        tx.audited(audit.of_row("session", session_id, row))
    return session


def archive_inactive_sessions(tx: Transaction, before: datetime, now: datetime) -> list[str]:
    """Archive the sessions nobody touched since ``before``; their ids."""
    archived = []
    for row in tx.sessions.archive_inactive(before, now):
        session_id = str(row["id"])
        tx.changed(Change(EventKind.SESSION_UPDATED, session_id, SYSTEM_AGENT, now))
        done = system_audit("session.archived", now, session_id=session_id)
        tx.audited(done.of_row("session", session_id, row))
        archived.append(session_id)
    return archived


def new_session_id() -> str:
    return "session_" + secrets.token_hex(8)


# Participants named per session in an overview: the most recent senders.
PARTICIPANTS = 8


@dataclass(frozen=True, slots=True)
class SessionOverview:
    """A session as a list of sessions shows it to one reader: the counts are of the
    messages that reader may see."""

    session: Session
    messages: int
    last_message_at: datetime | None
    participants: list[str]


@dataclass(frozen=True, slots=True)
class SessionOverviews:
    rows: list[SessionOverview]
    # The change-feed position before the read: a live list resumes there.
    feed_cursor: int


class SessionService:
    def __init__(
        self,
        store: Store,
        bus: EventBus,
        clock: Clock,
        limits: Limits,
        quotas: Quotas | None = None,
    ) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._limits = limits
        self._quotas = quotas or Quotas()

    def _check_purpose(self, purpose: str) -> str:
        check_text(purpose, "purpose")
        if not purpose.strip():
            raise InvalidInputError("purpose must not be empty", field="purpose")
        if len(purpose) > self._limits.purpose_chars:
            raise LimitExceededError(
                f"purpose is longer than {self._limits.purpose_chars} characters",
                field="purpose",
                limit=self._limits.purpose_chars,
            )
        return purpose

    async def create(
        self, principal: Principal, purpose: str, metadata: dict[str, Any] | None = None
    ) -> Session:
        require(principal, Permission.WRITE)
        if principal.session_id is not None:
            raise PermissionDeniedError("a token limited to one session cannot create sessions")
        now = self._clock.now()
        session = Session(
            id=new_session_id(),
            purpose=self._check_purpose(purpose),
            created_by=principal.agent_id,
            status=SessionStatus.ACTIVE,
            metadata=check_metadata(self._limits, metadata),
            created_at=now,
            updated_at=now,
            last_activity_at=now,
        )
        created = audit(principal, "session.created", now, session_id=session.id, target=session.id)
        quota = Quota("sessions_per_agent", principal.agent_id, self._quotas.sessions_per_agent)
        return await commit(
            self._store,
            self._bus,
            lambda tx: create_session(tx, session, audit=created, quota=quota),
        )

    async def find(self, session_id: str, principal: Principal | None = None) -> Session:
        """The session, or SESSION_NOT_FOUND. Callers check permissions first; with
        ``principal``, a token limited to another session is refused too."""
        if principal is not None:
            require_session(principal, session_id)
        session = await self._store.read(lambda tx: tx.sessions.get(session_id))
        if session is None:
            raise SessionNotFoundError(f"no session {session_id!r}", session_id=session_id)
        return session

    async def get(self, principal: Principal, session_id: str) -> Session:
        require(principal, Permission.READ)
        return await self.find(session_id, principal)

    async def overview(
        self,
        principal: Principal,
        *,
        status: SessionStatus | None = None,
        text: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> SessionOverviews:
        """``list`` with, per session, what the caller may see of its messages (how many,
        the latest, who posted them), and the change-feed position, read in one snapshot;
        ``text``: only sessions whose id or purpose holds it, in any case."""
        require(principal, Permission.READ)
        check_page(self._limits, limit, offset)
        query = SessionQuery(
            limit=limit,
            offset=offset,
            status=status,
            only=principal.session_id,
            text=check_text(text, "text") if text else None,
        )
        scope = read_scope(principal)

        def read(tx: Snapshot) -> SessionOverviews:
            feed_cursor = tx.feed.latest_id()
            found = tx.sessions.list(query)
            tallies = tx.messages.tally([s.id for s in found], scope, PARTICIPANTS)
            none = Tally(0, None, [])
            rows = [
                SessionOverview(s, t.messages, t.last_at, t.senders)
                for s, t in ((s, tallies.get(s.id, none)) for s in found)
            ]
            return SessionOverviews(rows, feed_cursor)

        return await self._store.read(read)

    async def list(
        self,
        principal: Principal,
        *,
        status: SessionStatus | None = None,
        mine: bool = False,
        id_prefix: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Session]:
        """The sessions the caller may read, most recently active first; ``id_prefix``
        keeps those whose id starts with it (argument completion)."""
        require(principal, Permission.READ)
        check_page(self._limits, limit, offset)
        query = SessionQuery(
            limit=limit,
            offset=offset,
            status=status,
            involving=principal.agent_id if mine else None,
            only=principal.session_id,
            id_prefix=check_text(id_prefix, "id_prefix") if id_prefix else None,
        )
        return await self._store.read(lambda tx: tx.sessions.list(query))

    async def update(
        self,
        principal: Principal,
        session_id: str,
        *,
        status: SessionStatus | None = None,
        purpose: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Session:
        require(principal, Permission.WRITE)
        require_session(principal, session_id)
        now = self._clock.now()
        changed = {
            name: value
            for name, value in (("status", status), ("purpose", purpose), ("metadata", metadata))
            if value is not None
        }
        event = audit(
            principal,
            "session.updated",
            now,
            session_id=session_id,
            target=session_id,
            changed=sorted(changed),
            status=status.value if status else None,
        )

        def update(tx: Transaction) -> Session:
            session = tx.sessions.get(session_id)
            if session is None:
                raise SessionNotFoundError(f"no session {session_id!r}", session_id=session_id)
            require_may_update_session(principal, session.created_by, session_id)
            if not changed:
                raise InvalidInputError("nothing to update: give status, purpose or metadata")
            changes = SessionChanges(
                status=status,
                purpose=self._check_purpose(purpose) if purpose is not None else None,
                metadata=check_metadata(self._limits, metadata) if metadata is not None else None,
            )
            return update_session(tx, session_id, changes, principal.agent_id, now, audit=event)

        return await commit(self._store, self._bus, update)
