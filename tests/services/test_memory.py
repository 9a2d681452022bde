"""Agent memory: private to its owner, global or per session, with expiry."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from shared_context_server.app import App
from shared_context_server.clock import FakeClock
from shared_context_server.domain.memory import GLOBAL_SCOPE
from shared_context_server.domain.models import MemoryEntry
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import (
    InvalidInputError,
    KeyExistsError,
    LimitExceededError,
    MemoryNotFoundError,
    PermissionDeniedError,
    SessionNotFoundError,
)


async def _stored(app: App, key: str, at: datetime) -> MemoryEntry | None:
    """Alice's global entry under ``key`` as the database holds it, read as of ``at``."""
    return await app.store.read(lambda tx: tx.memory.get("alice", GLOBAL_SCOPE, key, at))


async def test_an_agent_reads_back_what_it_stored(app: App, alice: Principal) -> None:
    entry = await app.memory.set(alice, "plan", {"steps": [1, 2]}, metadata={"v": 1})
    assert (entry.agent_id, entry.key, entry.value, entry.session_id) == (
        "alice",
        "plan",
        {"steps": [1, 2]},
        None,
    )
    assert await app.memory.get(alice, "plan") == entry


async def test_memory_is_invisible_to_other_agents_admins_included(
    app: App, alice: Principal, bob: Principal, admin: Principal
) -> None:
    await app.memory.set(alice, "plan", "mine")
    for other in (bob, admin):
        with pytest.raises(MemoryNotFoundError):
            await app.memory.get(other, "plan")
        assert await app.memory.list(other, all_scopes=True) == []
        with pytest.raises(MemoryNotFoundError):
            await app.memory.delete(other, "plan")
    assert (await app.memory.get(alice, "plan")).value == "mine"


async def test_global_and_session_memory_are_kept_apart(app: App, alice: Principal) -> None:
    session = await app.sessions.create(alice, "s")
    await app.memory.set(alice, "k", "global")
    await app.memory.set(alice, "k", "local", session_id=session.id)
    assert (await app.memory.get(alice, "k")).value == "global"
    assert (await app.memory.get(alice, "k", session_id=session.id)).value == "local"
    assert [e.value for e in await app.memory.list(alice)] == ["global"]
    assert [e.value for e in await app.memory.list(alice, session_id=session.id)] == ["local"]
    assert sorted(e.value for e in await app.memory.list(alice, all_scopes=True)) == [
        "global",
        "local",
    ]


async def test_session_memory_needs_an_existing_session(app: App, alice: Principal) -> None:
    with pytest.raises(SessionNotFoundError):
        await app.memory.set(alice, "k", 1, session_id="session_nope")


async def test_an_entry_vanishes_the_moment_it_expires_and_the_sweep_removes_it(
    fake_clock_app: App, clock: FakeClock, alice: Principal
) -> None:
    app = fake_clock_app
    start = clock.now()
    await app.memory.set(alice, "short", "v", expires_in=10)
    await app.memory.set(alice, "long", "v", expires_in=1_000)
    clock.advance(9.999)
    assert (await app.memory.get(alice, "short")).value == "v"
    clock.advance(0.001)
    with pytest.raises(MemoryNotFoundError):
        await app.memory.get(alice, "short")
    assert [e.key for e in await app.memory.list(alice)] == ["long"]
    # Still a row until the sweep runs (as a read in the past shows); the sweep removes it.
    assert await _stored(app, "short", start) is not None
    report = await app.maintenance.sweep()
    assert report.memory_purged == 1
    assert await _stored(app, "short", start) is None
    assert await app.maintenance.sweep() == type(report)(0, [])
    assert (await app.memory.get(alice, "long")).value == "v"


async def test_an_expired_key_can_be_set_again_without_overwrite(
    fake_clock_app: App, clock: FakeClock, alice: Principal
) -> None:
    app = fake_clock_app
    await app.memory.set(alice, "k", "old", expires_in=5)
    clock.advance(5)
    entry = await app.memory.set(alice, "k", "new", overwrite=False)
    assert (entry.value, entry.expires_at) == ("new", None)


async def test_expiry_must_be_positive_and_at_most_a_year(app: App, alice: Principal) -> None:
    for bad in (0, -1):
        with pytest.raises(InvalidInputError):
            await app.memory.set(alice, "k", 1, expires_in=bad)
    with pytest.raises(LimitExceededError):
        await app.memory.set(alice, "k", 1, expires_in=365 * 24 * 3600 + 1)
    assert await app.memory.set(alice, "k", 1, expires_in=365 * 24 * 3600)


