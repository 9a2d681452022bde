"""Agent memory."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from shared_context_server.domain.audit import AuditEvent, system_audit
from shared_context_server.domain.models import (
    MemoryEntry,
)
from shared_context_server.errors import (
    KeyExistsError,
    SessionNotFoundError,
)
from shared_context_server.storage import dialects
from shared_context_server.storage.sql_base import (
    SqlBase,
    memory_of,
    threaded,
)
from shared_context_server.storage.store import (
    MemoryWrite,
)
from shared_context_server.storage.tables import (
    agent_memory,
    revoked_tokens,
    sessions,
)


def _glob_to_like(glob: str) -> str:
    """``*`` and ``?`` as SQL LIKE wildcards; LIKE's own wildcards match literally."""
    escaped = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _not_expired(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(agent_memory.c.expires_at.is_(None), agent_memory.c.expires_at > now)


class MemoryRows(SqlBase):
    @threaded
    def set_memory(
        self, w: MemoryWrite, now: datetime, *, audit: AuditEvent | None = None
    ) -> MemoryEntry:
        col = agent_memory.c
        where = (col.agent_id == w.agent_id, col.scope == w.scope, col.key == w.key)
        values = {
            "agent_id": w.agent_id,
            "scope": w.scope,
            "key": w.key,
            "value": w.value,
            "metadata": w.metadata,
            "created_at": now,
            "updated_at": now,
            "expires_at": w.expires_at,
        }
        keys = ("agent_id", "scope", "key")
        with self._write(audit) as conn:
            if (
                w.scope
                and not conn.execute(
                    sa.select(sessions.c.id).where(sessions.c.id == w.scope)
                ).first()
            ):
                raise SessionNotFoundError(f"no session {w.scope!r}", session_id=w.scope)
            # An expired entry is gone already, whatever the sweep has not yet removed.
            conn.execute(
                sa.delete(agent_memory).where(
                    *where, col.expires_at.is_not(None), col.expires_at <= now
                )
            )
            if w.overwrite:
                update = ("value", "metadata", "updated_at", "expires_at")
                conn.execute(dialects.upsert(self.dialect, agent_memory, values, keys, update))
            else:
                inserted = conn.execute(
                    dialects.insert_ignoring_conflict(self.dialect, agent_memory, values, keys)
                )
                if inserted.first() is None:
                    raise KeyExistsError(f"memory key {w.key!r} exists", key=w.key)
            row = conn.execute(sa.select(agent_memory).where(*where)).one()
        return memory_of(row)

    @threaded
    def get_memory(self, agent_id: str, scope: str, key: str, now: datetime) -> MemoryEntry | None:
        col = agent_memory.c
        statement = sa.select(agent_memory).where(
            col.agent_id == agent_id, col.scope == scope, col.key == key, _not_expired(now)
        )
        with self._read() as conn:
            row = conn.execute(statement).first()
        return memory_of(row) if row else None

    @threaded
    def list_memory(
        self,
        agent_id: str,
        scope: str | None,
        prefix: str,
        now: datetime,
        limit: int,
        *,
        glob: str | None = None,
    ) -> list[MemoryEntry]:
        col = agent_memory.c
        statement = sa.select(agent_memory).where(col.agent_id == agent_id, _not_expired(now))
        if scope is not None:
            statement = statement.where(col.scope == scope)
        if prefix:
            statement = statement.where(col.key.startswith(prefix, autoescape=True))
        if glob is not None:
            statement = statement.where(col.key.like(_glob_to_like(glob), escape="\\"))
        statement = statement.order_by(col.scope, col.key).limit(limit)
        with self._read() as conn:
            return [memory_of(row) for row in conn.execute(statement)]

    @threaded
    def delete_memory(
        self, agent_id: str, scope: str, key: str, now: datetime, *, audit: AuditEvent | None = None
    ) -> bool:
        col = agent_memory.c
        with self._write(audit) as conn:
            result = conn.execute(
                sa.delete(agent_memory).where(
                    col.agent_id == agent_id, col.scope == scope, col.key == key
                )
            )
        return bool(result.rowcount)

    @threaded
    def purge_expired_memory(self, now: datetime) -> int:
        col = agent_memory.c
        with self._write() as conn:
            result = conn.execute(
                sa.delete(agent_memory).where(col.expires_at.is_not(None), col.expires_at <= now)
            )
            conn.execute(sa.delete(revoked_tokens).where(revoked_tokens.c.expires_at <= now))
            if result.rowcount:
                self._append_audit(conn, system_audit("memory.purged", now, count=result.rowcount))
        return int(result.rowcount)
