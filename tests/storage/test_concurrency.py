"""Several writers on one database: stores in one process, and separate OS processes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import anyio

from shared_context_server.domain.access import ReadScope
from shared_context_server.domain.events import EventKind
from shared_context_server.domain.models import Message
from shared_context_server.storage import migrate
from shared_context_server.storage.engine import create_engine
from shared_context_server.storage.repositories.messages import MessageQuery
from shared_context_server.storage.sql.store import SqlStore
from tests.storage.factories import (
    T0,
    at,
    create_session,
    list_messages,
    make_session,
    new_message,
    post,
)
from tests.storage.processes import run_together

WRITES_PER_STORE = 60


async def _write_many(store: SqlStore, session_id: str, sender: str, out: list[Message]) -> None:
    for i in range(WRITES_PER_STORE):
        message, _ = await post(
            store, new_message(session_id, f"{sender} {i}", sender=sender), at(i)
        )
        out.append(message)


async def test_two_stores_writing_at_once_lose_nothing_and_agree_on_order(
    open_store: Callable[[], SqlStore], database_url: str
) -> None:
    first, second = open_store(), open_store()
    session = make_session()
    await create_session(first, session)
    written: dict[str, list[Message]] = {"a": [], "b": [], "c": [], "d": []}

    async with anyio.create_task_group() as tg:
        for sender, store in zip(written, (first, second, first, second), strict=True):
            tg.start_soon(_write_many, store, session.id, sender, written[sender])

    ids = [m.id for batch in written.values() for m in batch]
    assert len(ids) == len(set(ids)) == 4 * WRITES_PER_STORE
    for batch in written.values():  # each writer sees its own ids grow
        assert [m.id for m in batch] == sorted(m.id for m in batch)
    feed = await second.read(lambda tx: tx.feed.after(0, 10_000))
    message_events = [e for e in feed if e.kind is EventKind.MESSAGE_ADDED]
    assert sorted(e.message_id for e in message_events if e.message_id) == sorted(ids)
    assert {e.origin for e in message_events} == {first.origin, second.origin}
    if database_url.startswith("sqlite"):
        # Writers are serialised, so the feed lists messages in id order.
        assert [e.message_id for e in message_events] == sorted(ids)


WRITER = """
import json, sys
import anyio
from datetime import UTC, datetime
from shared_context_server.domain.access import ReadScope
from shared_context_server.domain.models import NewMessage, Visibility
from shared_context_server.services.messages import posting
from shared_context_server.storage.engine import create_engine
from shared_context_server.storage.sql.store import SqlStore

url, session_id, sender, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

async def main() -> None:
    store = SqlStore(create_engine(url))
    print("ready", flush=True)
    sys.stdin.readline()  # wait until every writer is ready
    ids = []

    async def write(i: int) -> None:
        new = NewMessage(session_id, sender, "claude", f"{sender} {i}", Visibility.PUBLIC)
        scope = ReadScope(sender, "claude", admin=True)
        message = (await store.write(posting(new, datetime.now(UTC), scope, None))).value
        ids.append(message.id)

    async with anyio.create_task_group() as tg:
        for i in range(count):
            tg.start_soon(write, i)
    await store.close()
    print(json.dumps(ids), flush=True)

anyio.run(main)
"""


async def test_separate_processes_writing_one_sqlite_file_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    store = SqlStore(create_engine(url))
    try:
        migrate.upgrade(store.engine)
        session = make_session(now=T0)
        await create_session(store, session)
        count = 40
        senders = ["p1", "p2", "p3"]
        argv = [[url, session.id, sender, str(count)] for sender in senders]

        outputs = await anyio.to_thread.run_sync(run_together, WRITER, argv)

        ids = [i for out in outputs for i in json.loads(out)]
        assert len(ids) == len(set(ids)) == count * len(senders)
        feed = await store.read(lambda tx: tx.feed.after(0, 10_000))
        assert sorted(e.message_id for e in feed if e.message_id) == sorted(ids)
        assert len({e.origin for e in feed}) == 1 + len(senders)
        listed = await list_messages(
            store, MessageQuery(session.id, ReadScope("x", "x", admin=False), limit=1_000)
        )
        assert {m.sender for m in listed} == set(senders)
        assert [m.id for m in listed] == sorted(ids)
    finally:
        await store.close()
