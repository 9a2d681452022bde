"""Presence on SQLite and PostgreSQL: last seen, status, session activity, as the presence
service's unit of work records them."""

from __future__ import annotations

from datetime import datetime, timedelta

from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.models import Permission
from shared_context_server.domain.presence import (
    NO_SESSION,
    AgentPresence,
    PresenceStatus,
    PresenceTouch,
)
from shared_context_server.services.presence import record_presence
from shared_context_server.storage.sql.store import SqlStore
from tests.storage.factories import T0, at, create_session, make_session

WINDOW = timedelta(seconds=300)
RW = frozenset({Permission.READ, Permission.WRITE})


def touch(
    agent_id: str,
    now: datetime,
    *,
    session_id: str | None = None,
    status: PresenceStatus | None = None,
    permissions: frozenset[Permission] = RW,
) -> PresenceTouch:
    return PresenceTouch(agent_id, "claude", permissions, now, now - WINDOW, session_id, status)


async def touch_presence(
    store: SqlStore, touch: PresenceTouch
) -> tuple[AgentPresence, list[ChangeEvent]]:
    """The presence service's unit of work: the presence stored and its feed events."""
    committed = await store.write(lambda tx: record_presence(tx, touch))
    return committed.value, committed.events


async def list_presence(
    store: SqlStore,
    window_start: datetime,
    *,
    session_id: str | None = None,
    include_offline: bool = False,
) -> list[AgentPresence]:
    return await store.read(
        lambda tx: tx.presence.list(
            window_start, session_id=session_id, include_offline=include_offline
        )
    )


async def test_a_first_sighting_registers_the_agent_as_active(store: SqlStore) -> None:
    presence, events = await touch_presence(store, touch("alice", T0))
    assert (presence.agent_id, presence.status, presence.last_seen, presence.first_seen) == (
        "alice",
        PresenceStatus.ACTIVE,
        T0,
        T0,
    )
    assert presence.permissions == RW
    [event] = events
    assert (event.kind, event.session_id, event.agent_id) == (
        EventKind.PRESENCE_CHANGED,
        NO_SESSION,
        "alice",
    )
    assert (event.payload["status"], event.payload["previous"]) == ("active", "offline")


async def test_being_seen_again_updates_last_seen_without_an_event(store: SqlStore) -> None:
    await touch_presence(store, touch("alice", T0))
    presence, events = await touch_presence(
        store, touch("alice", at(60), permissions=frozenset({Permission.READ}))
    )
    assert events == []
    assert (presence.last_seen, presence.first_seen) == (at(60), T0)
    assert presence.permissions == {Permission.READ}  # those of the last recorded call


async def test_a_status_change_is_told_to_the_sessions_the_agent_is_active_in(
    store: SqlStore,
) -> None:
    session, _ = await create_session(store, make_session())
    await touch_presence(store, touch("alice", T0, session_id=session.id))
    presence, events = await touch_presence(
        store, touch("alice", at(10), status=PresenceStatus.BUSY)
    )
    assert presence.status is PresenceStatus.BUSY
    assert sorted(e.session_id for e in events) == sorted([NO_SESSION, session.id])
    assert {(e.payload["status"], e.payload["previous"]) for e in events} == {("busy", "active")}
    # The same status again changes nothing anyone sees.
    _, again = await touch_presence(store, touch("alice", at(11), status=PresenceStatus.BUSY))
    assert again == []


async def test_becoming_active_in_a_session_is_told_to_that_session(store: SqlStore) -> None:
    session, _ = await create_session(store, make_session())
    await touch_presence(store, touch("alice", T0))
    _, events = await touch_presence(store, touch("alice", at(1), session_id=session.id))
    [event] = events
    assert (event.session_id, event.payload["joined"]) == (session.id, True)
    _, events = await touch_presence(store, touch("alice", at(2), session_id=session.id))
    assert events == []


async def test_an_agent_back_after_the_window_is_active_again(store: SqlStore) -> None:
    await touch_presence(store, touch("alice", T0, status=PresenceStatus.IDLE))
    presence, events = await touch_presence(store, touch("alice", at(301)))
    assert presence.status is PresenceStatus.ACTIVE
    assert [(e.payload["previous"], e.payload["status"]) for e in events] == [("offline", "active")]


async def test_listing_shows_agents_seen_within_the_window(store: SqlStore) -> None:
    await touch_presence(store, touch("old", T0))
    await touch_presence(store, touch("alice", at(200)))
    await touch_presence(store, touch("bob", at(250), status=PresenceStatus.BUSY))
    now = at(400)
    listed = await list_presence(store, now - WINDOW)
    assert [(p.agent_id, p.status) for p in listed] == [
        ("bob", PresenceStatus.BUSY),
        ("alice", PresenceStatus.ACTIVE),
    ]
    everyone = await list_presence(store, now - WINDOW, include_offline=True)
    assert [p.agent_id for p in everyone] == ["bob", "alice", "old"]
    assert everyone[2].status_at(now - WINDOW) is PresenceStatus.OFFLINE


async def test_a_session_listing_shows_who_was_active_in_it(store: SqlStore) -> None:
    session, _ = await create_session(store, make_session())
    other, _ = await create_session(store, make_session())
    await touch_presence(store, touch("alice", T0, session_id=session.id))
    await touch_presence(store, touch("bob", at(10), session_id=other.id))
    await touch_presence(store, touch("carol", at(20), session_id=session.id))
    await touch_presence(store, touch("alice", at(30)))  # seen, but not in the session
    listed = await list_presence(store, at(40) - WINDOW, session_id=session.id)
    assert [(p.agent_id, p.last_seen_in_session) for p in listed] == [
        ("carol", at(20)),
        ("alice", T0),
    ]
    assert listed[1].last_seen == at(30)
    later = await list_presence(store, at(301) - WINDOW, session_id=session.id)
    assert [p.agent_id for p in later] == ["carol"]


async def test_activity_in_an_unknown_session_is_not_recorded(store: SqlStore) -> None:
    _, events = await touch_presence(store, touch("alice", T0, session_id="session_nope"))
    assert [e.session_id for e in events] == [NO_SESSION]
    assert await list_presence(store, T0 - WINDOW, session_id="session_nope") == []
