"""Store contract for the per-agent quotas: counts are taken inside the write transaction,
an agent's memory totals stay exact through every kind of write, and migration 0005
starts them from what is stored."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

import anyio
import pytest
import sqlalchemy as sa

from shared_context_server.clock import FakeClock
from shared_context_server.domain.limits import Limits
from shared_context_server.domain.models import Permission, SessionStatus
from shared_context_server.domain.principal import Principal
from shared_context_server.domain.quotas import MemoryQuota, Quota, Quotas
from shared_context_server.errors import LimitExceededError
from shared_context_server.events.bus import InProcessBus
from shared_context_server.services.sessions import SessionService
from shared_context_server.storage import migrate
from shared_context_server.storage.engine import create_engine
from shared_context_server.storage.repositories.memory import MemoryWrite
from shared_context_server.storage.sql.store import SqlStore
from shared_context_server.storage.tables import UtcDateTime, agent_usage
from tests.storage.factories import T0, at
from tests.storage.memory_work import delete_memory, get_memory, purge_expired_memory, set_memory


def _write(key: str, size: int, expires_at: datetime | None = None) -> MemoryWrite:
    return MemoryWrite("alice", "", key, "v", expires_at=expires_at, value_bytes=size)


def _quota(keys: int = 100, size: int = 10_000) -> MemoryQuota:
    return MemoryQuota(
        Quota("memory_keys_per_agent", "alice", keys),
        Quota("memory_bytes_per_agent", "alice", size),
    )


async def _totals(store: SqlStore, agent_id: str = "alice") -> tuple[int, int]:
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(agent_usage.c.memory_keys, agent_usage.c.memory_bytes).where(
                agent_usage.c.agent_id == agent_id
            )
        ).first()
    return (0, 0) if row is None else (row.memory_keys, row.memory_bytes)


async def test_memory_totals_follow_every_write_overwrite_delete_and_purge(
    store: SqlStore,
) -> None:
    await set_memory(store, _write("a", 10), T0)
    await set_memory(store, _write("b", 20, expires_at=at(60)), T0)
    assert await _totals(store) == (2, 30)
    await set_memory(store, _write("a", 15), at(1))  # overwrite: bytes change, keys do not
    assert await _totals(store) == (2, 35)
    assert await delete_memory(store, "alice", "", "a")
    assert not await delete_memory(store, "alice", "", "a")
    assert await _totals(store) == (1, 20)
    await set_memory(store, _write("b", 5), at(61))  # the expired entry gives way
    assert await _totals(store) == (1, 5)
    await set_memory(store, _write("c", 7, expires_at=at(100)), at(61))
    assert await purge_expired_memory(store, at(101)) == 1
    assert await _totals(store) == (1, 5)
    assert await _totals(store, "bob") == (0, 0)


async def test_a_memory_write_over_a_quota_changes_nothing(store: SqlStore) -> None:
    await set_memory(store, _write("a", 60), T0, quota=_quota(size=100))
    with pytest.raises(LimitExceededError) as refused:
        await set_memory(store, _write("b", 50), T0, quota=_quota(size=100))
    assert refused.value.details == {"quota": "memory_bytes_per_agent", "limit": 100, "current": 60}
    with pytest.raises(LimitExceededError):
        await set_memory(store, _write("b", 1), T0, quota=_quota(keys=1))
    assert await _totals(store) == (1, 60)
    assert await get_memory(store, "alice", "", "b", T0) is None


async def test_expired_entries_the_sweep_has_not_removed_do_not_count(store: SqlStore) -> None:
    await set_memory(store, _write("brief", 90, expires_at=at(10)), T0, quota=_quota(size=100))
    # The totals still hold the expired entry; the check counts exactly and lets this pass.
    await set_memory(store, _write("next", 90), at(11), quota=_quota(size=100))
    with pytest.raises(LimitExceededError) as refused:
        await set_memory(store, _write("more", 20), at(12), quota=_quota(size=100))
    assert refused.value.details["current"] == 90


async def test_open_sessions_are_counted_inside_the_creating_transaction(store: SqlStore) -> None:
    # The session service's own use cases, on this database: the count is its quota check.
    sessions = SessionService(
        store, InProcessBus(), FakeClock(T0), Limits(), Quotas(sessions_per_agent=2)
    )
    alice = Principal("alice", "claude", frozenset({Permission.READ, Permission.WRITE}))
    bob = Principal("bob", "claude", alice.permissions)
    first = await sessions.create(alice, "one")
    done = await sessions.create(alice, "two")
    await sessions.update(alice, done.id, status=SessionStatus.COMPLETED)
    await sessions.create(bob, "bob's are not alice's")
    with pytest.raises(LimitExceededError) as refused:
        await sessions.create(alice, "three")
    assert refused.value.details == {"quota": "sessions_per_agent", "limit": 2, "current": 2}
    await sessions.update(alice, first.id, status=SessionStatus.ARCHIVED)
    await sessions.create(alice, "three")


async def test_migration_0005_totals_the_memory_already_stored(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    try:
        migrate.upgrade(engine, "0004")
        memory = sa.table(
            "agent_memory",
            *(sa.column(n) for n in ("agent_id", "scope", "key", "value_bytes", "version")),
            sa.column("value", sa.JSON),
            sa.column("metadata", sa.JSON),
            sa.column("created_at", UtcDateTime),
            sa.column("updated_at", UtcDateTime),
        )
        rows = [("alice", "a", 10), ("alice", "b", 5), ("bob", "a", 7)]
        with engine.begin() as conn:
            for agent_id, key, size in rows:
                conn.execute(
                    sa.insert(memory).values(
                        agent_id=agent_id,
                        scope="",
                        key=key,
                        value="v",
                        metadata={},
                        created_at=T0,
                        updated_at=T0,
                        value_bytes=size,
                        version=1,
                    )
                )
        migrate.upgrade(engine)
        store = SqlStore(engine)
        assert await _totals(store) == (2, 15)
        assert await _totals(store, "bob") == (1, 7)
    finally:
        engine.dispose()


async def _successes(attempt: Callable[[int], Awaitable[object]], attempts: int = 24) -> int:
    """Run ``attempts`` at once; how many were not refused over a quota."""
    outcomes: list[bool] = []

    async def run(n: int) -> None:
        try:
            await attempt(n)
            outcomes.append(True)
        except LimitExceededError:
            outcomes.append(False)

    async with anyio.create_task_group() as tg:
        for n in range(attempts):
            tg.start_soon(run, n)
    return outcomes.count(True)


async def test_concurrent_memory_writes_of_one_agent_never_overshoot_its_quota(
    open_store: Callable[[], SqlStore],
) -> None:
    stores = [open_store() for _ in range(4)]  # separate engines, as separate processes

    async def write(n: int) -> object:
        return await set_memory(stores[n % 4], _write(f"k{n}", 1), T0, quota=_quota(keys=5))

    assert await _successes(write) == 5
    assert await _totals(stores[0]) == (5, 5)


async def test_concurrent_session_creates_of_one_agent_never_overshoot_its_quota(
    open_store: Callable[[], SqlStore],
) -> None:
    stores = [open_store() for _ in range(4)]  # separate engines, as separate processes
    alice = Principal("alice", "claude", frozenset({Permission.READ, Permission.WRITE}))
    services = [
        SessionService(store, InProcessBus(), FakeClock(T0), Limits(), Quotas(sessions_per_agent=5))
        for store in stores
    ]

    async def create(n: int) -> object:
        return await services[n % 4].create(alice, f"session {n}")

    assert await _successes(create) == 5
