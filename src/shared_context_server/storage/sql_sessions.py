"""Sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from shared_context_server.domain.audit import AuditEvent, system_audit
from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.models import (
    Session,
    SessionStatus,
)
from shared_context_server.domain.quotas import Quota
from shared_context_server.errors import (
    SessionNotFoundError,
)
from shared_context_server.storage.sql_base import (
    SESSION_BY_ID,
    SqlBase,
    session_of,
    threaded,
)
from shared_context_server.storage.store import (
    SessionChanges,
    SessionQuery,
)
from shared_context_server.storage.tables import (
    messages,
    sessions,
)

# The sessions an agent created that are not archived (the sessions_per_agent quota).
_OPEN_SESSIONS = sa.select(sa.func.count()).where(
    sessions.c.created_by == sa.bindparam("creator"),
    sessions.c.status.in_([s.value for s in SessionStatus if s is not SessionStatus.ARCHIVED]),
)


class SessionRows(SqlBase):
    @threaded
    def create_session(
        self, session: Session, *, audit: AuditEvent | None = None, quota: Quota | None = None
    ) -> tuple[Session, ChangeEvent]:
        values = {
            "id": session.id,
            "purpose": session.purpose,
            "created_by": session.created_by,
            "status": session.status.value,
            "metadata": session.metadata,
            "created_at": session.created_at,
            "updated_at": session.updated_at,
            "last_activity_at": session.last_activity_at,
        }
        if audit is not None:
            audit = audit.of_row("session", session.id, values)
        with self._write(audit) as conn:
            if quota is not None:
                held = conn.execute(_OPEN_SESSIONS, {"creator": session.created_by}).scalar()
                quota.check(int(held or 0))
            conn.execute(sa.insert(sessions).values(values))
            event = self._feed(
                conn, EventKind.SESSION_CREATED, session.id, session.created_by, session.created_at
            )
        return session, event

    @threaded
    def get_session(self, session_id: str) -> Session | None:
        with self._read() as conn:
            row = conn.execute(SESSION_BY_ID, {"session_id": session_id}).first()
        return session_of(row) if row else None

    @threaded
    def list_sessions(self, query: SessionQuery) -> list[Session]:
        statement = sa.select(sessions)
        if query.status:
            statement = statement.where(sessions.c.status == query.status.value)
        if query.created_by:
            statement = statement.where(sessions.c.created_by == query.created_by)
        if query.only:
            statement = statement.where(sessions.c.id == query.only)
        if query.id_prefix:
            # substr, not LIKE: no wildcards to escape, and case-sensitive on both backends.
            length = len(query.id_prefix)
            statement = statement.where(sa.func.substr(sessions.c.id, 1, length) == query.id_prefix)
        if query.involving:
            posted = sa.select(messages.c.session_id).where(messages.c.sender == query.involving)
            statement = statement.where(
                sa.or_(sessions.c.created_by == query.involving, sessions.c.id.in_(posted))
            )
        statement = (
            statement.order_by(sessions.c.last_activity_at.desc(), sessions.c.id)
            .limit(query.limit)
            .offset(query.offset)
        )
        with self._read() as conn:
            return [session_of(row) for row in conn.execute(statement)]

    @threaded
    def update_session(
        self,
        session_id: str,
        changes: SessionChanges,
        agent_id: str,
        now: datetime,
        *,
        audit: AuditEvent | None = None,
    ) -> tuple[Session, ChangeEvent]:
        values: dict[str, Any] = {"updated_at": now, "last_activity_at": now}
        if changes.status is not None:
            values["status"] = changes.status.value
        if changes.purpose is not None:
            values["purpose"] = changes.purpose
        if changes.metadata is not None:
            values["metadata"] = changes.metadata
        with self._write() as conn:
            result = conn.execute(
                sa.update(sessions).where(sessions.c.id == session_id).values(values)
            )
            if result.rowcount == 0:
                raise SessionNotFoundError(f"no session {session_id!r}", session_id=session_id)
            # After the UPDATE, which holds the session row: no exclusive grant can slip in.
            self._require_unlocked(conn, session_id, agent_id, now)
            event = self._feed(conn, EventKind.SESSION_UPDATED, session_id, agent_id, now)
            row = conn.execute(SESSION_BY_ID, {"session_id": session_id}).one()
            if audit is not None:
                self._append_audit(conn, audit.of_row("session", session_id, row._mapping))
        return session_of(row), event

    @threaded
    def archive_inactive_sessions(self, before: datetime, now: datetime) -> list[ChangeEvent]:
        archived = SessionStatus.ARCHIVED.value
        with self._write() as conn:
            stale = conn.execute(
                sa.select(sessions).where(
                    sessions.c.status != archived, sessions.c.last_activity_at < before
                )
            ).all()
            if stale:
                conn.execute(
                    sa.update(sessions)
                    .where(sessions.c.id.in_([row.id for row in stale]))
                    .values(status=archived, updated_at=now)
                )
            events = []
            for row in stale:
                events.append(self._feed(conn, EventKind.SESSION_UPDATED, row.id, "system", now))
                done = system_audit("session.archived", now, session_id=row.id)
                after = {**row._mapping, "status": archived}
                self._append_audit(conn, done.of_row("session", row.id, after))
            return events
