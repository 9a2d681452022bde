"""The audit trail in storage: the keyed chain in batches, the digest of the row each
audited write leaves, verification from one snapshot, resealing an unkeyed chain, filters,
summaries, concurrent appends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from itertools import pairwise

import anyio
import pytest
import sqlalchemy as sa

from shared_context_server.clock import FakeClock
from shared_context_server.domain.audit import (
    GENESIS_HASH,
    HASH_VERSION,
    AuditEvent,
    AuditQuery,
    AuditRecord,
    legacy_record_hash,
    memory_entity_id,
    row_digest,
)
from shared_context_server.domain.audit_verify import ChainReport, first_break
from shared_context_server.domain.limits import Limits
from shared_context_server.domain.models import Visibility
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import SessionNotFoundError
from shared_context_server.services.audit import AuditService, verify_chain
from shared_context_server.storage.engine import create_engine
from shared_context_server.storage.repositories.memory import MemoryWrite
from shared_context_server.storage.repositories.sessions import SessionChanges
from shared_context_server.storage.sql.store import SqlStore
from shared_context_server.storage.store import Store
from shared_context_server.storage.tables import (
    agent_memory,
    audit_log,
    messages,
)
from tests.conftest import ADMIN
from tests.storage.conftest import TEST_AUDIT_KEY as KEY
from tests.storage.factories import (
    archive_inactive_sessions,
    at,
    change_visibility,
    create_session,
    make_session,
    new_message,
    post,
    update_session,
)
from tests.storage.memory_work import delete_memory, purge_expired_memory, set_memory


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


async def append(store: Store, event: AuditEvent) -> None:
    """Record an event that changes nothing else (a failed login, an admin read)."""
    await store.write(lambda tx: tx.audited(event))


async def records_after(store: Store, after_id: int, limit: int) -> list[AuditRecord]:
    return await store.read(lambda tx: tx.audit.after(after_id, limit))


async def whole_chain(store: Store, batch: int = 1_000) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    while page := await records_after(store, records[-1].id if records else 0, batch):
        records.extend(page)
    return records


async def head(store: Store) -> tuple[int, str] | None:
    return await store.read(lambda tx: tx.audit.head())


async def test_appended_events_form_a_chain_that_verifies(store: SqlStore) -> None:
    for i in range(7):
        await append(store, event(seconds=i, n=i, text="héllo"))
    records = await whole_chain(store, batch=3)
    assert [r.id for r in records] == list(range(1, 8))
    assert records[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in pairwise(records))
    assert records[2].metadata == {"n": 2, "text": "héllo"}
    assert records[2].created_at == at(2)
    assert first_break(records, KEY) is None


async def test_an_audit_record_is_written_with_its_change_or_not_at_all(store: SqlStore) -> None:
    session = make_session()
    await create_session(store, session, audit=event("session.created", session_id=session.id))
    with pytest.raises(SessionNotFoundError):
        await update_session(
            store,
            "session_missing",
            SessionChanges(purpose="x"),
            "alice",
            at(1),
            audit=event("session.updated", session_id="session_missing"),
        )
    assert [r.event_type for r in await whole_chain(store)] == ["session.created"]


async def test_the_log_is_filtered_newest_first_and_pages_backwards(store: SqlStore) -> None:
    await append(store, event("session.created", "alice", 0, "s1"))
    await append(store, event("message.added", "bob", 10, "s1"))
    await append(store, event("message.added", "alice", 20, "s2"))
    await append(store, event("memory.set", "alice", 30, None))
    await append(store, event("message.added", "alice", 40, "s1"))

    async def ids(**filters: object) -> list[int]:
        query = AuditQuery(**filters)  # type: ignore[arg-type]
        return [r.id for r in await store.read(lambda tx: tx.audit.page(query))]

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
    await append(store, event())
    service = AuditService(store, FakeClock(at(1)), Limits(), key=KEY)
    page = await service.get_log(Principal("root", "gemini", ADMIN))
    assert [r.event_type for r in page.records] == ["message.added"]
    records = await whole_chain(store)
    assert [r.event_type for r in records] == ["message.added", "audit.read"]
    assert first_break(records, KEY) is None


async def test_activity_is_summarised_per_agent_within_the_window(store: SqlStore) -> None:
    await append(store, event("auth.token_issued", "alice", 0, None))
    await append(store, event("session.created", "alice", 5, "s1"))
    await append(store, event("message.added", "alice", 6, "s1"))
    await append(store, event("message.added", "alice", 7, "s2"))
    await append(store, event("session.created", "bob", 8, "s3"))
    await append(store, event("message.added", "bob", 100, "s3"))  # outside

    summary = await store.read(lambda tx: tx.audit.activity(at(1), at(50), None))
    assert [a.agent_id for a in summary] == ["alice", "bob"]
    alice, bob = summary
    assert alice.event_count == 3
    assert alice.event_types == {"message.added": 2, "session.created": 1}
    assert (alice.sessions_touched, alice.sessions_created) == (2, 1)
    assert (alice.first_activity, alice.last_activity) == (at(5), at(7))
    assert alice.agent_types == ("claude",)
    assert (bob.event_count, bob.sessions_touched, bob.sessions_created) == (1, 1, 1)
    assert (bob.first_activity, bob.last_activity) == (at(8), at(8))

    only_bob = await store.read(lambda tx: tx.audit.activity(at(0), None, "bob"))
    assert [(a.agent_id, a.event_count) for a in only_bob] == [("bob", 2)]
    assert await store.read(lambda tx: tx.audit.activity(at(1_000), None, None)) == []


async def test_many_concurrent_appends_still_form_one_valid_chain(
    open_store: Callable[[], SqlStore],
) -> None:
    stores = [open_store(), open_store(), open_store()]
    session = make_session()
    await create_session(stores[0], session)
    tasks, per_task = 12, 15

    async def append_many(store: SqlStore, task: int) -> None:
        for i in range(per_task):
            if i % 5 == 0:  # some records come with a state change in the same transaction
                await update_session(
                    store,
                    session.id,
                    SessionChanges(purpose=f"{task}-{i}"),
                    f"agent{task}",
                    at(i),
                    audit=event("session.updated", f"agent{task}", i, session.id),
                )
            else:
                await append(store, event("message.added", f"agent{task}", i, task=task))

    async with anyio.create_task_group() as tg:
        for task in range(tasks):
            tg.start_soon(append_many, stores[task % len(stores)], task)

    records = await whole_chain(stores[1], batch=50)
    assert len(records) == tasks * per_task
    assert [r.id for r in records] == list(range(1, tasks * per_task + 1))
    assert first_break(records, KEY) is None


async def test_an_edited_or_deleted_record_breaks_the_chain_there(store: SqlStore) -> None:
    for i in range(6):
        await append(store, event(seconds=i, n=i))
    with store.engine.begin() as conn:
        conn.execute(sa.update(audit_log).where(audit_log.c.id == 3).values(agent_id="mallory"))
    broken = first_break(await whole_chain(store), KEY)
    assert broken is not None
    assert broken.record_id == 3
    assert broken.reason.startswith("its content was changed")

    with store.engine.begin() as conn:
        conn.execute(sa.update(audit_log).where(audit_log.c.id == 3).values(agent_id="alice"))
    assert first_break(await whole_chain(store), KEY) is None
    with store.engine.begin() as conn:
        conn.execute(sa.delete(audit_log).where(audit_log.c.id == 4))
    broken = first_break(await whole_chain(store), KEY)
    assert broken is not None
    assert broken.record_id == 4
    assert "missing" in broken.reason


async def verify(store: Store, now_seconds: float = 0) -> ChainReport:
    """The chain and every audited row, from one snapshot (the service's walk)."""
    return await verify_chain(store, KEY, at(now_seconds))


def audited(event_type: str, seconds: float = 0) -> AuditEvent:
    return event(event_type, seconds=seconds)


async def test_records_are_keyed_version_2_and_name_the_row_they_changed(
    store: SqlStore,
) -> None:
    session = make_session()
    await create_session(store, session, audit=audited("session.created"))
    message, _ = await post(
        store,
        new_message(session.id, "héllo", metadata={"b": [1, 2.5], "a": None}),
        at(1),
        audit=audited("message.added", 1),
    )
    (created, added) = await whole_chain(store)
    assert {created.hash_version, added.hash_version} == {HASH_VERSION}
    assert (created.entity, created.entity_id) == ("session", session.id)
    assert (added.entity, added.entity_id, added.target) == (
        "message",
        str(message.id),
        str(message.id),
    )
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(messages).where(messages.c.id == message.id)).one()
    assert added.digest == row_digest("message", row._mapping)
    # the unkeyed formula does not produce these hashes; a different key does not either
    assert added.hash != legacy_record_hash(added.id, added.event(), added.prev_hash)
    assert first_break(await whole_chain(store), b"another-key" * 4) is not None


