"""The feed relay: other processes' committed changes reach this process's bus, once."""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
import pytest
import sqlalchemy as sa

from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.events.bus import InProcessBus
from shared_context_server.events.feed_relay import FeedRelay
from shared_context_server.storage import migrate
from shared_context_server.storage.engine import create_engine
from shared_context_server.storage.sql import pg_listen
from shared_context_server.storage.sql.store import SqlStore
from shared_context_server.storage.store import ChangeWatch
from tests.storage.conftest import TEST_AUDIT_KEY
from tests.storage.factories import at, create_session, make_session, new_message, post


def _listening_bus() -> tuple[InProcessBus, list[ChangeEvent]]:
    bus = InProcessBus()
    heard: list[ChangeEvent] = []
    bus.subscribe(heard.append)
    return bus, heard


async def test_events_written_by_another_store_reach_the_bus_and_own_ones_do_not(
    open_store: Callable[[], SqlStore],
) -> None:
    here, there = open_store(), open_store()
    bus, heard = _listening_bus()
    relay = FeedRelay(here, bus, interval=60)
    await relay.start_position()

    session = make_session()
    _, created = await create_session(there, session)
    _, own = await post(here, new_message(session.id, "mine"), at(1))
    _, foreign = await post(there, new_message(session.id, "theirs"), at(2))

    assert await relay.poll_once() == 3
    assert heard == [created, foreign]
    assert own not in heard
    assert heard[1].kind is EventKind.MESSAGE_ADDED
    assert await relay.poll_once() == 0
    assert len(heard) == 2


async def test_the_relay_starts_after_what_was_already_written(
    open_store: Callable[[], SqlStore],
) -> None:
    here, there = open_store(), open_store()
    session = make_session()
    await create_session(there, session)
    await post(there, new_message(session.id, "old"), at(1))
    bus, heard = _listening_bus()
    relay = FeedRelay(here, bus, interval=60)
    await relay.start_position()

    _, new = await post(there, new_message(session.id, "new"), at(2))

    assert await relay.poll_once() == 1
    assert heard == [new]


async def test_the_relay_reads_in_batches_without_losing_events(
    open_store: Callable[[], SqlStore],
) -> None:
    here, there = open_store(), open_store()
    bus, heard = _listening_bus()
    relay = FeedRelay(here, bus, interval=60, batch=2)
    await relay.start_position()
    session = make_session()
    written = [(await create_session(there, session))[1]]
    for i in range(4):
        written.append((await post(there, new_message(session.id), at(i)))[1])

    reads = [await relay.poll_once() for _ in range(4)]

    assert reads == [2, 2, 1, 0]
    assert heard == written


async def _woken(watch: ChangeWatch) -> bool:
    """Whether ``watch`` wakes before its safety interval (1 s on SQLite, 30 s here)."""
    with anyio.move_on_after(0.9) as waiting:
        await watch.wait()
    return not waiting.cancelled_caught


async def test_the_change_watch_wakes_for_another_stores_commit_not_for_its_own(
    open_store: Callable[[], SqlStore],
) -> None:
    here, there = open_store(), open_store()
    async with here.watch_changes(0.01) as watch:
        await watch.wait()  # the first wait returns at once: the relay reads on start
        await create_session(here, make_session())
        assert not await _woken(watch)
        async with anyio.create_task_group() as tg:
            tg.start_soon(create_session, there, make_session())
            assert await _woken(watch)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_the_listener_reconnects_after_its_connection_is_killed(
    open_store: Callable[[], SqlStore], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=pg_listen.__name__)
    here, there = open_store(), open_store()
    kill = sa.text(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'scs-listener' AND pid <> pg_backend_pid()"
    )
    async with here.watch_changes(0.01) as watch:
        await watch.wait()
        with there.engine.begin() as conn:
            assert conn.execute(kill).rowcount >= 1
        await watch.wait()  # woken: the listener knows it lost its connection
        with anyio.fail_after(30):
            while not watch.listening:  # type: ignore[attr-defined]  # noqa: ASYNC110
                await anyio.sleep(0.01)
        await watch.wait()  # woken again: back, it reads what it may have missed
        await create_session(there, make_session())
        assert await _woken(watch)
    assert [r.levelname for r in caplog.records if "notifications" in r.getMessage()] == [
        "WARNING",
        "INFO",
    ]
    assert all(r.exc_info is None for r in caplog.records)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_the_listener_hears_its_own_schema_not_another_in_the_same_database(
    open_store: Callable[[], SqlStore], postgres_url: str
) -> None:
    """Deployments sharing a PostgreSQL database in different schemas share the channel:
    a commit in another schema does not wake this one's relay."""
    here, there = open_store(), open_store()
    engine = create_engine(postgres_url)
    migrate.upgrade(engine)
    elsewhere = SqlStore(engine, audit_key=TEST_AUDIT_KEY)
    try:
        async with here.watch_changes(0.01) as watch:
            await watch.wait()
            async with anyio.create_task_group() as tg:
                tg.start_soon(create_session, elsewhere, make_session())
                assert not await _woken(watch)
            async with anyio.create_task_group() as tg:
                tg.start_soon(create_session, there, make_session())
                assert await _woken(watch)
    finally:
        await elsewhere.close()


async def test_a_running_relay_hears_another_store_promptly(
    open_store: Callable[[], SqlStore],
) -> None:
    here, there = open_store(), open_store()
    bus, heard = _listening_bus()
    arrived = anyio.Event()
    bus.subscribe(lambda _: arrived.set())
    relay = FeedRelay(here, bus, interval=0.01)
    await relay.start_position()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(relay.run)
        await anyio.sleep(0.05)  # the relay has looked once: nothing new
        _, created = await create_session(there, make_session())
        with anyio.fail_after(2):
            await arrived.wait()
        tasks.cancel_scope.cancel()
    assert heard == [created]
