"""The memory service's units of work, run on a store as the storage tests call them."""

from __future__ import annotations

from datetime import datetime

from shared_context_server.domain.audit import AuditEvent
from shared_context_server.domain.models import MemoryEntry
from shared_context_server.domain.quotas import MemoryQuota
from shared_context_server.services.memory import delete_entry, purge_expired, set_entry
from shared_context_server.storage.repositories.memory import MemoryQuery, MemoryWrite
from shared_context_server.storage.store import Store


async def set_memory(
    store: Store,
    write: MemoryWrite,
    now: datetime,
    *,
    audit: AuditEvent | None = None,
    quota: MemoryQuota | None = None,
) -> MemoryEntry:
    """A write in the memory service's unit of work (every storage-side rule of it:
    session, version, quota, idempotency)."""
    written = await store.write(lambda tx: set_entry(tx, write, now, audit=audit, quota=quota))
    return written.value


async def get_memory(
    store: Store, agent_id: str, scope: str, key: str, now: datetime
) -> MemoryEntry | None:
    return await store.read(lambda tx: tx.memory.get(agent_id, scope, key, now))


async def list_memory(
    store: Store,
    agent_id: str,
    scope: str | None,
    prefix: str,
    now: datetime,
    limit: int,
    *,
    glob: str | None = None,
) -> list[MemoryEntry]:
    query = MemoryQuery(agent_id, None if scope is None else (scope,), prefix, glob, limit)
    return await store.read(lambda tx: tx.memory.list(query, now))


async def delete_memory(
    store: Store, agent_id: str, scope: str, key: str, *, audit: AuditEvent | None = None
) -> bool:
    deleted = await store.write(lambda tx: delete_entry(tx, agent_id, scope, key, audit=audit))
    return deleted.value


async def purge_expired_memory(store: Store, now: datetime) -> int:
    """The maintenance sweep's unit of work: how many expired entries it removed."""
    return (await store.write(lambda tx: purge_expired(tx, now))).value
