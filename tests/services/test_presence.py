"""Presence through the service: seen cheaply, registered status, who is active where."""

from __future__ import annotations

import pytest

from shared_context_server.app import App
from shared_context_server.clock import FakeClock
from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.presence import PresenceStatus
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import (
    InvalidInputError,
    PermissionDeniedError,
    SessionNotFoundError,
)


@pytest.fixture
def app(fake_clock_app: App) -> App:
    return fake_clock_app


@pytest.fixture
def heard(fake_clock_app: App) -> list[ChangeEvent]:
    events: list[ChangeEvent] = []
    fake_clock_app.bus.subscribe(events.append)
    return events


def _presence(heard: list[ChangeEvent]) -> list[tuple[str, str, str]]:
    return [
        (e.session_id, e.agent_id, e.payload["status"])
        for e in heard
        if e.kind is EventKind.PRESENCE_CHANGED
    ]


async def test_a_seen_agent_is_listed_as_active_until_the_window_passes(
    app: App, clock: FakeClock, alice: Principal, bob: Principal
) -> None:
    await app.presence.seen(alice)
    listed = await app.presence.active_agents(bob)
    assert [(a.agent_id, a.agent_type, a.status) for a in listed] == [
        ("alice", "claude", PresenceStatus.ACTIVE)
    ]
    clock.advance(app.settings.presence_window_seconds)
    assert await app.presence.active_agents(bob) == []
    [offline] = await app.presence.active_agents(bob, include_offline=True)
    assert offline.status is PresenceStatus.OFFLINE


async def test_being_seen_writes_at_most_once_per_refresh_interval(
    app: App, clock: FakeClock, alice: Principal, bob: Principal
) -> None:
    await app.presence.seen(alice)
    first = (await app.presence.active_agents(bob))[0].last_seen
    clock.advance(app.settings.presence_refresh_seconds - 1)
    await app.presence.seen(alice)
    assert (await app.presence.active_agents(bob))[0].last_seen == first
    clock.advance(1)
    await app.presence.seen(alice)
    assert (await app.presence.active_agents(bob))[0].last_seen == clock.now()


async def test_registering_a_status_is_told_once_and_not_on_every_heartbeat(
    app: App, clock: FakeClock, alice: Principal, heard: list[ChangeEvent]
) -> None:
    session_id = (await app.sessions.create(alice, "work")).id
    await app.presence.seen(alice, session_id)
    assert _presence(heard) == [("", "alice", "active"), (session_id, "alice", "active")]
    heard.clear()
    registered = await app.presence.register(alice, PresenceStatus.BUSY)
    assert registered.status is PresenceStatus.BUSY
    assert sorted(_presence(heard)) == [("", "alice", "busy"), (session_id, "alice", "busy")]
    heard.clear()
    for _ in range(5):
        clock.advance(20)
        await app.presence.seen(alice, session_id)
    await app.presence.register(alice, PresenceStatus.BUSY)
    assert _presence(heard) == []


async def test_offline_cannot_be_registered(app: App, alice: Principal) -> None:
    with pytest.raises(InvalidInputError):
        await app.presence.register(alice, PresenceStatus.OFFLINE)


async def test_permissions_are_shown_only_to_admins_and_the_agent_itself(
    app: App, alice: Principal, bob: Principal, admin: Principal
) -> None:
    await app.presence.seen(alice)
    await app.presence.seen(bob)
    as_bob = {a.agent_id: a.permissions for a in await app.presence.active_agents(bob)}
    assert as_bob == {"alice": None, "bob": ["read", "write"]}
    as_admin = {a.agent_id: a.permissions for a in await app.presence.active_agents(admin)}
    assert as_admin == {"alice": ["read", "write"], "bob": ["read", "write"]}


async def test_a_session_lists_who_has_been_active_in_it(
    app: App, clock: FakeClock, alice: Principal, bob: Principal, carol: Principal
) -> None:
    session_id = (await app.sessions.create(alice, "work")).id
    await app.presence.seen(alice, session_id)
    clock.advance(5)
    await app.presence.seen(bob, session_id)
    await app.presence.seen(carol)
    listed = await app.presence.active_agents(carol, session_id)
    assert [(a.agent_id, a.last_seen_in_session) for a in listed] == [
        ("bob", clock.now()),
        ("alice", listed[1].last_seen),
    ]
    with pytest.raises(SessionNotFoundError):
        await app.presence.active_agents(carol, "session_nope")


async def test_registering_presence_is_audited(app: App, alice: Principal) -> None:
    import sqlalchemy as sa

    from shared_context_server.storage.tables import audit_log

    await app.presence.register(alice, PresenceStatus.IDLE)
    with app.store.engine.connect() as conn:
        row = conn.execute(
            sa.select(audit_log).where(audit_log.c.event_type == "presence.registered")
        ).one()
    assert (row.agent_id, row.target, row.metadata) == ("alice", "alice", {"status": "idle"})


async def test_a_token_limited_to_one_session_sees_who_is_active_there_only(
    app: App, alice: Principal, bob: Principal
) -> None:
    mine = (await app.sessions.create(alice, "mine")).id
    other = (await app.sessions.create(alice, "other")).id
    await app.presence.seen(alice, mine)
    await app.presence.seen(bob, other)
    sub = Principal("sub", "claude", alice.permissions, session_id=mine)
    assert [a.agent_id for a in await app.presence.active_agents(sub)] == ["alice"]
    with pytest.raises(PermissionDeniedError):
        await app.presence.active_agents(sub, other)
