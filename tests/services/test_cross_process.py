"""Two servers on one database behave as one system: a change made through one reaches the
other's bus and its waiters (issue 11, part 2); on PostgreSQL an idle server reads nothing,
since other processes' commits are announced by NOTIFY instead of found by polling."""

from __future__ import annotations

import time

import anyio
import pytest
import sqlalchemy as sa

from shared_context_server.app import running_app
from shared_context_server.config import Settings
from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.principal import Principal
from tests.conftest import READ_WRITE

ALICE = Principal("alice", "claude", READ_WRITE)
BOB = Principal("bob", "gemini", READ_WRITE)
IDLE_WINDOW_S = 3.0


async def test_a_post_through_one_server_reaches_the_others_bus_and_waiters(
    backend_settings: Settings,
) -> None:
    async with running_app(backend_settings) as here, running_app(backend_settings) as there:
        session = await there.sessions.create(ALICE, "two servers")
        heard: list[ChangeEvent] = []
        arrived = anyio.Event()

        def listener(event: ChangeEvent) -> None:
            if event.kind is EventKind.MESSAGE_ADDED:
                heard.append(event)
                arrived.set()

        here.bus.subscribe(listener)
        cursor = await here.updates.cursor()
        posted = await there.messages.add(BOB, session.id, "the schema change is merged")
        with anyio.fail_after(30):
            await arrived.wait()
            batch = await here.updates.wait(
                ALICE, session_id=session.id, cursor=cursor, timeout_seconds=20
            )
    assert [e.message_id for e in heard] == [posted.id]
    assert [u.message.id for u in batch.updates if u.message] == [posted.id]


@pytest.mark.parametrize("backend_settings", ["postgres"], indirect=True)
async def test_an_idle_server_on_postgres_makes_no_transactions(
    backend_settings: Settings,
) -> None:
    async with running_app(backend_settings) as app:
        began: list[float] = []
        sa.event.listen(app.store.engine, "begin", lambda _: began.append(time.monotonic()))
        # The start-up sweep and anchoring run first; then the server is idle.
        quiet_since = time.monotonic()
        with anyio.fail_after(30):
            while time.monotonic() - max([quiet_since, *began]) < 0.5:  # noqa: ASYNC110
                await anyio.sleep(0.1)
        settled = len(began)
        await anyio.sleep(IDLE_WINDOW_S)  # the measurement itself: real idle time
        idle = len(began) - settled
    assert idle / IDLE_WINDOW_S < 1, f"{idle} transactions in {IDLE_WINDOW_S} s idle"
