"""The audit trail in storage: filters, the chain in batches, summaries, concurrent appends."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import anyio
import pytest
import sqlalchemy as sa

from shared_context_server.domain.audit import (
    GENESIS_HASH,
    AuditEvent,
    AuditQuery,
    AuditRecord,
    first_break,
)
from shared_context_server.errors import SessionNotFoundError
from shared_context_server.storage.sql_store import SqlStore
from shared_context_server.storage.store import SessionChanges
from shared_context_server.storage.tables import audit_log
from tests.storage.factories import at, make_session


def event(
    event_type: str = "message.added",
    agent_id: str = "alice",
    seconds: float = 0,
    session_id: str | None = "s1",
    **metadata: object,
) -> AuditEvent:
    return AuditEvent(
        event_type,
        agent_id,
        "claude",
        at(seconds),
        session_id=session_id,
        target="t",
        metadata=dict(metadata),
    )


async def whole_chain(store: SqlStore, batch: int = 1_000) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    while page := await store.audit_records(records[-1].id if records else 0, batch):
        records.extend(page)
    return records


async def test_appended_events_form_a_chain_that_verifies(store: SqlStore) -> None:
    for i in range(7):
        await store.append_audit(event(seconds=i, n=i, text="héllo"))
    records = await whole_chain(store, batch=3)
    assert [r.id for r in records] == list(range(1, 8))
    assert records[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in pairwise(records))
    assert records[2].metadata == {"n": 2, "text": "héllo"}
    assert records[2].created_at == at(2)
    assert first_break(records) is None


async def test_an_audit_record_is_written_with_its_change_or_not_at_all(store: SqlStore) -> None:
    session = make_session()
    await store.create_session(session, audit=event("session.created", session_id=session.id))
    with pytest.raises(SessionNotFoundError):
        await store.update_session(
            "session_missing",
            SessionChanges(purpose="x"),
            "alice",
            at(1),
            audit=event("session.updated", session_id="session_missing"),
        )
    assert [r.event_type for r in await whole_chain(store)] == ["session.created"]


async def test_the_log_is_filtered_newest_first_and_pages_backwards(store: SqlStore) -> None:
    await store.append_audit(event("session.created", "alice", 0, "s1"))
    await store.append_audit(event("message.added", "bob", 10, "s1"))
    await store.append_audit(event("message.added", "alice", 20, "s2"))
    await store.append_audit(event("memory.set", "alice", 30, None))
    await store.append_audit(event("message.added", "alice", 40, "s1"))

    async def ids(**filters: object) -> list[int]:
        return [r.id for r in await store.list_audit(AuditQuery(**filters))]  # type: ignore[arg-type]

    assert await ids() == [5, 4, 3, 2, 1]
    assert await ids(session_id="s1") == [5, 2, 1]
    assert await ids(agent_id="alice") == [5, 4, 3, 1]
    assert await ids(event_type="message.added") == [5, 3, 2]
    assert await ids(since=at(10), until=at(30)) == [4, 3, 2]
    assert await ids(agent_id="alice", session_id="s1", event_type="message.added") == [5]
    assert await ids(limit=2) == [5, 4]
    assert await ids(limit=2, before_id=4) == [3, 2]
    assert await ids(agent_id="nobody") == []


async def test_an_audited_read_records_itself_after_the_page_it_read(store: SqlStore) -> None:
    await store.append_audit(event())
    page = await store.list_audit(
        AuditQuery(), audit=event("audit.read", "root", 1, None, filters={})
    )
    assert [r.event_type for r in page] == ["message.added"]
    records = await whole_chain(store)
    assert [r.event_type for r in records] == ["message.added", "audit.read"]
    assert first_break(records) is None


async def test_activity_is_summarised_per_agent_within_the_window(store: SqlStore) -> None:
    await store.append_audit(event("auth.token_issued", "alice", 0, None))
    await store.append_audit(event("session.created", "alice", 5, "s1"))
    await store.append_audit(event("message.added", "alice", 6, "s1"))
    await store.append_audit(event("message.added", "alice", 7, "s2"))
    await store.append_audit(event("session.created", "bob", 8, "s3"))
    await store.append_audit(event("message.added", "bob", 100, "s3"))  # outside

    summary = await store.activity_summary(at(1), at(50))
    assert [a.agent_id for a in summary] == ["alice", "bob"]
    alice, bob = summary
    assert alice.event_count == 3
    assert alice.event_types == {"message.added": 2, "session.created": 1}
    assert (alice.sessions_touched, alice.sessions_created) == (2, 1)
    assert (alice.first_activity, alice.last_activity) == (at(5), at(7))
    assert alice.agent_types == ("claude",)
    assert (bob.event_count, bob.sessions_touched, bob.sessions_created) == (1, 1, 1)
    assert (bob.first_activity, bob.last_activity) == (at(8), at(8))

    only_bob = await store.activity_summary(at(0), None, agent_id="bob")
    assert [(a.agent_id, a.event_count) for a in only_bob] == [("bob", 2)]
    assert await store.activity_summary(at(1_000)) == []


async def test_many_concurrent_appends_still_form_one_valid_chain(
    open_store: Callable[[], SqlStore],
) -> None:
    stores = [open_store(), open_store(), open_store()]
    session = make_session()
    await stores[0].create_session(session)
    tasks, per_task = 12, 15

    async def append_many(store: SqlStore, task: int) -> None:
        for i in range(per_task):
            if i % 5 == 0:  # some records come with a state change in the same transaction
                await store.update_session(
                    session.id,
                    SessionChanges(purpose=f"{task}-{i}"),
                    f"agent{task}",
                    at(i),
                    audit=event("session.updated", f"agent{task}", i, session.id),
                )
            else:
                await store.append_audit(event("message.added", f"agent{task}", i, task=task))

    async with anyio.create_task_group() as tg:
        for task in range(tasks):
            tg.start_soon(append_many, stores[task % len(stores)], task)

    records = await whole_chain(stores[1], batch=50)
    assert len(records) == tasks * per_task
    assert [r.id for r in records] == list(range(1, tasks * per_task + 1))
    assert first_break(records) is None


async def test_an_edited_or_deleted_record_breaks_the_chain_there(store: SqlStore) -> None:
    for i in range(6):
        await store.append_audit(event(seconds=i, n=i))
    with store.engine.begin() as conn:
        conn.execute(sa.update(audit_log).where(audit_log.c.id == 3).values(agent_id="mallory"))
    broken = first_break(await whole_chain(store))
    assert broken is not None
    assert (broken.record_id, broken.reason) == (3, "its content was changed")

    with store.engine.begin() as conn:
        conn.execute(sa.update(audit_log).where(audit_log.c.id == 3).values(agent_id="alice"))
    assert first_break(await whole_chain(store)) is None
    with store.engine.begin() as conn:
        conn.execute(sa.delete(audit_log).where(audit_log.c.id == 4))
    broken = first_break(await whole_chain(store))
    assert broken is not None
    assert broken.record_id == 4
    assert "missing" in broken.reason
