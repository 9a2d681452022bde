"""The full-text index behind search, on both backends: words, prefixes, visibility,
metadata, and an index that follows every insert and delete."""

from __future__ import annotations

import sqlalchemy as sa

from shared_context_server.domain.access import ReadScope
from shared_context_server.domain.models import Visibility
from shared_context_server.storage.repositories.search import QueryWord, TextSearch
from shared_context_server.storage.sql.store import SqlStore
from shared_context_server.storage.tables import messages
from tests.storage.factories import T0, create_session, make_session, new_message, post

ALICE = ReadScope("alice", "claude", admin=False)


async def _found(store: SqlStore, session_id: str, words: list[str], **search: object) -> list[str]:
    """Words given as "prefix" or "prefix|spelling|spelling"."""
    query_words = [QueryWord(w.split("|")[0], tuple(w.split("|")[1:])) for w in words]
    scope = search.pop("scope", ALICE)
    query = TextSearch(session_id, scope, query_words, **search)  # type: ignore[arg-type]
    return [m.content for m in await store.read(lambda tx: tx.search.matches(query))]


async def _terms(store: SqlStore, session_id: str, prefixes: list[str], limit: int) -> list[str]:
    return await store.read(lambda tx: tx.search.terms(session_id, prefixes, limit))


async def _session_with(store: SqlStore, *contents: str) -> str:
    session, _ = await create_session(store, make_session())
    for content in contents:
        await post(store, new_message(session.id, content), T0)
    return session.id


async def test_words_match_whole_words_and_word_prefixes(store: SqlStore) -> None:
    sid = await _session_with(store, "database migration failed", "lunch on friday")
    assert await _found(store, sid, words=["migration"]) == ["database migration failed"]
    assert await _found(store, sid, words=["migr"]) == ["database migration failed"]
    assert await _found(store, sid, words=["ration"]) == []  # not a prefix of a word
    assert await _found(store, sid, words=["nothing", "lunch"]) == ["lunch on friday"]
    assert await _found(store, sid, words=[]) == []


async def test_spellings_match_only_whole_words(store: SqlStore) -> None:
    sid = await _session_with(store, "database migration failed")
    assert await _found(store, sid, ["migraton|migration"]) == ["database migration failed"]
    assert await _found(store, sid, ["migraton|migr"]) == []


async def test_every_word_or_any_word_newest_first_within_the_session(
    store: SqlStore,
) -> None:
    sid = await _session_with(store, "cache", "cache invalidation bug", "unrelated", "bug")
    await _session_with(store, "cache invalidation bug elsewhere")
    words = ["cache", "invalidation", "bug"]
    assert await _found(store, sid, words, every=True) == ["cache invalidation bug"]
    assert await _found(store, sid, words) == ["bug", "cache invalidation bug", "cache"]
    assert await _found(store, sid, ["cache"], limit=1) == ["cache invalidation bug"]


async def test_only_what_the_scope_may_see_is_found(store: SqlStore) -> None:
    session, _ = await create_session(store, make_session())
    for sender, sender_type, visibility in [
        ("alice", "claude", Visibility.PRIVATE),
        ("bob", "claude", Visibility.PRIVATE),
        ("bob", "claude", Visibility.AGENT_ONLY),
        ("carol", "gemini", Visibility.AGENT_ONLY),
        ("bob", "claude", Visibility.ADMIN_ONLY),
        ("bob", "claude", Visibility.PUBLIC),
    ]:
        content = f"zebra {sender} {visibility.value}"
        message = new_message(
            session.id, content, sender=sender, sender_type=sender_type, visibility=visibility
        )
        await post(store, message, T0)
    seen = await _found(store, session.id, words=["zebra"])
    assert sorted(seen) == [
        "zebra alice private",
        "zebra bob agent_only",
        "zebra bob public",
    ]
    admin = ReadScope("root", "ops", admin=True)
    assert sorted(await _found(store, session.id, words=["zebra"], scope=admin)) == [
        "zebra bob admin_only",
        "zebra bob public",
    ]


async def test_metadata_is_matched_only_when_included(store: SqlStore) -> None:
    session, _ = await create_session(store, make_session())
    tagged = new_message(session.id, "see attached", metadata={"ticket": "flamingo-4711"})
    await post(store, tagged, T0)
    assert await _found(store, session.id, words=["flamingo"]) == ["see attached"]
    assert await _found(store, session.id, words=["flamingo"], include_metadata=False) == []
    # The sender is always searchable.
    assert await _found(store, session.id, words=["alice"], include_metadata=False) == [
        "see attached"
    ]


async def test_the_index_follows_rows_written_directly_and_deleted(store: SqlStore) -> None:
    sid = await _session_with(store, "kept")
    row = {
        "session_id": sid,
        "sender": "alice",
        "sender_type": "claude",
        "content": "bulk loaded kubernetes note",
        "metadata": {},
        "message_type": "message",
        "visibility": "public",
        "parent_message_id": None,
        "created_at": T0,
    }
    with store.engine.begin() as conn:
        conn.execute(sa.insert(messages), [row, {**row, "content": "other kubernetes note"}])
    assert len(await _found(store, sid, words=["kubernetes"])) == 2
    with store.engine.begin() as conn:
        conn.execute(sa.delete(messages).where(messages.c.content == "other kubernetes note"))
    assert await _found(store, sid, words=["kubernetes"]) == ["bulk loaded kubernetes note"]


async def test_search_terms_lists_indexed_words_by_prefix(store: SqlStore) -> None:
    sid = await _session_with(store, "authentication token", "author of the plan")
    assert set(await _terms(store, sid, ["au"], 10)) >= {"authentication", "author"}
    assert "token" not in await _terms(store, sid, ["au"], 10)
    assert set(await _terms(store, sid, ["to", "pl"], 10)) >= {"token", "plan"}
    assert await _terms(store, sid, ["zz"], 10) == []


async def test_search_terms_keep_the_first_words_of_each_prefix_up_to_the_limit(
    store: SqlStore,
) -> None:
    sid = await _session_with(store, "zeta zebra zero zest", "zinc ziti")
    assert await _terms(store, sid, ["ze", "zi"], 2) == ["zebra", "zero", "zinc", "ziti"]
    assert await _terms(store, sid, ["ze"], 3) == ["zebra", "zero", "zest"]
