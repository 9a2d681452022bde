"""The maintenance sweep: archives sessions nobody touched for a while, purges expired memory."""

from __future__ import annotations

import anyio

from shared_context_server.app import App
from shared_context_server.clock import FakeClock
from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.models import SessionStatus
from shared_context_server.domain.principal import Principal

WEEK = 7 * 24 * 3600


async def test_sessions_inactive_past_the_limit_are_archived_and_announced(
    fake_clock_app: App, clock: FakeClock, alice: Principal
) -> None:
    app = fake_clock_app
    assert app.settings.archive_after_seconds == WEEK
    heard: list[ChangeEvent] = []
    app.bus.subscribe(heard.append)
    idle = await app.sessions.create(alice, "idle")
    busy = await app.sessions.create(alice, "busy")
    clock.advance(WEEK - 60)
    await app.messages.add(alice, busy.id, "still here")
    clock.advance(61)
    heard.clear()

    report = await app.maintenance.sweep()

    assert report.sessions_archived == [idle.id]
    assert [(e.kind, e.session_id, e.agent_id) for e in heard] == [
        (EventKind.SESSION_UPDATED, idle.id, "system")
    ]
    assert (await app.sessions.get(alice, idle.id)).status is SessionStatus.ARCHIVED
    assert (await app.sessions.get(alice, busy.id)).status is SessionStatus.ACTIVE


async def test_a_session_exactly_at_the_limit_is_not_yet_archived(
    fake_clock_app: App, clock: FakeClock, alice: Principal
) -> None:
    app = fake_clock_app
    session = await app.sessions.create(alice, "edge")
    clock.advance(WEEK)
    assert (await app.maintenance.sweep()).sessions_archived == []
    clock.advance(0.001)
    assert (await app.maintenance.sweep()).sessions_archived == [session.id]


async def test_the_background_sweep_really_runs(
    fake_clock_app: App, clock: FakeClock, alice: Principal
) -> None:
    app = fake_clock_app
    session = await app.sessions.create(alice, "idle")
    clock.advance(WEEK + 1)
    archived = anyio.Event()

    def on_event(event: ChangeEvent) -> None:
        if event.session_id == session.id and event.kind is EventKind.SESSION_UPDATED:
            archived.set()

    app.bus.subscribe(on_event)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(app.maintenance.run, 3600)
            await archived.wait()
            tg.cancel_scope.cancel()
    assert (await app.sessions.get(alice, session.id)).status is SessionStatus.ARCHIVED
