"""Agent memory."""

from __future__ import annotations

import functools
from dataclasses import fields, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from shared_context_server.domain.audit import AuditEvent, memory_entity_id, system_audit
from shared_context_server.domain.models import (
    MemoryEntry,
)
from shared_context_server.domain.quotas import MemoryQuota, MemoryUsage
from shared_context_server.errors import (
    ConflictError,
    KeyExistsError,
    LimitExceededError,
    SessionNotFoundError,
)
from shared_context_server.storage import dialects
from shared_context_server.storage import sql_usage as usage
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
    idempotency_keys,
    revoked_tokens,
    sessions,
)


def _glob_to_like(glob: str) -> str:
    """``*`` and ``?`` as SQL LIKE wildcards; LIKE's own wildcards match literally."""
    escaped = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _not_expired(now: datetime | sa.BindParameter[datetime]) -> sa.ColumnElement[bool]:
    return sa.or_(agent_memory.c.expires_at.is_(None), agent_memory.c.expires_at > now)


# Built once (see sql_base): the statements of set_memory and get_memory.
_c = agent_memory.c
_KEY = (
    _c.agent_id == sa.bindparam("k_agent"),
    _c.scope == sa.bindparam("k_scope"),
    _c.key == sa.bindparam("k_key"),
)
_NOW: sa.BindParameter[datetime] = sa.bindparam("now")
_SESSION_EXISTS = sa.select(sessions.c.id).where(sessions.c.id == sa.bindparam("k_scope"))
_DELETE_EXPIRED = (
    sa.delete(agent_memory)
    .where(*_KEY, _c.expires_at.is_not(None), _c.expires_at <= _NOW)
    .returning(_c.value_bytes)
)
_BYTES = sa.select(_c.value_bytes).where(*_KEY)
_VERSION = sa.select(_c.version).where(*_KEY)
_ENTRY = sa.select(agent_memory).where(*_KEY)
_LIVE_ENTRY = sa.select(agent_memory).where(*_KEY, _not_expired(_NOW))
_ROW_KEY = ("agent_id", "scope", "key")
# An agent's unexpired entries and their bytes, counted exactly: a quota check's second
# look when the agent's totals (which include expired entries) say it is over.
_USAGE = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(_c.value_bytes), 0)).where(
    _c.agent_id == sa.bindparam("k_agent"), _not_expired(_NOW)
)


@functools.lru_cache(maxsize=2)
def _overwrite(dialect: str) -> sa.Executable:
    bump = {"version": _c.version + 1}
    updated = ("value", "metadata", "updated_at", "expires_at", "value_bytes")
    return dialects.upsert(dialect, agent_memory, None, _ROW_KEY, updated, bump)


@functools.lru_cache(maxsize=2)
def _insert_new(dialect: str) -> sa.Executable:
    return dialects.insert_ignoring_conflict(dialect, agent_memory, None, _ROW_KEY)


def _entry_to_json(entry: MemoryEntry) -> dict[str, Any]:
    return {
        **{f.name: getattr(entry, f.name) for f in fields(entry)},
        "created_at": entry.created_at.isoformat(),
        "updated_at": entry.updated_at.isoformat(),
        "expires_at": entry.expires_at.isoformat() if entry.expires_at else None,
    }


def _entry_from_json(data: dict[str, Any]) -> MemoryEntry:
    expires_at = data["expires_at"]
    return MemoryEntry(
        **{
            **data,
            "created_at": datetime.fromisoformat(data["created_at"]),
            "updated_at": datetime.fromisoformat(data["updated_at"]),
            "expires_at": datetime.fromisoformat(expires_at) if expires_at else None,
        }
    )


def _sealed(
    audit: AuditEvent, agent_id: str, scope: str, key: str, row: sa.Row[Any] | None
) -> AuditEvent:
    """The event naming the entry it left (None: deleted) and, for verification of a row
    the expiry sweep removed without a record, the expiry it was given."""
    entity_id = memory_entity_id(agent_id, scope, key)
    if row is None:
        return audit.of_row("memory", entity_id, None)
    expires_at = None if row.expires_at is None else row.expires_at.isoformat()
    event = replace(audit, metadata={**audit.metadata, "expires_at": expires_at})
    return event.of_row("memory", entity_id, row._mapping)


