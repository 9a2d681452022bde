"""Store contract: idempotent replays, memory versions, visibility changes (both backends)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared_context_server.domain.events import EventKind
from shared_context_server.domain.models import NewMessage, Session, SessionStatus, Visibility
from shared_context_server.errors import ConflictError
from shared_context_server.storage.repositories.memory import MemoryWrite
from shared_context_server.storage.sql.store import SqlStore
from tests.storage.factories import change_visibility, create_session, get_message, post
from tests.storage.memory_work import set_memory

T0 = datetime(2026, 3, 1, tzinfo=UTC)


async def _session(store: SqlStore) -> str:
    session = Session("s-1", "p", "alice", SessionStatus.ACTIVE, {}, T0, T0, T0)
    await create_session(store, session)
    return session.id


async def test_a_replayed_message_is_the_first_one_and_has_no_event(store: SqlStore) -> None:
    session_id = await _session(store)
    new = NewMessage(session_id, "alice", "claude", "hi", Visibility.PUBLIC, idempotency_key="k")
    first, event = await post(store, new, T0)
    again, replay_event = await post(store, new, T0 + timedelta(seconds=5))
    assert again == first
    assert event is not None
    assert replay_event is None
    with pytest.raises(ConflictError):
        await post(
            store,
            NewMessage(
                session_id, "alice", "claude", "other", Visibility.PUBLIC, idempotency_key="k"
            ),
            T0,
        )
    # After the window the key may be used afresh.
    later, later_event = await post(store, new, T0 + timedelta(days=2))
    assert later.id != first.id
    assert later_event is not None


async def test_memory_versions_count_writes_and_guard_updates(store: SqlStore) -> None:
    write = MemoryWrite("alice", "", "k", 1)
    assert (await set_memory(store, write, T0)).version == 1
    assert (await set_memory(store, MemoryWrite("alice", "", "k", 2), T0)).version == 2
    with pytest.raises(ConflictError):
        await set_memory(store, MemoryWrite("alice", "", "k", 3, expected_version=1), T0)
    guarded = await set_memory(store, MemoryWrite("alice", "", "k", 3, expected_version=2), T0)
    assert (guarded.value, guarded.version) == (3, 3)
    fresh = await set_memory(store, MemoryWrite("alice", "", "new", 1, expected_version=0), T0)
    assert fresh.version == 1


async def test_a_replayed_memory_write_returns_the_recorded_entry(store: SqlStore) -> None:
    write = MemoryWrite("alice", "", "k", {"a": 1}, idempotency_key="op")
    first = await set_memory(store, write, T0)
    await set_memory(store, MemoryWrite("alice", "", "k", "changed"), T0)
    assert await set_memory(store, write, T0 + timedelta(minutes=1)) == first


async def test_a_visibility_change_is_stored_and_fed(store: SqlStore) -> None:
    session_id = await _session(store)
    message, _ = await post(
        store, NewMessage(session_id, "alice", "claude", "hi", Visibility.PUBLIC), T0
    )
    changed, event = await change_visibility(
        store, message.id, Visibility.PRIVATE, "alice", "oops", T0
    )
    assert changed.visibility is Visibility.PRIVATE
    assert (await get_message(store, message.id)) == changed
    assert event.kind is EventKind.VISIBILITY_CHANGED
    assert event.payload["old_visibility"] == "public"
    fed = await store.read(lambda tx: tx.feed.after(event.id - 1, 10))
    assert fed[0].payload["reason"] == "oops"
