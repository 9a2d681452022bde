"""Session locks on SQLite and PostgreSQL: grants, exclusion, expiry, fencing.

Each lock decision runs as the lock service runs it, one ``store.write`` of its work
(services/locks.py), at a moment the test chooses.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime

import anyio
import pytest
import sqlalchemy as sa

from shared_context_server.clock import FakeClock
from shared_context_server.domain.audit import AuditEvent
from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.limits import Limits
from shared_context_server.domain.locks import Lock, LockRequest, LockType
from shared_context_server.domain.models import SessionStatus
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import (
    NoLockHeldError,
    SessionClosedError,
    SessionLockedError,
    SessionNotFoundError,
)
from shared_context_server.events.bus import InProcessBus
from shared_context_server.services.locks import (
    acquire_lock,
    force_release_locks,
    release_lock,
    renew_lock,
)
from shared_context_server.services.messages import MessageService
from shared_context_server.services.sessions import SessionService
from shared_context_server.storage.repositories.sessions import SessionChanges
from shared_context_server.storage.sql.store import SqlStore
from shared_context_server.storage.tables import audit_log
from shared_context_server.storage.unit_of_work import Committed
from tests.conftest import READ_WRITE
from tests.storage.factories import T0, at, make_session, update_session

READ, WRITE, EXCLUSIVE = LockType.READ, LockType.WRITE, LockType.EXCLUSIVE


def request(
    session_id: str,
    holder: str,
    lock_type: LockType = WRITE,
    *,
    ttl: int = 300,
    heartbeat: int = 60,
) -> LockRequest:
    return LockRequest(session_id, holder, "claude", lock_type, ttl, heartbeat)


async def _session(store: SqlStore, created_by: str = "alice") -> str:
    session = make_session(created_by)
    await store.write(lambda tx: tx.sessions.insert(session))
    return session.id


async def acquire(
    store: SqlStore, lock_request: LockRequest, now: datetime, event: AuditEvent | None = None
) -> Committed[Lock]:
    return await store.write(lambda tx: acquire_lock(tx, lock_request, now, event=event))


async def renew(
    store: SqlStore,
    session_id: str,
    holder: str,
    now: datetime,
    *,
    heartbeat_seconds: int,
    ttl_seconds: int | None = None,
) -> Committed[Lock]:
    return await store.write(
        lambda tx: renew_lock(
            tx,
            session_id,
            holder,
            now,
            heartbeat_seconds=heartbeat_seconds,
            ttl_seconds=ttl_seconds,
        )
    )


async def release(
    store: SqlStore,
    session_id: str,
    holder: str,
    now: datetime,
    event: AuditEvent | None = None,
) -> Committed[Lock]:
    return await store.write(lambda tx: release_lock(tx, session_id, holder, now, event=event))


async def force_release(
    store: SqlStore, session_id: str, actor: str, now: datetime
) -> Committed[list[Lock]]:
    return await store.write(lambda tx: force_release_locks(tx, session_id, actor, now))


async def live_locks(store: SqlStore, session_id: str, now: datetime) -> list[Lock]:
    return await store.read(lambda tx: tx.locks.live(session_id, now))


async def read_feed(store: SqlStore, limit: int) -> list[ChangeEvent]:
    return await store.read(lambda tx: tx.feed.after(0, limit))


def _audit_types(store: SqlStore) -> list[str]:
    with store.engine.connect() as conn:
        return list(
            conn.execute(sa.select(audit_log.c.event_type).order_by(audit_log.c.id)).scalars()
        )


async def test_a_granted_lock_carries_a_fencing_token_and_a_lock_changed_event(
    store: SqlStore,
) -> None:
    session_id = await _session(store)
    change = await acquire(store, request(session_id, "alice"), T0)
    lock = change.value
    assert (lock.holder, lock.lock_type, lock.fencing_token) == ("alice", WRITE, 1)
    assert (lock.expires_at, lock.heartbeat_deadline) == (at(300), at(60))
    [event] = change.events
    assert (event.kind, event.session_id, event.agent_id) == (
        EventKind.LOCK_CHANGED,
        session_id,
        "alice",
    )
    assert event.payload == {
        "action": "acquired",
        "lock_type": "write",
        "fencing_token": 1,
        "holder": "alice",
        "former_holder": None,
    }
    assert [e.id for e in await read_feed(store, 100)][-1] == event.id
    assert await live_locks(store, session_id, at(1)) == [lock]


async def test_a_held_write_lock_refuses_every_other_agent(store: SqlStore) -> None:
    session_id = await _session(store)
    await acquire(store, request(session_id, "alice"), T0)
    for lock_type in LockType:
        with pytest.raises(SessionLockedError) as refused:
            await acquire(store, request(session_id, "bob", lock_type), at(1))
        assert refused.value.details["holders"] == ["alice"]
    assert [lock.holder for lock in await live_locks(store, session_id, at(1))] == ["alice"]


async def test_read_locks_are_shared_and_keep_out_writers(store: SqlStore) -> None:
    session_id = await _session(store)
    await acquire(store, request(session_id, "alice", READ), T0)
    await acquire(store, request(session_id, "bob", READ), T0)
    for lock_type in (WRITE, EXCLUSIVE):
        with pytest.raises(SessionLockedError) as refused:
            await acquire(store, request(session_id, "carol", lock_type), T0)
        assert refused.value.details["holders"] == ["alice", "bob"]
    # Alice may not upgrade while Bob reads too; once alone she may.
    with pytest.raises(SessionLockedError):
        await acquire(store, request(session_id, "alice", WRITE), T0)
    await release(store, session_id, "bob", at(1))
    upgraded = (await acquire(store, request(session_id, "alice", WRITE), at(2))).value
    assert upgraded.lock_type is WRITE
    assert [
        (lock.holder, lock.lock_type) for lock in await live_locks(store, session_id, at(2))
    ] == [("alice", WRITE)]


async def test_asking_again_for_the_lock_you_hold_renews_it_with_the_same_token(
    store: SqlStore,
) -> None:
    session_id = await _session(store)
    first = (await acquire(store, request(session_id, "alice"), T0)).value
    again = await acquire(store, request(session_id, "alice"), at(50))
    assert again.value.fencing_token == first.fencing_token
    assert again.value.heartbeat_deadline == at(110)
    assert again.events[0].payload["action"] == "renewed"


async def test_fencing_tokens_grow_with_every_grant_across_sessions(store: SqlStore) -> None:
    first, second = await _session(store), await _session(store)
    tokens = []
    for session_id, holder, lock_type in [
        (first, "alice", WRITE),
        (second, "alice", WRITE),
        (first, "alice", EXCLUSIVE),  # a conversion is a new grant
        (second, "bob", READ),
    ]:
        if holder == "bob":
            await release(store, second, "alice", at(1))
        lock = (await acquire(store, request(session_id, holder, lock_type), at(1))).value
        tokens.append(lock.fencing_token)
    assert tokens == sorted(tokens)
    assert len(set(tokens)) == len(tokens)


@pytest.mark.parametrize(
    ("ttl", "heartbeat", "ends"),
    [(30, 60, 30), (300, 60, 60)],
    ids=["ttl", "heartbeat"],
)
async def test_an_expired_lock_can_be_taken_by_another_agent(
    store: SqlStore, ttl: int, heartbeat: int, ends: int
) -> None:
    session_id = await _session(store)
    await acquire(store, request(session_id, "alice", ttl=ttl, heartbeat=heartbeat), T0)
    with pytest.raises(SessionLockedError):
        await acquire(store, request(session_id, "bob"), at(ends - 0.001))
    assert await live_locks(store, session_id, at(ends)) == []
    change = await acquire(store, request(session_id, "bob"), at(ends))
    assert change.value.fencing_token == 2
    expired, granted = change.events
    assert expired.payload["action"] == "expired"
    assert (expired.payload["former_holder"], expired.payload["holder"]) == ("alice", None)
    assert granted.payload["holder"] == "bob"
    assert _audit_types(store) == ["lock.expired"]  # the reclaim is audited by the server
    with pytest.raises(NoLockHeldError):
        await renew(store, session_id, "alice", at(ends), heartbeat_seconds=60)


async def test_renewing_pushes_out_the_heartbeat_deadline_and_the_ttl(store: SqlStore) -> None:
    session_id = await _session(store)
    await acquire(store, request(session_id, "alice", ttl=100), T0)
    renewed = (await renew(store, session_id, "alice", at(59), heartbeat_seconds=60)).value
    assert (renewed.heartbeat_deadline, renewed.expires_at) == (at(119), at(159))
    longer = (
        await renew(store, session_id, "alice", at(100), heartbeat_seconds=60, ttl_seconds=600)
    ).value
    assert longer.expires_at == at(700)
    assert [lock.holder for lock in await live_locks(store, session_id, at(150))] == ["alice"]
    assert await live_locks(store, session_id, at(160)) == []


async def test_only_the_holder_releases_a_lock(store: SqlStore) -> None:
    session_id = await _session(store)
    await acquire(store, request(session_id, "alice"), T0)
    with pytest.raises(NoLockHeldError):
        await release(store, session_id, "bob", at(1))
    change = await release(store, session_id, "alice", at(1))
    assert change.value.holder == "alice"
    assert change.events[0].payload["action"] == "released"
    assert change.events[0].payload["former_holder"] == "alice"
    with pytest.raises(NoLockHeldError):
        await release(store, session_id, "alice", at(2))


async def test_force_release_removes_every_lock_and_names_each_former_holder(
    store: SqlStore,
) -> None:
    session_id = await _session(store)
    await acquire(store, request(session_id, "alice", READ), T0)
    await acquire(store, request(session_id, "bob", READ), T0)
    change = await force_release(store, session_id, "root", at(1))
    assert sorted(lock.holder for lock in change.value) == ["alice", "bob"]
    assert sorted(e.payload["former_holder"] for e in change.events) == ["alice", "bob"]
    assert {(e.agent_id, e.payload["action"], e.payload["by"]) for e in change.events} == {
        ("root", "force_released", "root")
    }
    assert await live_locks(store, session_id, at(1)) == []
    with pytest.raises(NoLockHeldError):
        await force_release(store, session_id, "root", at(2))


async def test_an_exclusive_lock_makes_the_session_read_only_for_others(store: SqlStore) -> None:
    # Posting and updating the session check the locks in their own use cases; bob
    # created the session, so only alice's exclusive lock stands in his way.
    alice = Principal("alice", "claude", READ_WRITE)
    bob = Principal("bob", "claude", READ_WRITE)
    clock, bus = FakeClock(at(1)), InProcessBus()
    messages = MessageService(store, bus, clock, Limits())
    sessions = SessionService(store, bus, clock, Limits())
    session_id = await _session(store, created_by="bob")
    await acquire(store, request(session_id, "alice", EXCLUSIVE), T0)
    with pytest.raises(SessionLockedError):
        await messages.add(bob, session_id, "hello")
    with pytest.raises(SessionLockedError):
        await sessions.update(bob, session_id, purpose="x")
    await messages.add(alice, session_id, "hello")
    # A write lock is advisory: others may still post.
    await release(store, session_id, "alice", at(2))
    await acquire(store, request(session_id, "alice", WRITE), at(2))
    clock.advance(2)
    await messages.add(bob, session_id, "hello")


async def test_locking_an_unknown_session_is_session_not_found(store: SqlStore) -> None:
    with pytest.raises(SessionNotFoundError):
        await acquire(store, request("session_nope", "alice"), T0)


async def test_lock_changes_are_audited_in_their_transaction(store: SqlStore) -> None:
    session_id = await _session(store)
    base = AuditEvent("lock.acquired", "alice", "claude", T0)
    await acquire(store, request(session_id, "alice"), T0, base)
    with pytest.raises(SessionLockedError):
        await acquire(
            store, request(session_id, "bob"), T0, AuditEvent("lock.acquired", "bob", "claude", T0)
        )
    await release(
        store, session_id, "alice", at(1), AuditEvent("lock.released", "alice", "claude", at(1))
    )
    assert _audit_types(store) == ["lock.acquired", "lock.released"]


# contention -----------------------------------------------------------------------------


class Ledger:
    """What the contenders saw, as they saw it: who held what, and each grant they got.

    A grant is recorded after its transaction commits, so two grants that may coexist (two
    readers) can be recorded in either order: wall order is not grant order. The exclusion
    checks here hold regardless (a lock is recorded as given up before its release
    commits); the order of grants is read from the store's own record (``replay``).
    """

    def __init__(self) -> None:
        self.writer: str | None = None
        self.readers: set[str] = set()
        self.seen: list[tuple[int, LockType]] = []  # (fencing token, type), as recorded
        self.refusals = 0

    def granted(self, holder: str, lock_type: LockType, token: int) -> None:
        assert self.writer is None, f"{holder} got {lock_type} while {self.writer} held a lock"
        if lock_type is READ:
            self.readers.add(holder)
        else:
            assert not self.readers, f"{holder} got {lock_type} while {self.readers} read"
            self.writer = holder
        self.seen.append((token, lock_type))

    def releasing(self, holder: str) -> None:
        if self.writer == holder:
            self.writer = None
        self.readers.discard(holder)


async def replay(store: SqlStore, session_id: str) -> list[tuple[int, LockType]]:
    """The session's grants in the order the store made them (its feed: one row per lock
    change, written in the change's transaction, which serialises on the session), checked
    for exclusion along the way. Returns (fencing token, type) per grant."""
    holders: dict[str, LockType] = {}
    grants: list[tuple[int, LockType]] = []
    for event in await read_feed(store, 10_000):
        if event.kind is not EventKind.LOCK_CHANGED or event.session_id != session_id:
            continue
        action, lock_type = event.payload["action"], LockType(event.payload["lock_type"])
        if action == "released":
            del holders[event.payload["former_holder"]]
            continue
        assert action == "acquired", event.payload
        others = set(holders.values())
        assert others <= {READ}, (event.payload, holders)  # a writer excludes everyone
        assert lock_type is READ or not others, (event.payload, holders)
        holders[event.payload["holder"]] = lock_type
        grants.append((event.payload["fencing_token"], lock_type))
    assert holders == {}
    return grants


def _read_only_between(seen: list[tuple[int, LockType]], i: int, j: int) -> bool:
    """Grants i < j were recorded out of token order: allowed only if every grant whose
    token lies between theirs (both included) is a read, i.e. they could all coexist."""
    low, high = seen[j][0], seen[i][0]
    return all(kind is READ for token, kind in seen if low <= token <= high)


async def _contend(
    store: SqlStore, session_id: str, holder: str, ledger: Ledger, rng: random.Random, now: datetime
) -> None:
    granted = 0
    for _ in range(40):
        if granted == 2:
            return
        lock_type = rng.choice([READ, WRITE, WRITE, EXCLUSIVE])
        try:
            change = await acquire(store, request(session_id, holder, lock_type), now)
        except SessionLockedError:
            ledger.refusals += 1
            await anyio.sleep(rng.uniform(0, 0.003))
            continue
        ledger.granted(holder, lock_type, change.value.fencing_token)
        granted += 1
        await anyio.sleep(rng.uniform(0, 0.002))  # hold it a moment, letting others try
        ledger.releasing(holder)  # before the release commits, so overlaps would show
        await release(store, session_id, holder, now)


async def test_many_agents_racing_for_one_lock_never_share_a_write_lock(
    open_store: Callable[[], SqlStore],
) -> None:
    first, second = open_store(), open_store()
    session_id = await _session(first)
    ledger = Ledger()
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    async with anyio.create_task_group() as tg:
        for i in range(30):
            store = first if i % 2 else second
            tg.start_soon(_contend, store, session_id, f"agent-{i}", ledger, rng, T0)
    assert len(ledger.seen) >= 40, seed
    assert ledger.refusals > 0, seed
    # In the store's order, grants never overlapped and fencing tokens strictly increase.
    grants = await replay(first, session_id)
    tokens = [token for token, _ in grants]
    assert tokens == sorted(set(tokens)), seed
    # The contenders were told exactly those grants; any two they recorded out of token
    # order were reads that could coexist, never a write overtaken or overtaking.
    assert sorted(ledger.seen) == grants, seed
    seen = ledger.seen
    for i in range(len(seen)):
        for j in range(i + 1, len(seen)):
            if seen[i][0] > seen[j][0]:
                assert _read_only_between(seen, i, j), (seed, seen[i], seen[j])
    assert await live_locks(first, session_id, T0) == []


async def test_no_lock_is_granted_on_a_session_archived_since_the_service_looked(
    store: SqlStore,
) -> None:
    session_id = await _session(store)
    await update_session(
        store, session_id, SessionChanges(status=SessionStatus.ARCHIVED), "alice", T0
    )
    with pytest.raises(SessionClosedError):
        await acquire(store, request(session_id, "bob"), at(1))
    assert await store.read(lambda tx: tx.locks.of_session(session_id)) == []
