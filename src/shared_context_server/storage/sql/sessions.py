"""Sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from shared_context_server.domain.models import Session, SessionStatus
from shared_context_server.storage.repositories.sessions import SessionChanges, SessionQuery
from shared_context_server.storage.sql.repository import Repository
from shared_context_server.storage.sql.rows import session_of
from shared_context_server.storage.tables import messages, sessions

_s = sessions.c
_ARCHIVED = SessionStatus.ARCHIVED.value

# Built once: SQLAlchemy then skips rebuilding and re-keying them per call.
SESSION_BY_ID = sa.select(sessions).where(_s.id == sa.bindparam("session_id"))
_TOUCH = (
    sa.update(sessions)
    .where(_s.id == sa.bindparam("touched_id"))
    .values(last_activity_at=sa.bindparam("touched_at"))
    .returning(_s.status)
)
_INSERT = sa.insert(sessions)
# The sessions an agent created that are not archived (the sessions_per_agent quota).
_OPEN = sa.select(sa.func.count()).where(
    _s.created_by == sa.bindparam("creator"), _s.status != _ARCHIVED
)
_ARCHIVE = (
    sa.update(sessions)
    .where(_s.status != _ARCHIVED, _s.last_activity_at < sa.bindparam("before"))
    .values(status=_ARCHIVED, updated_at=sa.bindparam("archived_at"))
    .returning(*sessions.c)
)


class SqlSessions(Repository):
    __slots__ = ()

    def get(self, session_id: str) -> Session | None:
        row = self.conn.execute(SESSION_BY_ID, {"session_id": session_id}).first()
        return session_of(row) if row else None

    def touch(self, session_id: str, now: datetime) -> SessionStatus | None:
        # An UPDATE: it holds the row (PostgreSQL) to the end of the transaction.
        status = self.conn.execute(_TOUCH, {"touched_id": session_id, "touched_at": now}).scalar()
        return None if status is None else SessionStatus(status)

    def insert(self, session: Session) -> dict[str, object]:
        values: dict[str, object] = {
            "id": session.id,
            "purpose": session.purpose,
            "created_by": session.created_by,
            "status": session.status.value,
            "metadata": session.metadata,
            "created_at": session.created_at,
            "updated_at": session.updated_at,
            "last_activity_at": session.last_activity_at,
        }
        self.conn.execute(_INSERT, values)
        return values

    def count_open(self, created_by: str) -> int:
        self.take_turn_on("open sessions", created_by)
        return int(self.conn.execute(_OPEN, {"creator": created_by}).scalar() or 0)

    def update(
        self, session_id: str, changes: SessionChanges, now: datetime
    ) -> tuple[Session, dict[str, object]] | None:
        values: dict[str, Any] = {"updated_at": now, "last_activity_at": now}
        if changes.status is not None:
            values["status"] = changes.status.value
        if changes.purpose is not None:
            values["purpose"] = changes.purpose
        if changes.metadata is not None:
            values["metadata"] = changes.metadata
        statement = (
            sa.update(sessions).where(_s.id == session_id).values(values).returning(*sessions.c)
        )
        row = self.conn.execute(statement).first()
        if row is None:
            return None
        return session_of(row), dict(row._mapping)

    def archive_inactive(self, before: datetime, now: datetime) -> list[dict[str, object]]:
        rows = self.conn.execute(_ARCHIVE, {"before": before, "archived_at": now})
        return sorted((dict(row._mapping) for row in rows), key=lambda row: str(row["id"]))

    def list(self, query: SessionQuery) -> list[Session]:
        statement = sa.select(sessions)
        if query.status:
            statement = statement.where(_s.status == query.status.value)
        if query.created_by:
            statement = statement.where(_s.created_by == query.created_by)
        if query.only:
            statement = statement.where(_s.id == query.only)
        if query.id_prefix:
            # substr, not LIKE: no wildcards to escape, and case-sensitive on both backends.
            length = len(query.id_prefix)
            statement = statement.where(sa.func.substr(_s.id, 1, length) == query.id_prefix)
        if query.text:
            wanted = query.text.lower()
            statement = statement.where(
                sa.or_(
                    sa.func.lower(_s.purpose).contains(wanted, autoescape=True),
                    sa.func.lower(_s.id).contains(wanted, autoescape=True),
                )
            )
        if query.involving:
            posted = sa.select(messages.c.session_id).where(messages.c.sender == query.involving)
            statement = statement.where(sa.or_(_s.created_by == query.involving, _s.id.in_(posted)))
        statement = (
            statement.order_by(_s.last_activity_at.desc(), _s.id)
            .limit(query.limit)
            .offset(query.offset)
        )
        return [session_of(row) for row in self.conn.execute(statement)]