async def test_a_store_without_the_key_cannot_append_records(database_url: str) -> None:
    keyless = SqlStore(create_engine(database_url))
    try:
        with pytest.raises(RuntimeError, match="no audit key"):
            await append(keyless, event())
        assert await records_after(keyless, 0, 10) == []
    finally:
        await keyless.close()


async def test_every_audited_write_leaves_a_digest_verify_finds_equal(store: SqlStore) -> None:
    session = make_session()
    await create_session(store, session, audit=audited("session.created"))
    await update_session(
        store,
        session.id,
        SessionChanges(purpose="renamed", metadata={"n": 1}),
        "alice",
        at(1),
        audit=audited("session.updated", 1),
    )
    first, _ = await post(store, new_message(session.id, "one"), at(2), audit=audited("m"))
    await post(
        store,
        new_message(session.id, "reply", parent_message_id=first.id, metadata={"x": "y"}),
        at(3),
        audit=audited("message.added", 3),
    )
    await change_visibility(
        store, first.id, Visibility.PRIVATE, "alice", "oops", at(4), audit=audited("visibility", 4)
    )
    write = MemoryWrite("alice", session.id, "plan/step", {"v": [1, "two"]}, {"m": True})
    await set_memory(store, write, at(5), audit=audited("memory.set", 5))
    await set_memory(
        store, MemoryWrite("alice", "", "gone", 1), at(6), audit=audited("memory.set", 6)
    )
    await delete_memory(store, "alice", "", "gone", audit=audited("memory.deleted", 7))
    other = make_session("bob")
    await create_session(store, other, audit=audited("session.created", 8))
    await archive_inactive_sessions(store, at(100), at(200))

    report = await verify(store, 300)
    assert report.intact, report.breaks
    assert report.rows_checked == 5  # two sessions, two messages, one memory entry
    records = await whole_chain(store)
    assert report.checked == len(records) == 11
    deleted = next(r for r in records if r.event_type == "memory.deleted")
    assert (deleted.entity_id, deleted.digest) == (memory_entity_id("alice", "", "gone"), None)
    archived = {r.entity_id for r in records if r.event_type == "session.archived"}
    assert archived == {session.id, other.id}


