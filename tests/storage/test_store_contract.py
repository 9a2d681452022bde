"""The Store contract: every implementation, on every backend, behaves like this."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from shared_context_server.domain.access import ReadScope
from shared_context_server.domain.audit import system_audit
from shared_context_server.domain.events import EventKind
from shared_context_server.domain.memory import GLOBAL_SCOPE
from shared_context_server.domain.models import (
    SessionStatus,
    Visibility,
)
from shared_context_server.errors import (
    ConflictError,
    InvalidParentError,
    KeyExistsError,
    SessionNotFoundError,
)
from shared_context_server.services.auth import revoke_token
from shared_context_server.storage.repositories.memory import MemoryWrite
from shared_context_server.storage.repositories.messages import MessageQuery
from shared_context_server.storage.repositories.sessions import SessionChanges, SessionQuery
from shared_context_server.storage.sql.store import SqlStore
from tests.storage.factories import (
    T0,
    archive_inactive_sessions,
    at,
    create_session,
    get_message,
    get_session,
    latest_feed_id,
    list_messages,
    list_sessions,
    make_session,
    new_message,
    post,
    read_feed,
    read_updates,
    update_session,
)
from tests.storage.memory_work import (
    delete_memory,
    get_memory,
    list_memory,
    purge_expired_memory,
    set_memory,
)

EVERYONE = ReadScope("alice", "claude", admin=True)


async def _ids(store: SqlStore, session_id: str, **query: Any) -> list[int]:
    query.setdefault("scope", EVERYONE)
    rows = await list_messages(store, MessageQuery(session_id=session_id, **query))
    return [m.id for m in rows]


# sessions -------------------------------------------------------------------------------


async def test_a_created_session_reads_back_equal(store: SqlStore) -> None:
    session = make_session(metadata={"repo": "x", "nested": {"n": [1, 2.5, None, True]}})
    created, _ = await create_session(store, session)
    assert created == session
    fetched = await get_session(store, session.id)
    assert fetched == session
    assert fetched is not None
    assert fetched.created_at.tzinfo is not None
    assert fetched.created_at.microsecond == T0.microsecond


async def test_creating_a_session_writes_a_session_created_event(store: SqlStore) -> None:
    session = make_session("bob")
    _, event = await create_session(store, session)
    assert event.kind is EventKind.SESSION_CREATED
    assert (event.session_id, event.agent_id, event.origin) == (session.id, "bob", store.origin)
    assert event.message_id is None
    assert event.visibility is None
    assert await read_feed(store, 0, 10) == [event]


async def test_an_unknown_session_is_none(store: SqlStore) -> None:
    assert await get_session(store, "session_missing") is None


async def test_a_duplicate_session_id_is_refused_without_a_feed_row(store: SqlStore) -> None:
    session = make_session()
    await create_session(store, session)
    with pytest.raises(ConflictError):
        await create_session(store, session)
    assert len(await read_feed(store, 0, 10)) == 1


async def test_sessions_are_listed_by_status(store: SqlStore) -> None:
    active = make_session()
    done = make_session(status=SessionStatus.COMPLETED)
    await create_session(store, active)
    await create_session(store, done)
    listed = await list_sessions(store, SessionQuery(status=SessionStatus.COMPLETED))
    assert [s.id for s in listed] == [done.id]
    assert {s.id for s in await list_sessions(store, SessionQuery())} == {active.id, done.id}


async def test_sessions_are_listed_by_creator(store: SqlStore) -> None:
    mine = make_session("alice")
    await create_session(store, mine)
    await create_session(store, make_session("bob"))
    listed = await list_sessions(store, SessionQuery(created_by="alice"))
    assert [s.id for s in listed] == [mine.id]


async def test_sessions_involving_an_agent_are_those_it_created_or_posted_in(
    store: SqlStore,
) -> None:
    created = make_session("alice")
    posted_in = make_session("bob")
    untouched = make_session("bob")
    for session in (created, posted_in, untouched):
        await create_session(store, session)
    await post(store, new_message(posted_in.id, sender="alice"), at(1))
    await post(store, new_message(posted_in.id, sender="alice"), at(2))
    await post(store, new_message(untouched.id, sender="bob"), at(3))
    listed = await list_sessions(store, SessionQuery(involving="alice"))
    assert sorted(s.id for s in listed) == sorted([created.id, posted_in.id])


async def test_sessions_are_listed_most_recently_active_first_and_paged(store: SqlStore) -> None:
    sessions = [make_session(now=at(i)) for i in range(5)]
    for session in sessions:
        await create_session(store, session)
    # Activity in the oldest session makes it the most recent.
    await post(store, new_message(sessions[0].id), at(100))
    expected = [sessions[0].id] + [s.id for s in reversed(sessions[1:])]
    assert [s.id for s in await list_sessions(store, SessionQuery())] == expected
    page = await list_sessions(store, SessionQuery(limit=2, offset=1))
    assert [s.id for s in page] == expected[1:3]


async def test_updating_a_session_changes_only_the_given_fields(store: SqlStore) -> None:
    session = make_session(purpose="old", metadata={"a": 1})
    await create_session(store, session)
    updated, event = await update_session(
        store, session.id, SessionChanges(status=SessionStatus.COMPLETED), "bob", at(10)
    )
    assert updated.status is SessionStatus.COMPLETED
    assert (updated.purpose, updated.metadata) == ("old", {"a": 1})
    assert updated.created_at == T0
    assert updated.updated_at == updated.last_activity_at == at(10)
    assert (event.kind, event.session_id, event.agent_id) == (
        EventKind.SESSION_UPDATED,
        session.id,
        "bob",
    )
    updated, _ = await update_session(
        store, session.id, SessionChanges(purpose="new", metadata={"b": [2]}), "bob", at(20)
    )
    assert (updated.status, updated.purpose, updated.metadata) == (
        SessionStatus.COMPLETED,
        "new",
        {"b": [2]},
    )
    assert await get_session(store, session.id) == updated


async def test_updating_an_unknown_session_fails_and_writes_no_feed_row(store: SqlStore) -> None:
    with pytest.raises(SessionNotFoundError):
        await update_session(store, "session_missing", SessionChanges(purpose="x"), "bob", T0)
    assert await latest_feed_id(store) == 0


async def test_archiving_inactive_sessions_touches_only_the_stale_ones(store: SqlStore) -> None:
    stale = make_session(now=at(0))
    stale_completed = make_session(now=at(0), status=SessionStatus.COMPLETED)
    already = make_session(now=at(0), status=SessionStatus.ARCHIVED)
    fresh = make_session(now=at(0))
    for session in (stale, stale_completed, already, fresh):
        await create_session(store, session)
    await post(store, new_message(fresh.id), at(500))
    before = await latest_feed_id(store)

    events = await archive_inactive_sessions(store, before=at(100), now=at(1000))

    assert sorted(e.session_id for e in events) == sorted([stale.id, stale_completed.id])
    assert all(e.kind is EventKind.SESSION_UPDATED and e.agent_id == "system" for e in events)
    assert await read_feed(store, before, 10) == sorted(events, key=lambda e: e.id)
    for session in (stale, stale_completed):
        archived = await get_session(store, session.id)
        assert archived is not None
        assert archived.status is SessionStatus.ARCHIVED
        assert archived.updated_at == at(1000)
    fresh_now = await get_session(store, fresh.id)
    assert fresh_now is not None
    assert fresh_now.status is SessionStatus.ACTIVE
    assert await archive_inactive_sessions(store, before=at(100), now=at(2000)) == []


# messages -------------------------------------------------------------------------------


async def test_an_added_message_reads_back_equal(store: SqlStore) -> None:
    session = make_session()
    await create_session(store, session)
    new = new_message(
        session.id,
        "found it ünïcode ✓",
        sender="carol",
        sender_type="gemini",
        visibility=Visibility.AGENT_ONLY,
        message_type="finding",
        metadata={"file": "a.py", "lines": [1, 2]},
    )
    message, event = await post(store, new, at(1.5))
    assert message.id > 0
    assert (message.sender, message.sender_type, message.content) == (
        "carol",
        "gemini",
        "found it ünïcode ✓",
    )
    assert (message.visibility, message.message_type) == (Visibility.AGENT_ONLY, "finding")
    assert message.metadata == {"file": "a.py", "lines": [1, 2]}
    assert message.created_at == at(1.5)
    assert await get_message(store, message.id) == message
    assert event.kind is EventKind.MESSAGE_ADDED
    assert (event.message_id, event.sender_type, event.visibility, event.agent_id) == (
        message.id,
        "gemini",
        Visibility.AGENT_ONLY,
        "carol",
    )
    assert await store.read(lambda tx: tx.feed.after(event.id - 1, 10)) == [event]


async def test_adding_a_message_marks_the_session_active(store: SqlStore) -> None:
    session = make_session()
    await create_session(store, session)
    await post(store, new_message(session.id), at(42))
    touched = await get_session(store, session.id)
    assert touched is not None
    assert touched.last_activity_at == at(42)


async def test_message_ids_grow_with_every_add(store: SqlStore) -> None:
    session = make_session()
    await create_session(store, session)
    ids = [(await post(store, new_message(session.id), at(i)))[0].id for i in range(5)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 5


async def test_a_message_to_an_unknown_session_is_refused_and_nothing_is_written(
    store: SqlStore,
) -> None:
    with pytest.raises(SessionNotFoundError):
        await post(store, new_message("session_missing"), T0)
    assert await get_message(store, 1) is None
    assert await store.read(lambda tx: tx.feed.latest_id()) == 0


async def test_a_reply_to_a_message_of_another_session_is_refused_and_nothing_is_written(
    store: SqlStore,
) -> None:
    here, there = make_session(), make_session()
    await create_session(store, here)
    await create_session(store, there)
    foreign, _ = await post(store, new_message(there.id), at(1))
    feed_before = await store.read(lambda tx: tx.feed.latest_id())

    with pytest.raises(InvalidParentError):
        await post(store, new_message(here.id, parent_message_id=foreign.id), at(50))

    assert await _ids(store, here.id) == []
    assert await store.read(lambda tx: tx.feed.latest_id()) == feed_before
    untouched = await get_session(store, here.id)
    assert untouched is not None
    assert untouched.last_activity_at == T0  # the activity bump was rolled back too


async def test_a_reply_to_a_missing_message_is_refused(store: SqlStore) -> None:
    session = make_session()
    await create_session(store, session)
    with pytest.raises(InvalidParentError):
        await post(store, new_message(session.id, parent_message_id=999_999), at(1))
    assert await _ids(store, session.id) == []


async def test_a_reply_in_the_same_session_keeps_its_parent(store: SqlStore) -> None:
    session = make_session()
    await create_session(store, session)
    parent, _ = await post(store, new_message(session.id), at(1))
    reply, _ = await post(store, new_message(session.id, parent_message_id=parent.id), at(2))
    fetched = await get_message(store, reply.id)
    assert fetched is not None
    assert fetched.parent_message_id == parent.id


async def test_an_unknown_message_is_none(store: SqlStore) -> None:
    assert await get_message(store, 123_456) is None


@pytest.fixture
async def populated(store: SqlStore) -> dict[str, Any]:
    """Two sessions; the first with messages of every sender, type and visibility."""
    session, other = make_session(), make_session()
    await create_session(store, session)
    await create_session(store, other)
    posted = []
    senders = [("alice", "claude"), ("bob", "claude"), ("carol", "gemini")]
    i = 0
    for visibility in Visibility:
        for sender, sender_type in senders:
            i += 1
            message, _ = await post(
                store,
                new_message(
                    session.id,
                    f"m{i}",
                    sender=sender,
                    sender_type=sender_type,
                    visibility=visibility,
                    message_type="note" if i % 2 else "message",
                ),
                at(i),
            )
            posted.append(message)
    await post(store, new_message(other.id, "elsewhere"), at(100))
    # "messages": what EVERYONE (the default reader of these tests) may see.
    return {
        "session": session,
        "all": posted,
        "messages": [m for m in posted if EVERYONE.allows(m)],
    }


async def test_listing_returns_only_the_sessions_messages_oldest_first(
    store: SqlStore, populated: dict[str, Any]
) -> None:
    expected = [m.id for m in populated["messages"]]
    assert len(expected) == 9
    assert await _ids(store, populated["session"].id) == expected


@pytest.mark.parametrize(
    "scope",
    [
        ReadScope("alice", "claude", admin=False),
        ReadScope("alice", "claude", admin=False, include_private=False),
        ReadScope("carol", "gemini", admin=True),
        ReadScope("dave", "codex", admin=False),
    ],
    ids=["alice", "alice-no-private", "carol-admin", "stranger"],
)
async def test_listing_applies_the_read_scope(
    store: SqlStore, populated: dict[str, Any], scope: ReadScope
) -> None:
    expected = [m.id for m in populated["all"] if scope.allows(m)]
    assert await _ids(store, populated["session"].id, scope=scope) == expected


async def test_listing_filters_by_sender(store: SqlStore, populated: dict[str, Any]) -> None:
    expected = [m.id for m in populated["messages"] if m.sender in ("bob", "carol")]
    assert await _ids(store, populated["session"].id, senders=["bob", "carol"]) == expected


async def test_listing_filters_by_message_type(store: SqlStore, populated: dict[str, Any]) -> None:
    expected = [m.id for m in populated["messages"] if m.message_type == "note"]
    assert await _ids(store, populated["session"].id, message_type="note") == expected


async def test_listing_filters_by_visibility(store: SqlStore, populated: dict[str, Any]) -> None:
    wanted = (Visibility.PRIVATE, Visibility.ADMIN_ONLY)
    expected = [m.id for m in populated["messages"] if m.visibility in wanted]
    assert await _ids(store, populated["session"].id, visibilities=wanted) == expected


async def test_listing_filters_by_time_range_inclusively(
    store: SqlStore, populated: dict[str, Any]
) -> None:
    expected = [m.id for m in populated["messages"] if at(2) <= m.created_at <= at(8)]
    assert 0 < len(expected) < len(populated["messages"])
    assert await _ids(store, populated["session"].id, since=at(2), until=at(8)) == expected


async def test_listing_after_a_cursor_returns_only_newer_messages(
    store: SqlStore, populated: dict[str, Any]
) -> None:
    ids = [m.id for m in populated["messages"]]
    assert await _ids(store, populated["session"].id, after_id=ids[4], limit=3) == ids[5:8]
    assert await _ids(store, populated["session"].id, after_id=ids[-1]) == []


async def test_listing_newest_first_with_offset_and_limit(
    store: SqlStore, populated: dict[str, Any]
) -> None:
    ids = [m.id for m in populated["messages"]]
    newest = list(reversed(ids))
    assert await _ids(store, populated["session"].id, newest_first=True) == newest
    assert (
        await _ids(store, populated["session"].id, newest_first=True, offset=2, limit=3)
        == (newest[2:5])
    )
    assert await _ids(store, populated["session"].id, offset=5, limit=100) == ids[5:]


async def test_listing_combines_filters(store: SqlStore, populated: dict[str, Any]) -> None:
    scope = ReadScope("alice", "claude", admin=False)
    expected = [
        m.id
        for m in populated["messages"]
        if scope.allows(m) and m.sender == "alice" and m.message_type == "note"
    ]
    got = await _ids(
        store, populated["session"].id, scope=scope, senders=["alice"], message_type="note"
    )
    assert got == expected


# memory ---------------------------------------------------------------------------------


def _write(key: str = "k", value: Any = "v", **changes: Any) -> MemoryWrite:
    return replace(
        MemoryWrite(agent_id="alice", scope=GLOBAL_SCOPE, key=key, value=value), **changes
    )


@pytest.mark.parametrize(
    "value",
    ["text", 42, 2.5, True, None, [1, "two", None], {"deep": {"er": [{"x": 1}]}}],
    ids=["str", "int", "float", "bool", "null", "list", "object"],
)
async def test_any_json_value_is_kept_in_memory(store: SqlStore, value: Any) -> None:
    entry = await set_memory(store, _write(value=value, metadata={"m": 1}), T0)
    assert (entry.agent_id, entry.session_id, entry.key, entry.value) == ("alice", None, "k", value)
    assert entry.metadata == {"m": 1}
    assert entry.created_at == entry.updated_at == T0
    assert entry.expires_at is None
    assert await get_memory(store, "alice", GLOBAL_SCOPE, "k", at(1)) == entry


async def test_session_memory_needs_an_existing_session(store: SqlStore) -> None:
    with pytest.raises(SessionNotFoundError):
        await set_memory(store, _write(scope="session_missing"), T0)


async def test_global_and_session_memory_are_separate(store: SqlStore) -> None:
    session = make_session()
    await create_session(store, session)
    await set_memory(store, _write(value="global"), T0)
    entry = await set_memory(store, _write(value="local", scope=session.id), T0)
    assert entry.session_id == session.id
    got_global = await get_memory(store, "alice", GLOBAL_SCOPE, "k", T0)
    got_local = await get_memory(store, "alice", session.id, "k", T0)
    assert got_global is not None
    assert got_local is not None
    assert (got_global.value, got_local.value) == ("global", "local")


async def test_memory_belongs_to_its_agent(store: SqlStore) -> None:
    await set_memory(store, _write(), T0)
    assert await get_memory(store, "bob", GLOBAL_SCOPE, "k", T0) is None
    assert await list_memory(store, "bob", None, "", T0, 100) == []
    assert await delete_memory(store, "bob", GLOBAL_SCOPE, "k") is False
    assert await get_memory(store, "alice", GLOBAL_SCOPE, "k", T0) is not None


async def test_overwriting_memory_replaces_value_and_keeps_creation_time(store: SqlStore) -> None:
    await set_memory(store, _write(value=1, metadata={"v": 1}, expires_at=at(10)), T0)
    entry = await set_memory(store, _write(value=2, metadata={"v": 2}), at(5))
    assert (entry.value, entry.metadata, entry.expires_at) == (2, {"v": 2}, None)
    assert (entry.created_at, entry.updated_at) == (T0, at(5))


async def test_writing_an_existing_key_without_overwrite_is_refused(store: SqlStore) -> None:
    await set_memory(store, _write(value="first"), T0)
    with pytest.raises(KeyExistsError):
        await set_memory(store, _write(value="second", overwrite=False), at(1))
    entry = await get_memory(store, "alice", GLOBAL_SCOPE, "k", at(1))
    assert entry is not None
    assert entry.value == "first"


async def test_an_expired_key_may_be_written_without_overwrite(store: SqlStore) -> None:
    await set_memory(store, _write(value="old", expires_at=at(10)), T0)
    entry = await set_memory(store, _write(value="new", overwrite=False), at(10))
    assert (entry.value, entry.created_at, entry.expires_at) == ("new", at(10), None)


async def test_expired_memory_is_invisible_from_the_moment_it_expires(store: SqlStore) -> None:
    await set_memory(store, _write(expires_at=at(10)), T0)
    assert await get_memory(store, "alice", GLOBAL_SCOPE, "k", at(9.999)) is not None
    assert await get_memory(store, "alice", GLOBAL_SCOPE, "k", at(10)) is None
    assert await list_memory(store, "alice", None, "", at(10), 100) == []


async def test_listing_memory_by_prefix_scope_and_limit(store: SqlStore) -> None:
    session = make_session()
    await create_session(store, session)
    for key in ("task.a", "task.b", "taskforce", "note.x", "ta%k", "ta_k"):
        await set_memory(store, _write(key), T0)
    await set_memory(store, _write("task.local", scope=session.id), T0)
    await set_memory(store, _write("task.gone", expires_at=at(1)), T0)

    def keys(entries: list[Any]) -> list[str]:
        return [e.key for e in entries]

    assert keys(await list_memory(store, "alice", GLOBAL_SCOPE, "task.", at(2), 100)) == [
        "task.a",
        "task.b",
    ]
    # LIKE wildcards in the prefix are literal.
    assert keys(await list_memory(store, "alice", GLOBAL_SCOPE, "ta%", at(2), 100)) == ["ta%k"]
    assert keys(await list_memory(store, "alice", GLOBAL_SCOPE, "ta_", at(2), 100)) == ["ta_k"]
    assert keys(await list_memory(store, "alice", session.id, "", at(2), 100)) == ["task.local"]
    # All scopes: global first (scope ""), then by key.
    everything = await list_memory(store, "alice", None, "task", at(2), 100)
    assert [(e.session_id, e.key) for e in everything] == [
        (None, "task.a"),
        (None, "task.b"),
        (None, "taskforce"),
        (session.id, "task.local"),
    ]
    assert keys(await list_memory(store, "alice", None, "", at(2), 2)) == ["note.x", "ta%k"]


async def test_deleting_memory_reports_whether_it_existed(store: SqlStore) -> None:
    await set_memory(store, _write(), T0)
    assert await delete_memory(store, "alice", GLOBAL_SCOPE, "k") is True
    assert await get_memory(store, "alice", GLOBAL_SCOPE, "k", T0) is None
    assert await delete_memory(store, "alice", GLOBAL_SCOPE, "k") is False


async def test_purging_removes_only_expired_memory_and_revocations(store: SqlStore) -> None:
    await set_memory(store, _write("gone1", expires_at=at(5)), T0)
    await set_memory(store, _write("gone2", expires_at=at(10)), T0)
    await set_memory(store, _write("later", expires_at=at(100)), T0)
    await set_memory(store, _write("forever"), T0)
    for jti, expires_at in (("old-jti", at(10)), ("new-jti", at(100))):
        event = system_audit("auth.token_revoked", T0, target=jti)
        await store.write(lambda tx, j=jti, e=expires_at, a=event: revoke_token(tx, j, e, a))

    assert await purge_expired_memory(store, at(10)) == 2

    remaining = await list_memory(store, "alice", None, "", T0, 100)
    assert sorted(e.key for e in remaining) == ["forever", "later"]
    assert await store.read(lambda tx: tx.identity.is_token_revoked("old-jti")) is False
    assert await store.read(lambda tx: tx.identity.is_token_revoked("new-jti")) is True
    assert await purge_expired_memory(store, at(10)) == 0


# change feed ----------------------------------------------------------------------------


async def test_an_empty_feed_starts_at_zero(store: SqlStore) -> None:
    assert await latest_feed_id(store) == 0
    assert await read_feed(store, 0, 10) == []


async def test_the_feed_is_read_in_order_after_an_id_in_batches(store: SqlStore) -> None:
    session = make_session()
    _, first = await create_session(store, session)
    events = [first]
    for i in range(4):
        events.append((await post(store, new_message(session.id), at(i)))[1])
    _, last = await update_session(store, session.id, SessionChanges(purpose="p"), "alice", at(9))
    events.append(last)

    assert await latest_feed_id(store) == last.id
    assert await read_feed(store, 0, 100) == events
    assert await read_feed(store, 0, 2) == events[:2]
    assert await read_feed(store, events[2].id, 2) == events[3:5]
    assert await read_feed(store, last.id, 10) == []


async def test_updates_are_feed_events_with_the_messages_they_added(store: SqlStore) -> None:
    session = make_session()
    _, created = await create_session(store, session)
    one, added_one = await post(store, new_message(session.id, "one"), at(1))
    two, added_two = await post(store, new_message(session.id, "two"), at(2))

    events, added = await read_updates(store, 0, 10)
    assert events == [created, added_one, added_two]
    assert added == [one, two]
    events, added = await read_updates(store, created.id, 1)
    assert (events, added) == ([added_one], [one])
    assert await read_updates(store, added_two.id, 10) == ([], [])


async def test_each_store_stamps_the_feed_with_its_own_origin(
    store: SqlStore, open_store: Any
) -> None:
    other: SqlStore = open_store()
    assert other.origin != store.origin
    session = make_session()
    await create_session(store, session)
    await post(other, new_message(session.id), at(1))
    assert [e.origin for e in await read_feed(store, 0, 10)] == [store.origin, other.origin]
    assert [e.origin for e in await read_feed(other, 0, 10)] == [store.origin, other.origin]


async def test_timestamps_come_back_as_utc_whatever_zone_they_were_given_in(
    store: SqlStore,
) -> None:
    from datetime import timedelta, timezone

    local = datetime(2026, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    session = make_session(now=local)
    await create_session(store, session)
    fetched = await get_session(store, session.id)
    assert fetched is not None
    assert fetched.created_at == local
    assert fetched.created_at.utcoffset() == timedelta(0)
    assert fetched.created_at.tzinfo == UTC
