"""Sessions."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from shared_context_server.domain.models import Session, SessionStatus
from shared_context_server.storage.sql.repository import Repository
from shared_context_server.storage.sql.rows import session_of
from shared_context_server.storage.tables import sessions

# Built once: SQLAlchemy then skips rebuilding and re-keying them per call.
SESSION_BY_ID = sa.select(sessions).where(sessions.c.id == sa.bindparam("session_id"))
_TOUCH = (
    sa.update(sessions)
    .where(sessions.c.id == sa.bindparam("touched_id"))
    .values(last_activity_at=sa.bindparam("touched_at"))
    .returning(sessions.c.status)
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
