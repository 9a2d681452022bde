"""Agent memory (``agent_memory``) and each agent's totals (``agent_usage``)."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from shared_context_server.domain.models import MemoryEntry
from shared_context_server.domain.quotas import MemoryTotals
from shared_context_server.storage.repositories.memory import MemoryQuery, MemoryWrite, StoredEntry
from shared_context_server.storage.sql.dialect import Dialect
from shared_context_server.storage.sql.repository import Repository
from shared_context_server.storage.sql.rows import memory_of
from shared_context_server.storage.tables import agent_memory, agent_usage


def _glob_to_like(glob: str) -> str:
    """``*`` and ``?`` as SQL LIKE wildcards; LIKE's own wildcards match literally."""
    escaped = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _not_expired(now: datetime | sa.BindParameter[datetime]) -> sa.ColumnElement[bool]:
    return sa.or_(agent_memory.c.expires_at.is_(None), agent_memory.c.expires_at > now)


# Built once: SQLAlchemy then skips rebuilding and re-keying them per call.
_c = agent_memory.c
_KEY = (
    _c.agent_id == sa.bindparam("k_agent"),
    _c.scope == sa.bindparam("k_scope"),
    _c.key == sa.bindparam("k_key"),
)
_NOW: sa.BindParameter[datetime] = sa.bindparam("now")
_DELETE_IF_EXPIRED = (
    sa.delete(agent_memory)
    .where(*_KEY, _c.expires_at.is_not(None), _c.expires_at <= _NOW)
    .returning(_c.value_bytes)
)
_DELETE = sa.delete(agent_memory).where(*_KEY).returning(_c.value_bytes)
_DELETE_EXPIRED = (
    sa.delete(agent_memory)
    .where(_c.expires_at.is_not(None), _c.expires_at <= _NOW)
    .returning(_c.agent_id, _c.value_bytes)
)
_STORED = sa.select(_c.version, _c.value_bytes).where(*_KEY)
_ENTRY = sa.select(agent_memory).where(*_KEY)
_LIVE_ENTRY = sa.select(agent_memory).where(*_KEY, _not_expired(_NOW))
_COUNT_LIVE = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(_c.value_bytes), 0)).where(
    _c.agent_id == sa.bindparam("k_agent"), _not_expired(_NOW)
)
_ROW_KEY = ("agent_id", "scope", "key")
_OVERWRITTEN = ("value", "metadata", "updated_at", "expires_at", "value_bytes")


# Built once per backend: the dialect writes the ON CONFLICT clauses.
@functools.lru_cache(maxsize=8)
def _upsert(dialect: Dialect) -> Any:
    return dialect.upsert(agent_memory, None, _ROW_KEY, _OVERWRITTEN, {"version": _c.version + 1})


@functools.lru_cache(maxsize=8)
def _insert_new(dialect: Dialect) -> Any:
    return dialect.insert_ignoring_conflict(agent_memory, None, _ROW_KEY)


@functools.lru_cache(maxsize=8)
def _add_to_totals(dialect: Dialect) -> Any:
    return dialect.accumulate(agent_usage, ["agent_id"], ["memory_keys", "memory_bytes"])


def _key(agent_id: str, scope: str, key: str) -> dict[str, str]:
    return {"k_agent": agent_id, "k_scope": scope, "k_key": key}


def _values(w: MemoryWrite, now: datetime) -> dict[str, Any]:
    return {
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


class SqlMemory(Repository):
    __slots__ = ()

    def get(self, agent_id: str, scope: str, key: str, now: datetime) -> MemoryEntry | None:
        row = self.conn.execute(_LIVE_ENTRY, {**_key(agent_id, scope, key), "now": now}).first()
        return memory_of(row) if row else None

    def stored(self, agent_id: str, scope: str, key: str) -> StoredEntry | None:
        row = self.conn.execute(_STORED, _key(agent_id, scope, key)).first()
        return None if row is None else StoredEntry(int(row.version), int(row.value_bytes))

    def delete_if_expired(self, agent_id: str, scope: str, key: str, now: datetime) -> int | None:
        params = {**_key(agent_id, scope, key), "now": now}
        size = self.conn.execute(_DELETE_IF_EXPIRED, params).scalar()
        return None if size is None else int(size)

    def upsert(self, write: MemoryWrite, now: datetime) -> tuple[MemoryEntry, dict[str, Any]]:
        self.conn.execute(_upsert(self.dialect), _values(write, now))
        return self._written(write)

    def insert(
        self, write: MemoryWrite, now: datetime
    ) -> tuple[MemoryEntry, dict[str, Any]] | None:
        if self.conn.execute(_insert_new(self.dialect), _values(write, now)).first() is None:
            return None
        return self._written(write)

    def _written(self, w: MemoryWrite) -> tuple[MemoryEntry, dict[str, Any]]:
        row = self.conn.execute(_ENTRY, _key(w.agent_id, w.scope, w.key)).one()
        return memory_of(row), dict(row._mapping)

    def delete(self, agent_id: str, scope: str, key: str) -> int | None:
        size = self.conn.execute(_DELETE, _key(agent_id, scope, key)).scalar()
        return None if size is None else int(size)

    def delete_expired(self, now: datetime) -> list[tuple[str, int]]:
        removed = self.conn.execute(_DELETE_EXPIRED, {"now": now})
        return [(str(agent_id), int(size)) for agent_id, size in removed]

    def add_to_totals(self, agent_id: str, change: MemoryTotals) -> MemoryTotals:
        values = {"agent_id": agent_id, "memory_keys": change.keys, "memory_bytes": change.bytes}
        row = self.conn.execute(_add_to_totals(self.dialect), values).one()
        return MemoryTotals(int(row.memory_keys), int(row.memory_bytes))

    def count_live(self, agent_id: str, now: datetime) -> MemoryTotals:
        keys, size = self.conn.execute(_COUNT_LIVE, {"k_agent": agent_id, "now": now}).one()
        return MemoryTotals(int(keys), int(size))

    def list(self, query: MemoryQuery, now: datetime) -> list[MemoryEntry]:
        statement = sa.select(agent_memory).where(_c.agent_id == query.agent_id, _not_expired(now))
        if query.scopes is not None:
            statement = statement.where(_c.scope.in_(query.scopes))
        if query.prefix:
            statement = statement.where(_c.key.startswith(query.prefix, autoescape=True))
        if query.glob is not None:
            statement = statement.where(_c.key.like(_glob_to_like(query.glob), escape="\\"))
        statement = statement.order_by(_c.scope, _c.key).limit(query.limit)
        return [memory_of(row) for row in self.conn.execute(statement)]
