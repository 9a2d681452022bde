"""Fuzzy search: forgiving of typos, best first, over the whole session, within visibility."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from shared_context_server.app import App
from shared_context_server.domain.models import Session, Visibility
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import InvalidInputError, LimitExceededError
from shared_context_server.storage.tables import messages


@pytest.fixture
async def session(app: App, alice: Principal) -> Session:
    return await app.sessions.create(alice, "search")


async def test_a_typo_still_finds_the_message(app: App, session: Session, alice: Principal) -> None:
    wanted = await app.messages.add(alice, session.id, "the authentication token expires early")
    await app.messages.add(alice, session.id, "lunch menu for friday")
    hits = await app.search.fuzzy(alice, session.id, "authentcation tokn")
    assert [h.message.id for h in hits] == [wanted.id]
    assert 0 < hits[0].score <= 100


async def test_the_threshold_drops_weak_matches(
    app: App, session: Session, alice: Principal
) -> None:
    await app.messages.add(alice, session.id, "database migration failed on startup")
    assert await app.search.fuzzy(alice, session.id, "databse migraton", threshold=60)
    assert await app.search.fuzzy(alice, session.id, "databse migraton", threshold=100) == []
    for bad in (-1, 100.5):
        with pytest.raises(InvalidInputError):
            await app.search.fuzzy(alice, session.id, "x", threshold=bad)


async def test_hits_come_best_first_without_duplicates_and_up_to_the_limit(
    app: App, session: Session, alice: Principal
) -> None:
    exact = await app.messages.add(alice, session.id, "cache invalidation bug")
    close = await app.messages.add(alice, session.id, "cache invalidation bugs everywhere today")
    for i in range(5):
        await app.messages.add(alice, session.id, f"cache invalidation note {i}")
    hits = await app.search.fuzzy(alice, session.id, "cache invalidation bug", threshold=50)
    ids = [h.message.id for h in hits]
    assert ids[0] == exact.id
    assert close.id in ids
    assert len(ids) == len(set(ids))
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    limited = await app.search.fuzzy(alice, session.id, "cache invalidation", limit=2)
    assert len(limited) == 2


async def test_search_covers_the_whole_session_not_just_recent_messages(
    app: App, session: Session, alice: Principal
) -> None:
    oldest = await app.messages.add(alice, session.id, "kubernetes deployment rollback plan")
    filler = [
        {
            "session_id": session.id,
            "sender": "alice",
            "sender_type": "claude",
            "content": f"routine status update number {i}",
            "metadata": {},
            "message_type": "message",
            "visibility": Visibility.PUBLIC.value,
            "parent_message_id": None,
            "created_at": app.clock.now(),
        }
        for i in range(1_999)
    ]
    with app.store.engine.begin() as conn:
        conn.execute(sa.insert(messages), filler)

    hits = await app.search.fuzzy(alice, session.id, "kubernets deploymnt rollback", threshold=80)
    assert [h.message.id for h in hits] == [oldest.id]


async def test_metadata_is_searched_only_when_asked(
    app: App, session: Session, alice: Principal
) -> None:
    tagged = await app.messages.add(
        alice, session.id, "see attached", metadata={"ticket": "flamingo-4711"}
    )
    with_metadata = await app.search.fuzzy(alice, session.id, "flamingo-4711", threshold=80)
    assert [h.message.id for h in with_metadata] == [tagged.id]
    without = await app.search.fuzzy(
        alice, session.id, "flamingo-4711", threshold=80, include_metadata=False
    )
    assert without == []


async def test_search_never_returns_what_the_caller_may_not_see(
    app: App,
    session: Session,
    alice: Principal,
    bob: Principal,
    carol: Principal,
    admin: Principal,
) -> None:
    note = await app.messages.add(
        bob, session.id, "secret zebra plan", visibility=Visibility.PRIVATE
    )
    claude_only = await app.messages.add(
        bob, session.id, "secret zebra plan for claude", visibility=Visibility.AGENT_ONLY
    )
    admins = await app.messages.add(
        admin, session.id, "secret zebra plan for admins", visibility=Visibility.ADMIN_ONLY
    )

    async def found(principal: Principal) -> set[int]:
        hits = await app.search.fuzzy(principal, session.id, "secret zebra plan", threshold=70)
        return {h.message.id for h in hits}

    assert await found(bob) == {note.id, claude_only.id}
    assert await found(alice) == {claude_only.id}
    assert await found(carol) == set()
    assert await found(admin) == {admins.id}


async def test_bad_queries_are_refused(app: App, session: Session, alice: Principal) -> None:
    with pytest.raises(InvalidInputError):
        await app.search.fuzzy(alice, session.id, "   ")
    with pytest.raises(LimitExceededError):
        await app.search.fuzzy(alice, session.id, "x" * 1_001)
    with pytest.raises(LimitExceededError):
        await app.search.fuzzy(alice, session.id, "x", limit=201)