async def test_an_edited_row_differs_from_its_last_record(store: SqlStore) -> None:
    session = make_session()
    await create_session(store, session, audit=audited("session.created"))
    message, _ = await post(store, new_message(session.id), at(1), audit=audited("m"))
    await set_memory(store, MemoryWrite("alice", "", "k", 1), at(2), audit=audited("memory.set"))
    with store.engine.begin() as conn:
        conn.execute(sa.update(messages).values(content="forged"))
        conn.execute(sa.update(agent_memory).values(value=2))
    report = await verify(store)
    assert not report.intact
    assert {(b.entity, b.entity_id) for b in report.breaks} == {
        ("message", str(message.id)),
        ("memory", "alice//k"),
    }
    assert all("changed behind the server's back" in b.reason for b in report.breaks)


async def test_expired_memory_may_vanish_without_a_record_but_nothing_else_may(
    store: SqlStore,
) -> None:
    expiring = MemoryWrite("alice", "", "short", 1, expires_at=at(60))
    await set_memory(store, expiring, at(0), audit=audited("memory.set"))
    await set_memory(store, MemoryWrite("alice", "", "kept", 1), at(0), audit=audited("memory.set"))
    assert await purge_expired_memory(store, at(61)) == 1
    assert (await verify(store, 61)).intact
    # the record says the entry expired at 60: before then it could not have been purged
    report = await verify(store, 30)
    assert [(b.entity_id, b.reason) for b in report.breaks] == [
        ("alice//short", "is missing: deleted behind the server's back")
    ]
    with store.engine.begin() as conn:
        conn.execute(sa.delete(agent_memory).where(agent_memory.c.key == "kept"))
    assert [b.entity_id for b in (await verify(store, 61)).breaks] == ["alice//kept"]


async def test_verification_reads_one_snapshot_while_others_write(
    open_store: Callable[[], SqlStore],
) -> None:
    writer, checker = open_store(), open_store()
    session = make_session()
    await create_session(writer, session, audit=audited("session.created"))
    reports: list[ChainReport] = []

    async def write() -> None:
        for i in range(60):
            await post(writer, new_message(session.id, f"m{i}"), at(i), audit=audited("m"))

    async def check() -> None:
        for _ in range(6):
            reports.append(await verify(checker, 100))

    async with anyio.create_task_group() as tg:
        tg.start_soon(write)
        tg.start_soon(check)
    assert [r.breaks for r in reports if not r.intact] == []
    assert (await verify(checker, 100)).rows_checked == 61


async def test_the_head_is_the_newest_record(store: SqlStore) -> None:
    assert await head(store) is None
    await append(store, event())
    await append(store, event(seconds=1))
    records = await whole_chain(store)
    assert await head(store) == (2, records[-1].hash)
    assert timedelta(0) < records[-1].created_at - records[0].created_at
