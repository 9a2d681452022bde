"""Sessions: creating, reading, listing, updating, closing and reopening."""

from __future__ import annotations

import pytest

from shared_context_server.app import App
from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.models import SessionStatus
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import (
    InvalidInputError,
    LimitExceededError,
    PermissionDeniedError,
    SessionClosedError,
    SessionNotFoundError,
)


async def test_a_created_session_is_active_and_belongs_to_its_creator(
    app: App, alice: Principal, bob: Principal, heard: list[ChangeEvent]
) -> None:
    session = await app.sessions.create(alice, "fix the login bug", {"ticket": 7})
    assert session.id.startswith("session_")
    assert (session.purpose, session.created_by, session.status, session.metadata) == (
        "fix the login bug",
        "alice",
        SessionStatus.ACTIVE,
        {"ticket": 7},
    )
    assert await app.sessions.get(bob, session.id) == session
    assert [(e.kind, e.session_id) for e in heard] == [(EventKind.SESSION_CREATED, session.id)]


async def test_reading_an_unknown_session_is_session_not_found(app: App, alice: Principal) -> None:
    with pytest.raises(SessionNotFoundError):
        await app.sessions.get(alice, "session_nope")


async def test_creating_a_session_needs_write(app: App, reader: Principal) -> None:
    with pytest.raises(PermissionDeniedError):
        await app.sessions.create(reader, "x")


async def test_a_session_purpose_must_be_given_and_not_too_long(app: App, alice: Principal) -> None:
    with pytest.raises(InvalidInputError):
        await app.sessions.create(alice, "  ")
    with pytest.raises(LimitExceededError):
        await app.sessions.create(alice, "x" * 1_001)


async def test_sessions_are_listed_by_status_and_by_involvement(
    app: App, alice: Principal, bob: Principal, carol: Principal
) -> None:
    alices = await app.sessions.create(alice, "a")
    bobs = await app.sessions.create(bob, "b")
    carols = await app.sessions.create(carol, "c")
    await app.messages.add(alice, bobs.id, "joining in")
    await app.sessions.update(carol, carols.id, status=SessionStatus.COMPLETED)

    mine = await app.sessions.list(alice, mine=True)
    assert {s.id for s in mine} == {alices.id, bobs.id}
    completed = await app.sessions.list(bob, status=SessionStatus.COMPLETED)
    assert [s.id for s in completed] == [carols.id]
    assert len(await app.sessions.list(bob, limit=2)) == 2
    assert len(await app.sessions.list(bob, limit=2, offset=2)) == 1


async def test_the_creator_may_update_a_session(
    app: App, alice: Principal, heard: list[ChangeEvent]
) -> None:
    session = await app.sessions.create(alice, "old")
    updated = await app.sessions.update(
        alice, session.id, purpose="new", metadata={"k": 1}, status=SessionStatus.COMPLETED
    )
    assert (updated.purpose, updated.metadata, updated.status) == (
        "new",
        {"k": 1},
        SessionStatus.COMPLETED,
    )
    assert await app.sessions.get(alice, session.id) == updated
    assert heard[-1].kind is EventKind.SESSION_UPDATED
    assert heard[-1].agent_id == "alice"


async def test_an_admin_may_update_anyones_session(
    app: App, alice: Principal, admin: Principal
) -> None:
    session = await app.sessions.create(alice, "x")
    updated = await app.sessions.update(admin, session.id, purpose="renamed by admin")
    assert updated.purpose == "renamed by admin"


async def test_nobody_else_may_update_a_session(
    app: App, alice: Principal, bob: Principal, reader: Principal
) -> None:
    session = await app.sessions.create(alice, "x")
    with pytest.raises(PermissionDeniedError):
        await app.sessions.update(bob, session.id, purpose="mine now")
    with pytest.raises(PermissionDeniedError):
        await app.sessions.update(reader, session.id, purpose="mine now")
    unchanged = await app.sessions.get(bob, session.id)
    assert unchanged.purpose == "x"


async def test_an_update_must_change_something(app: App, alice: Principal) -> None:
    session = await app.sessions.create(alice, "x")
    with pytest.raises(InvalidInputError):
        await app.sessions.update(alice, session.id)


async def test_updating_an_unknown_session_is_session_not_found(app: App, admin: Principal) -> None:
    with pytest.raises(SessionNotFoundError):
        await app.sessions.update(admin, "session_nope", purpose="x")


async def test_an_archived_session_refuses_messages_until_reopened(
    app: App, alice: Principal, bob: Principal
) -> None:
    session = await app.sessions.create(alice, "x")
    await app.sessions.update(alice, session.id, status=SessionStatus.ARCHIVED)
    with pytest.raises(SessionClosedError):
        await app.messages.add(bob, session.id, "too late")
    assert (await app.messages.page(bob, session.id)).messages == []

    await app.sessions.update(alice, session.id, status=SessionStatus.ACTIVE)
    message = await app.messages.add(bob, session.id, "back again")
    assert [m.id for m in (await app.messages.page(bob, session.id)).messages] == [message.id]


async def test_a_completed_session_still_takes_messages(app: App, alice: Principal) -> None:
    session = await app.sessions.create(alice, "x")
    await app.sessions.update(alice, session.id, status=SessionStatus.COMPLETED)
    assert await app.messages.add(alice, session.id, "a late finding")
