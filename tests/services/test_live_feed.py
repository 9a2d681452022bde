"""The shared window of the feed (services/live_feed.py) on both backends: every change
read once and served to any reader after a position it still covers; a reader further
behind is told to read its backlog itself."""

from __future__ import annotations

import anyio
import anyio.lowlevel

from shared_context_server.app import App
from shared_context_server.domain.events import EventKind
from shared_context_server.domain.models import Visibility
from shared_context_server.domain.principal import Principal
from shared_context_server.services.live_feed import LiveFeed


async def test_changes_are_served_from_the_window(app: App, alice: Principal) -> None:
    live = LiveFeed(app.store, app.bus, window=3)
    start = await app.updates.cursor()
    assert await live.after(start) == []
    session = await app.sessions.create(alice, "live")
    posted = await app.messages.add(alice, session.id, "hello")
    entries = await live.after(start)
    assert entries is not None
    assert [e.event.kind for e in entries] == [EventKind.SESSION_CREATED, EventKind.MESSAGE_ADDED]
    assert entries[-1].message == posted
    assert await live.after(entries[-1].event.id) == []


async def test_a_visibility_change_carries_the_message_as_it_is_now(
    app: App, alice: Principal
) -> None:
    live = LiveFeed(app.store, app.bus)
    session = await app.sessions.create(alice, "live")
    posted = await app.messages.add(alice, session.id, "oops")
    start = await app.updates.cursor()
    await live.after(start)
    await app.messages.set_visibility(alice, posted.id, Visibility.PRIVATE, "not yet")
    entries = await live.after(start)
    assert entries is not None
    assert entries[-1].event.kind is EventKind.VISIBILITY_CHANGED
    assert entries[-1].message is not None
    assert entries[-1].message.visibility is Visibility.PRIVATE


async def test_a_reader_behind_the_window_is_told(app: App, alice: Principal) -> None:
    live = LiveFeed(app.store, app.bus, window=3)
    start = await app.updates.cursor()
    await live.after(start)
    session = await app.sessions.create(alice, "live")
    for n in range(4):
        await app.messages.add(alice, session.id, f"m{n}")
    assert await live.after(start) is None
    latest = await app.updates.cursor()
    entries = await live.after(latest - 1)
    assert entries is not None
    assert [e.event.id for e in entries] == [latest]


async def test_news_wakes_on_a_commit(app: App, alice: Principal) -> None:
    live = LiveFeed(app.store, app.bus)
    await live.after(await app.updates.cursor())
    woke = anyio.Event()

    async def waiter() -> None:
        await live.news()
        woke.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.lowlevel.checkpoint()
        await app.sessions.create(alice, "wake")
        with anyio.fail_after(10):
            await woke.wait()
