"""Session locks through the service: contention, expiry, renewal, force-unlock, exclusivity."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from shared_context_server.app import App
from shared_context_server.clock import FakeClock
from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.locks import LockType
from shared_context_server.domain.models import SessionStatus
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import (
    InvalidInputError,
    LimitExceededError,
    NoLockHeldError,
    PermissionDeniedError,
    SessionClosedError,
    SessionLockedError,
)
from shared_context_server.storage.tables import audit_log


@pytest.fixture
def app(fake_clock_app: App) -> App:
    return fake_clock_app


@pytest.fixture
def heard(fake_clock_app: App) -> list[ChangeEvent]:
    events: list[ChangeEvent] = []
    fake_clock_app.bus.subscribe(events.append)
    return events


async def _session(app: App, owner: Principal) -> str:
    return (await app.sessions.create(owner, "shared work")).id


def _audit(app: App, session_id: str) -> list[tuple[str, str, str | None]]:
    with app.store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_log.c.event_type, audit_log.c.agent_id, audit_log.c.target)
            .where(audit_log.c.session_id == session_id, audit_log.c.event_type.like("lock.%"))
            .order_by(audit_log.c.id)
        )
        return [(r.event_type, r.agent_id, r.target) for r in rows]


async def test_two_agents_contend_for_a_lock_and_only_one_gets_it(
    app: App, alice: Principal, bob: Principal, heard: list[ChangeEvent]
) -> None:
    session_id = await _session(app, alice)
    lock = await app.locks.lock(alice, session_id)
    assert (lock.holder, lock.lock_type) == ("alice", LockType.WRITE)
    with pytest.raises(SessionLockedError) as refused:
        await app.locks.lock(bob, session_id)
    assert refused.value.details["holders"] == ["alice"]
    await app.locks.unlock(alice, session_id)
    bobs = await app.locks.lock(bob, session_id)
    assert bobs.fencing_token > lock.fencing_token
    lock_events = [e for e in heard if e.kind is EventKind.LOCK_CHANGED]
    assert [(e.payload["action"], e.agent_id) for e in lock_events] == [
        ("acquired", "alice"),
        ("released", "alice"),
        ("acquired", "bob"),
    ]
    assert _audit(app, session_id) == [
        ("lock.acquired", "alice", session_id),
        ("lock.released", "alice", session_id),
        ("lock.acquired", "bob", session_id),
    ]


async def test_a_lock_expires_after_its_ttl(
    app: App, clock: FakeClock, alice: Principal, bob: Principal
) -> None:
    session_id = await _session(app, alice)
    await app.locks.lock(alice, session_id, ttl_seconds=30)
    clock.advance(29)
    with pytest.raises(SessionLockedError):
        await app.locks.lock(bob, session_id)
    clock.advance(1)
    assert await app.locks.status(bob, session_id) == []
    assert (await app.locks.lock(bob, session_id)).holder == "bob"
    assert ("lock.expired", "system", "alice") in _audit(app, session_id)


async def test_a_lock_expires_when_its_holder_misses_the_heartbeat(
    app: App, clock: FakeClock, alice: Principal, bob: Principal
) -> None:
    session_id = await _session(app, alice)
    lock = await app.locks.lock(alice, session_id)  # TTL 300 s, heartbeat 60 s
    assert lock.expires_at == clock.now() + (lock.expires_at - lock.acquired_at)
    clock.advance(60)
    assert (await app.locks.lock(bob, session_id)).holder == "bob"
    with pytest.raises(NoLockHeldError):
        await app.locks.renew(alice, session_id)


async def test_renewing_keeps_the_lock_past_the_heartbeat_deadline(
    app: App, clock: FakeClock, alice: Principal, bob: Principal
) -> None:
    session_id = await _session(app, alice)
    lock = await app.locks.lock(alice, session_id)
    for _ in range(4):
        clock.advance(59)
        renewed = await app.locks.renew(alice, session_id)
        assert renewed.fencing_token == lock.fencing_token
    with pytest.raises(SessionLockedError):
        await app.locks.lock(bob, session_id)
    # Renewal extends the TTL too: 236 s in, the lock runs to 236 + 300.
    assert renewed.expires_at == clock.now() + (lock.expires_at - lock.acquired_at)


async def test_an_admin_may_force_unlock_and_the_former_holder_is_told(
    app: App, alice: Principal, bob: Principal, admin: Principal, heard: list[ChangeEvent]
) -> None:
    session_id = await _session(app, alice)
    lock = await app.locks.lock(alice, session_id, LockType.EXCLUSIVE)
    with pytest.raises(PermissionDeniedError):
        await app.locks.force_unlock(bob, session_id)
    released = await app.locks.force_unlock(admin, session_id)
    assert released == [lock]
    assert await app.locks.status(bob, session_id) == []
    forced = [e for e in heard if e.payload.get("action") == "force_released"]
    assert [(e.payload["former_holder"], e.agent_id) for e in forced] == [("alice", "root")]
    page = await app.messages.page(alice, session_id)
    [notice] = page.messages
    assert (notice.sender, notice.message_type) == ("root", "coordination")
    assert notice.metadata["to"] == "alice"
    assert "@alice" in notice.content
    assert ("lock.force_released", "root", "alice") in _audit(app, session_id)
    with pytest.raises(NoLockHeldError):
        await app.locks.force_unlock(admin, session_id)


async def test_an_exclusive_lock_blocks_other_writers_but_not_its_holder(
    app: App, alice: Principal, bob: Principal, admin: Principal
) -> None:
    session_id = await _session(app, bob)
    await app.locks.lock(bob, session_id, LockType.EXCLUSIVE)
    with pytest.raises(SessionLockedError):
        await app.messages.add(alice, session_id, "let me in")
    with pytest.raises(SessionLockedError):
        await app.locks.notify(admin, session_id, "admins too")
    with pytest.raises(SessionLockedError):
        await app.locks.lock(alice, session_id, LockType.READ)
    assert (await app.messages.add(bob, session_id, "mine")).sender == "bob"
    await app.locks.notify(bob, session_id, "done soon")
    # Readers still read.
    assert len((await app.messages.page(alice, session_id)).messages) == 2


async def test_read_locks_are_shared_and_a_sole_reader_may_upgrade(
    app: App, alice: Principal, bob: Principal
) -> None:
    session_id = await _session(app, alice)
    await app.locks.lock(alice, session_id, LockType.READ)
    await app.locks.lock(bob, session_id, LockType.READ)
    assert {lock.holder for lock in await app.locks.status(alice, session_id)} == {"alice", "bob"}
    with pytest.raises(SessionLockedError):
        await app.locks.lock(alice, session_id, LockType.WRITE)
    await app.locks.unlock(bob, session_id)
    upgraded = await app.locks.lock(alice, session_id, LockType.WRITE)
    assert upgraded.lock_type is LockType.WRITE


async def test_fencing_tokens_strictly_increase_with_every_grant(
    app: App, clock: FakeClock, alice: Principal, bob: Principal
) -> None:
    first, second = await _session(app, alice), await _session(app, bob)
    tokens = []
    for who, session_id in [(alice, first), (bob, second), (bob, first), (alice, second)]:
        tokens.append((await app.locks.lock(who, session_id)).fencing_token)
        clock.advance(61)  # let it lapse
    assert tokens == sorted(set(tokens))


async def test_only_the_holder_may_unlock(app: App, alice: Principal, bob: Principal) -> None:
    session_id = await _session(app, alice)
    await app.locks.lock(alice, session_id)
    with pytest.raises(NoLockHeldError):
        await app.locks.unlock(bob, session_id)
    assert (await app.locks.unlock(alice, session_id)).holder == "alice"


async def test_locks_need_write_and_status_needs_read(
    app: App, alice: Principal, reader: Principal
) -> None:
    session_id = await _session(app, alice)
    for attempt in (
        app.locks.lock(reader, session_id),
        app.locks.renew(reader, session_id),
        app.locks.unlock(reader, session_id),
        app.locks.notify(reader, session_id, "hi"),
    ):
        with pytest.raises(PermissionDeniedError):
            await attempt
    assert await app.locks.status(reader, session_id) == []


async def test_lock_arguments_are_checked(app: App, alice: Principal) -> None:
    session_id = await _session(app, alice)
    with pytest.raises(LimitExceededError):
        await app.locks.lock(alice, session_id, ttl_seconds=app.settings.lock_max_ttl_seconds + 1)
    with pytest.raises(InvalidInputError):
        await app.locks.lock(alice, session_id, ttl_seconds=0)
    with pytest.raises(InvalidInputError):
        await app.locks.notify(alice, session_id, "  ")
    await app.sessions.update(alice, session_id, status=SessionStatus.ARCHIVED)
    with pytest.raises(SessionClosedError):
        await app.locks.lock(alice, session_id)


async def test_notify_posts_a_coordination_message(app: App, alice: Principal) -> None:
    session_id = await _session(app, alice)
    message = await app.locks.notify(alice, session_id, "taking the parser next")
    assert (message.message_type, message.sender, message.content) == (
        "coordination",
        "alice",
        "taking the parser next",
    )


async def test_a_token_limited_to_one_session_locks_only_that_session(
    app: App, alice: Principal
) -> None:
    mine, other = await _session(app, alice), await _session(app, alice)
    sub = Principal("sub", "claude", alice.permissions, session_id=mine)
    assert (await app.locks.lock(sub, mine)).holder == "sub"
    for attempt in (app.locks.lock(sub, other), app.locks.status(sub, other)):
        with pytest.raises(PermissionDeniedError):
            await attempt