class MemoryRows(SqlBase):
    @threaded
    def set_memory(
        self,
        w: MemoryWrite,
        now: datetime,
        *,
        audit: AuditEvent | None = None,
        quota: MemoryQuota | None = None,
    ) -> MemoryEntry:
        key = {"k_agent": w.agent_id, "k_scope": w.scope, "k_key": w.key}
        values = {
            "agent_id": w.agent_id,
            "scope": w.scope,
            "key": w.key,
            "value": w.value,
            "metadata": w.metadata,
            "created_at": now,
            "updated_at": now,
            "expires_at": w.expires_at,
            "value_bytes": w.value_bytes,
        }
        request = {
            "scope": w.scope,
            "key": w.key,
            "value": w.value,
            "metadata": w.metadata,
            "expires_at": w.expires_at,
            "overwrite": w.overwrite,
            "expected_version": w.expected_version,
        }
        with self._write() as conn:
            replayed = self._replay(conn, w.agent_id, "set_memory", w.idempotency_key, request, now)
            if replayed is not None:
                return _entry_from_json(replayed)
            if w.scope and not conn.execute(_SESSION_EXISTS, key).first():
                raise SessionNotFoundError(f"no session {w.scope!r}", session_id=w.scope)
            # An expired entry is gone already, whatever the sweep has not yet removed.
            expired = conn.execute(_DELETE_EXPIRED, {**key, "now": now}).scalar()
            if w.expected_version is not None:
                current = conn.execute(_VERSION, key).scalar() or 0
                if current != w.expected_version:
                    raise ConflictError(
                        f"memory key {w.key!r} is at version {current}, not {w.expected_version}",
                        key=w.key,
                        current_version=current,
                    )
            replaced = conn.execute(_BYTES, key).scalar()  # None: a new key
            self._charge(conn, w, quota, expired, replaced, now)
            if w.overwrite:
                conn.execute(_overwrite(self.dialect.name), values)
            elif conn.execute(_insert_new(self.dialect.name), values).first() is None:
                raise KeyExistsError(f"memory key {w.key!r} exists", key=w.key)
            row = conn.execute(_ENTRY, key).one()
            entry = memory_of(row)
            self._remember(
                conn,
                w.agent_id,
                "set_memory",
                w.idempotency_key,
                request,
                _entry_to_json(entry),
                now,
            )
            if audit is not None:
                self._append_audit(conn, _sealed(audit, w.agent_id, w.scope, w.key, row))
        return entry

    def _charge(
        self,
        conn: sa.Connection,
        w: MemoryWrite,
        quota: MemoryQuota | None,
        expired: int | None,
        replaced: int | None,
        now: datetime,
    ) -> None:
        """Count the write (and the expired entry it cleared) into the agent's totals and,
        with a quota, check what the agent held before it. Totals that say over may hold
        expired entries the sweep has not removed: then count exactly. A refusal rolls the
        whole transaction back, totals included."""
        new_key = replaced is None
        grown = w.value_bytes - (replaced or 0)
        keys, size = usage.charge(
            conn, w.agent_id, new_key - (expired is not None), grown - (expired or 0)
        )
        if quota is None:
            return
        try:
            quota.check(MemoryUsage(keys - new_key, size - grown, replaced), w.value_bytes)
        except LimitExceededError:
            keys, size = conn.execute(_USAGE, {"k_agent": w.agent_id, "now": now}).one()
            quota.check(MemoryUsage(keys, int(size), replaced), w.value_bytes)

    @threaded
    def get_memory(self, agent_id: str, scope: str, key: str, now: datetime) -> MemoryEntry | None:
        with self._read() as conn:
            row = conn.execute(
                _LIVE_ENTRY, {"k_agent": agent_id, "k_scope": scope, "k_key": key, "now": now}
            ).first()
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
        with self._write() as conn:
            removed = conn.execute(
                sa.delete(agent_memory)
                .where(col.agent_id == agent_id, col.scope == scope, col.key == key)
                .returning(col.agent_id, col.value_bytes)
            ).all()
            usage.release(conn, removed)
            if audit is not None:
                self._append_audit(conn, _sealed(audit, agent_id, scope, key, None))
        return bool(removed)

    @threaded
    def purge_expired_memory(self, now: datetime) -> int:
        col = agent_memory.c
        with self._write() as conn:
            removed = conn.execute(
                sa.delete(agent_memory)
                .where(col.expires_at.is_not(None), col.expires_at <= now)
                .returning(col.agent_id, col.value_bytes)
            ).all()
            usage.release(conn, removed)
            conn.execute(sa.delete(revoked_tokens).where(revoked_tokens.c.expires_at <= now))
            conn.execute(sa.delete(idempotency_keys).where(idempotency_keys.c.expires_at <= now))
            if removed:
                self._append_audit(conn, system_audit("memory.purged", now, count=len(removed)))
        return len(removed)
