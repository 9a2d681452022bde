"""The feed relay: other processes' committed changes reach this process's bus, once."""

from __future__ import annotations

from collections.abc import Callable

import anyio

from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.events.bus import InProcessBus
from shared_context_server.events.feed_relay import FeedRelay
from shared_context_server.storage.sql.store import SqlStore
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


async def test_the_change_signal_moves_when_another_store_commits(
    open_store: Callable[[], SqlStore],
) -> None:
    here, there = open_store(), open_store()
    before = here.change_signal()
    if here.dialect.name == "postgresql":
        assert before is None  # no cheap signal: the relay reads the feed every interval
        return
    assert before is not None
    assert here.change_signal() == before
    await create_session(there, make_session())
    after_theirs = here.change_signal()
    assert after_theirs is not None
    assert after_theirs[0] != before[0]
    assert after_theirs[1] is False  # not ours: worth reading the feed
    await create_session(here, make_session())
    after_ours = here.change_signal()
    assert after_ours is not None
    assert after_ours[0] != after_theirs[0]
    assert after_ours[1] is True  # only our own commit since: nothing to read


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