async def test_without_overwrite_an_existing_key_is_refused(app: App, alice: Principal) -> None:
    await app.memory.set(alice, "k", "first")
    with pytest.raises(KeyExistsError):
        await app.memory.set(alice, "k", "second", overwrite=False)
    assert (await app.memory.get(alice, "k")).value == "first"
    await app.memory.set(alice, "k", "third")
    assert (await app.memory.get(alice, "k")).value == "third"


async def test_a_value_may_be_up_to_one_mebibyte_of_json(app: App, alice: Principal) -> None:
    limit = 1024 * 1024
    fits = "x" * (limit - 2)  # the JSON string adds two quotes
    assert (await app.memory.set(alice, "big", fits)).value == fits
    with pytest.raises(LimitExceededError):
        await app.memory.set(alice, "big", fits + "x")


async def test_keys_and_permissions_are_checked(
    app: App, alice: Principal, reader: Principal
) -> None:
    with pytest.raises(InvalidInputError):
        await app.memory.set(alice, "has space", 1)
    with pytest.raises(PermissionDeniedError):
        await app.memory.set(reader, "k", 1)
    with pytest.raises(MemoryNotFoundError):
        await app.memory.get(reader, "k")


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("", ["note.1", "task.1", "task.2", "task.x.y", "taskforce"]),
        ("task", ["task.1", "task.2", "task.x.y", "taskforce"]),
        ("task.", ["task.1", "task.2", "task.x.y"]),
        ("task.*", ["task.1", "task.2", "task.x.y"]),
        ("task.?", ["task.1", "task.2"]),
        ("*.1", ["note.1", "task.1"]),
        ("TASK", []),
        ("*.X.*", []),
        ("*force", ["taskforce"]),
        ("nothing*", []),
    ],
)
async def test_memory_is_listed_by_prefix_or_glob(
    app: App, alice: Principal, pattern: str, expected: list[str]
) -> None:
    for key in ("task.1", "task.2", "task.x.y", "taskforce", "note.1"):
        await app.memory.set(alice, key, key)
    listed = await app.memory.list(alice, pattern=pattern)
    assert [e.key for e in listed] == expected


async def test_only_star_and_question_mark_are_wildcards(app: App, alice: Principal) -> None:
    for key in ("100%", "1000", "a_b", "axb"):
        await app.memory.set(alice, key, key)
    assert [e.key for e in await app.memory.list(alice, pattern="100%")] == ["100%"]
    assert [e.key for e in await app.memory.list(alice, pattern="*_b")] == ["a_b"]
    assert [e.key for e in await app.memory.list(alice, pattern="a?b")] == ["a_b", "axb"]
    with pytest.raises(InvalidInputError):
        await app.memory.list(alice, pattern="task.[12]")


async def test_a_glob_finds_matches_among_many_keys(app: App, alice: Principal) -> None:
    for i in range(1_100):
        await app.memory.set(alice, f"k{i:04d}", i)
    listed = await app.memory.list(alice, pattern="*1099")
    assert [e.key for e in listed] == ["k1099"]


async def test_a_glob_listing_respects_the_limit(app: App, alice: Principal) -> None:
    for i in range(5):
        await app.memory.set(alice, f"k{i}", i)
    assert [e.key for e in await app.memory.list(alice, pattern="k*", limit=2)] == ["k0", "k1"]
    assert [e.key for e in await app.memory.list(alice, limit=3)] == ["k0", "k1", "k2"]


async def test_deleting_memory_removes_it_and_a_second_delete_is_not_found(
    app: App, alice: Principal
) -> None:
    await app.memory.set(alice, "k", 1)
    await app.memory.delete(alice, "k")
    with pytest.raises(MemoryNotFoundError):
        await app.memory.get(alice, "k")
    with pytest.raises(MemoryNotFoundError):
        await app.memory.delete(alice, "k")
    assert await _stored(app, "k", app.clock.now()) is None


async def test_a_token_limited_to_one_session_lists_a_full_page_of_what_it_may_see(
    app: App, alice: Principal
) -> None:
    session = await app.sessions.create(alice, "mine")
    other = await app.sessions.create(alice, "other")
    for i in range(5):  # what the limited token may not see, enough to fill a page
        await app.memory.set(alice, f"a{i}", i, session_id=other.id)
    for i in range(3):
        await app.memory.set(alice, f"b{i}", i, session_id=session.id)
    await app.memory.set(alice, "g", "global")
    limited = replace(alice, session_id=session.id)
    listed = await app.memory.list(limited, all_scopes=True, limit=3)
    assert [(e.session_id, e.key) for e in listed] == [
        (None, "g"),
        (session.id, "b0"),
        (session.id, "b1"),
    ]
