"""The change feed is in commit order: a reader that resumes after an id never misses a row
committed later, whatever order concurrent writers commit in (issue 11, part 1)."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest
import sqlalchemy as sa

from shared_context_server.clock import FakeClock
from shared_context_server.domain.access import ReadScope
from shared_context_server.domain.events import Change, EventKind
from shared_context_server.domain.limits import Limits
from shared_context_server.domain.models import Message
from shared_context_server.domain.principal import Principal
from shared_context_server.events.bus import InProcessBus
from shared_context_server.services.messages import MessageService, posting
from shared_context_server.storage.repositories.messages import MessageQuery
from shared_context_server.storage.sql.feed import SqlFeed
from shared_context_server.storage.sql.messages import SqlMessages
from shared_context_server.storage.sql.store import SqlStore, SqlTransaction
from shared_context_server.storage.unit_of_work import Committed
from tests.conftest import READ_WRITE
from tests.storage.factories import (
    T0,
    at,
    create_session,
    list_messages,
    make_session,
    new_message,
    post,
)

WRITERS = 50
WRITES_EACH = 12
DEADLINE_S = 60
ADMIN = ReadScope("admin", "claude", admin=True)
Read = Callable[[int], Awaitable[list[int]]]


def _change(session_id: str) -> Change:
    return Change(EventKind.SESSION_UPDATED, session_id, "writer", T0)


def _append_and_hold(
    store: SqlStore, session_id: str, appended: threading.Event, release: threading.Event
) -> None:
    """Append one feed row, then keep the transaction open until ``release``."""
    with store.engine.begin() as conn:
        tx = SqlTransaction(conn, store, writing=True)
        tx.changed(_change(session_id))
        tx.finish()
        appended.set()
        assert release.wait(DEADLINE_S)


def _append(store: SqlStore, session_id: str) -> None:
    with store.engine.begin() as conn:
        tx = SqlTransaction(conn, store, writing=True)
        tx.changed(_change(session_id))
        tx.finish()


def _waiting_for_a_lock(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        waiting = conn.execute(sa.text("SELECT count(*) FROM pg_locks WHERE NOT granted"))
        return bool(waiting.scalar())


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_row_appended_first_and_committed_last_still_reaches_a_cursor_reader(
    open_store: Callable[[], SqlStore],
) -> None:
    # SQLite runs one write transaction at a time, so only PostgreSQL can interleave two.
    first, second, reader = open_store(), open_store(), open_store()
    appended, release, second_done = threading.Event(), threading.Event(), threading.Event()
    seen: list[int] = []

    def second_writer() -> None:
        _append(second, "second")
        second_done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(anyio.to_thread.run_sync, _append_and_hold, first, "first", appended, release)
        assert await anyio.to_thread.run_sync(appended.wait, DEADLINE_S)
        tg.start_soon(anyio.to_thread.run_sync, second_writer)
        # The second writer either commits (the feed would then be out of commit order)
        # or waits for the first: either way, read what a cursor reader sees now.
        with anyio.fail_after(DEADLINE_S):  # no event tells of a lock wait: poll for it
            while not second_done.is_set() and not _waiting_for_a_lock(reader.engine):  # noqa: ASYNC110
                await anyio.sleep(0.01)
        seen += [e.id for e in await reader.read(lambda tx: tx.feed.after(0, 100))]
        release.set()
    cursor = max(seen, default=0)
    seen += [e.id for e in await reader.read(lambda tx: tx.feed.after(cursor, 100))]
    every = [e.id for e in await reader.read(lambda tx: tx.feed.after(0, 100))]
    assert len(every) == 2
    assert seen == every  # nothing skipped, nothing twice, in id order


async def _race(stores: list[SqlStore], session_of: Callable[[int], str], page: Read) -> list[int]:
    """``WRITERS`` writers on alternate stores post while a reader pages after its cursor
    until they are done: the ids the reader saw."""
    seen: list[int] = []
    writing = True

    async def write(index: int) -> None:
        for i in range(WRITES_EACH):
            message = new_message(session_of(index), f"note {i} of writer {index}")
            await post(stores[index % 2], message, at(i))

    async def read_along() -> None:
        cursor = 0
        while True:
            done = not writing
            ids = await page(cursor)
            seen.extend(ids)
            cursor = ids[-1] if ids else cursor
            if done and not ids:
                return
            await anyio.lowlevel.checkpoint()

    with anyio.fail_after(DEADLINE_S * 3):
        async with anyio.create_task_group() as readers:
            readers.start_soon(read_along)
            async with anyio.create_task_group() as writers:
                for index in range(WRITERS):
                    writers.start_soon(write, index)
            writing = False
    return seen


async def test_a_feed_reader_under_many_concurrent_writers_gets_every_row(
    open_store: Callable[[], SqlStore],
) -> None:
    # Two stores (two engines, as two processes would have), each writer in its own
    # session so that no session row orders them: only the feed's own rule does.
    stores, reader = [open_store(), open_store()], open_store()
    sessions = [make_session() for _ in range(WRITERS)]
    for session in sessions:
        await create_session(stores[0], session)

    async def page(cursor: int, limit: int = 500) -> list[int]:
        return [e.id for e in await reader.read(lambda tx: tx.feed.after(cursor, limit))]

    start = await reader.read(lambda tx: tx.feed.latest_id())
    seen = [i for i in await _race(stores, lambda index: sessions[index].id, page) if i > start]
    every = await page(start, 100_000)
    assert len(every) == WRITERS * WRITES_EACH
    assert seen == every


async def test_a_message_cursor_reader_under_many_concurrent_writers_gets_every_message(
    open_store: Callable[[], SqlStore],
) -> None:
    stores, reader = [open_store(), open_store()], open_store()
    session = make_session()
    await create_session(stores[0], session)
    scope = ReadScope("reader", "claude", admin=True)

    async def page(cursor: int, limit: int = 500) -> list[int]:
        query = MessageQuery(session.id, scope, limit=limit, after_id=cursor)
        return [m.id for m in await list_messages(reader, query)]

    seen = await _race(stores, lambda index: session.id, page)
    every = await page(0, 100_000)
    assert len(every) == WRITERS * WRITES_EACH
    assert seen == every


async def test_a_post_committed_while_a_page_is_read_is_in_the_page_or_after_its_cursor(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The page's rows and its feed cursor are two statements; on PostgreSQL each may see a
    # newer snapshot. Commit a post at each point between them and the reads around them.
    session = make_session()
    await create_session(store, session)
    reader = Principal("alice", "claude", READ_WRITE)
    service = MessageService(store, InProcessBus(), FakeClock(), Limits())
    for patched in ("latest_id", "list"):
        repository = SqlFeed if patched == "latest_id" else SqlMessages
        original = getattr(repository, patched)
        late: list[Committed[Message]] = []

        def post_first(
            self: Any, *args: Any, original: Any = original, late: list[Any] = late
        ) -> Any:
            if not late:  # another connection commits a post just before this statement
                late.append(store._commit(posting(new_message(session.id), T0, ADMIN, None)))
            return original(self, *args)

        with monkeypatch.context() as patch:
            patch.setattr(repository, patched, post_first)
            page = await service.page(reader, session.id, limit=100)
        (committed,) = late
        in_page = committed.value.id in [m.id for m in page.messages]
        assert in_page or committed.events[0].id > page.feed_cursor, patched
