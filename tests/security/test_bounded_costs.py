"""Security: what one caller's wait or search costs is bounded by what it may see, not by
what others wrote. A reader with an old cursor pages the change feed; another session's
flood of private words does not widen a search's typo expansion. Counted in rows and
terms read, not in time; on SQLite and PostgreSQL, through a real MCP client."""

from __future__ import annotations

import itertools
import string
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import anyio
import pytest
import sqlalchemy as sa

from shared_context_server.app import App
from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.models import Message
from shared_context_server.services import updates
from shared_context_server.services.search import RECENT, TERM_BUDGET, TERMS_PER_WINDOW
from shared_context_server.services.updates import SCAN_BUDGET
from shared_context_server.storage.sql.search import SqlSearch
from shared_context_server.storage.tables import change_feed, messages
from shared_context_server.storage.unit_of_work import Snapshot
from tests.mcp.conftest import connect_client, ok, token_for

FLOOD = 5_000


def _insert(app: App, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    with app.store.engine.begin() as conn:
        conn.execute(sa.insert(table), rows)


def _flood_feed(app: App, session_id: str, count: int, now: datetime) -> None:
    """Feed rows nobody else may hear: another agent's private posts in its own session."""
    row = {
        "kind": EventKind.MESSAGE_ADDED.value,
        "session_id": session_id,
        "agent_id": "mallory",
        "message_id": None,
        "sender_type": "claude",
        "visibility": "private",
        "origin": "flood",
        "created_at": now,
        "payload": None,
    }
    _insert(app, change_feed, [row] * count)


async def test_a_reader_with_an_old_cursor_pages_the_feed_within_a_budget(
    backend_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = backend_app
    async with connect_client(app, token_for(app, "mallory")) as mallory:
        theirs = (await ok(mallory, "create_session", purpose="flood"))["session"]["id"]
    async with connect_client(app, token_for(app, "alice")) as alice:
        ours = (await ok(alice, "create_session", purpose="work"))["session"]["id"]
        await anyio.to_thread.run_sync(_flood_feed, app, theirs, FLOOD, app.clock.now())
        await ok(alice, "add_message", session_id=ours, content="the news")
    read: list[int] = []
    original = updates.read_updates

    def counted(
        tx: Snapshot, after_id: int, limit: int, keep: Any = None
    ) -> tuple[list[ChangeEvent], list[Message]]:
        events, added = original(tx, after_id, limit, keep)
        read[-1] += len(events)
        assert all(m.session_id == ours for m in added), "only wanted messages are read"
        return events, added

    monkeypatch.setattr(updates, "read_updates", counted)
    async with connect_client(app, token_for(app, "bob")) as bob:
        for session_id in (ours, None):
            cursor, news, calls = 0, [], 0
            while not news:
                read.append(0)
                batch = await ok(
                    bob, "wait_for_updates", session_id=session_id, cursor=cursor, timeout_s=0
                )
                calls += 1
                assert read[-1] <= SCAN_BUDGET
                assert batch["next_cursor"] > cursor
                if not batch["updates"]:
                    assert batch["has_more"] is True
                    assert batch["timed_out"] is False
                cursor = batch["next_cursor"]
                news = [u for u in batch["updates"] if u["kind"] == "message_added"]
            assert [u["message"]["content"] for u in news] == ["the news"]
            # The flood at a budget per call, and one call for the news before it (the
            # session's creation).
            assert calls <= -(-FLOOD // SCAN_BUDGET) + 1
        quiet = await ok(bob, "wait_for_updates", session_id=ours, cursor=cursor, timeout_s=0)
        assert (quiet["timed_out"], quiet["has_more"], quiet["count"]) == (True, False, 0)


def _flood_words(count: int) -> list[str]:
    """Distinct words sharing the first letters of "deployment" and sorting before it."""
    letters = itertools.product(string.ascii_lowercase[:11], repeat=4)  # "depa" < "depl"
    return ["dep" + "".join(p) + "x" for p, _ in zip(letters, range(count), strict=False)]


def _flood_messages(app: App, session_id: str, words: Sequence[str], now: datetime) -> None:
    rows = [
        {
            "session_id": session_id,
            "sender": "mallory",
            "sender_type": "claude",
            "content": " ".join(words[i : i + 50]),
            "metadata": {},
            "message_type": "message",
            "visibility": "private",
            "parent_message_id": None,
            "created_at": now,
        }
        for i in range(0, len(words), 50)
    ]
    _insert(app, messages, rows)


async def test_another_sessions_private_words_do_not_widen_a_search(
    backend_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = backend_app
    async with connect_client(app, token_for(app, "mallory")) as mallory:
        theirs = (await ok(mallory, "create_session", purpose="flood"))["session"]["id"]
    words = _flood_words(FLOOD)
    assert len(set(words)) == FLOOD
    await anyio.to_thread.run_sync(_flood_messages, app, theirs, words, app.clock.now())
    async with connect_client(app, token_for(app, "alice")) as alice:
        ours = (await ok(alice, "create_session", purpose="work"))["session"]["id"]
        await ok(alice, "add_message", session_id=ours, content="the deployment finished")
        await ok(alice, "add_message", session_id=ours, content="lunch is at noon")
    # More than the newest RECENT, which search scores without the index: the expansion runs.
    notes = [
        {
            "session_id": ours,
            "sender": "alice",
            "sender_type": "claude",
            "content": f"routine note {i}",
            "metadata": {},
            "message_type": "message",
            "visibility": "public",
            "parent_message_id": None,
            "created_at": app.clock.now(),
        }
        for i in range(RECENT)
    ]
    await anyio.to_thread.run_sync(_insert, app, messages, notes)
    examined: list[int] = []
    original = SqlSearch.terms

    def counted(self: SqlSearch, session_id: str, prefixes: Sequence[str], limit: int) -> list[str]:
        found = original(self, session_id, prefixes, limit)
        examined.append(len(found))
        return found

    monkeypatch.setattr(SqlSearch, "terms", counted)
    async with connect_client(app, token_for(app, "bob")) as bob:
        for query in ("deploymnet finished", "deployment", "deploymnet"):
            hits = (await ok(bob, "search_context", session_id=ours, query=query))["hits"]
            assert [h["message"]["content"] for h in hits][:1] == ["the deployment finished"]
    # One word of each query is long enough for typos: three windows, each bounded.
    assert examined
    assert all(n <= 3 * TERMS_PER_WINDOW <= TERM_BUDGET for n in examined), examined
    assert max(examined) < FLOOD // 5
