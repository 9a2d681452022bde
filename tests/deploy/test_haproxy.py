"""HAProxy (deploy/haproxy.cfg as shipped) in front of three server processes on one
PostgreSQL database: agents on different backends, in both eras, work as on one server,
and a backend killed under load loses no acknowledged write (issue 11, part 5).

Which backend answered is HAProxy's X-SCS-Backend header. A 2025-11-25 session is pinned
to the backend that opened it; 2026-07-28 requests are spread request by request, so those
tests repeat a round until its two requests were answered by different backends."""

from __future__ import annotations

import functools
import signal
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
import sqlalchemy as sa
from mcp import Client
from mcp.client.subscriptions import ResourceUpdated
from mcp_types import CallToolResult

from tests.deploy.conftest import Deployment, Served, bearer, lb_client
from tests.mcp.conftest import ok
from tests.mcp.live import Heard

pytestmark = pytest.mark.postgres

MODES = ["legacy", "2026-07-28"]
ROUNDS = 8  # a 2026 round whose two requests met on one backend is tried again


async def pinned_elsewhere(
    stack: AsyncExitStack, url: str, headers: dict[str, str], avoid: str
) -> tuple[Client, Served]:
    """A 2025 client whose session lives on another backend than ``avoid``."""
    for _ in range(6):
        client, served = await stack.enter_async_context(lb_client(url, "legacy", headers))
        if served.last != avoid:
            return client, served
    raise AssertionError(f"every new session went to {avoid}")


async def post(writer: Client, session_id: str, content: str) -> dict[str, Any]:
    return (await ok(writer, "add_message", session_id=session_id, content=content))["message"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_subscriber_hears_a_post_made_through_another_backend(
    deployment: Deployment, mode: str
) -> None:
    url = deployment.url
    alice, bob = await bearer(url, "alice"), await bearer(url, "bob")
    async with AsyncExitStack() as stack:
        if mode == "legacy":
            heard = Heard()
            subscriber, where = await stack.enter_async_context(
                lb_client(url, mode, bob, message_handler=heard)
            )
            writer, through = await pinned_elsewhere(stack, url, alice, where.last)
            session_id = (await ok(writer, "create_session", purpose="lb"))["session"]["id"]
            uri = f"session://{session_id}"
            await subscriber.subscribe_resource(uri)
            await post(writer, session_id, "the migration is merged")
            await heard.wait_for(lambda: uri in heard.updated)
            assert where.last != through.last
            return
        writer, through = await stack.enter_async_context(lb_client(url, mode, alice))
        listener, where = await stack.enter_async_context(lb_client(url, mode, bob))
        session_id = (await ok(writer, "create_session", purpose="lb"))["session"]["id"]
        uri = f"session://{session_id}"
        async with listener.listen(resource_subscriptions=[uri]) as subscription:
            listening_on = where.last
            # One at a time: a client may fold updates of one URI it has not read yet.
            for n in range(ROUNDS):
                await post(writer, session_id, f"news {n}")
                with anyio.fail_after(30):
                    assert await subscription.__anext__() == ResourceUpdated(uri=uri)
                if through.last != listening_on:
                    return
            pytest.fail("the posts never went through another backend than the listener's")


async def wait_into(news: list[int], waiter: Client, session_id: str, cursor: int) -> None:
    """Wait from ``cursor`` until a message arrives (other news, such as the writer's
    presence, may wake the wait first); its id goes into ``news``."""
    while not news:
        arguments = {"session_id": session_id, "cursor": cursor, "timeout_s": 20}
        batch = await ok(waiter, "wait_for_updates", **arguments)
        assert not batch["timed_out"]
        news += [u["message"]["id"] for u in batch["updates"] if u["kind"] == "message_added"]
        cursor = batch["next_cursor"]


async def lock_into(results: list[CallToolResult], client: Client, session_id: str) -> None:
    arguments = {"session_id": session_id, "action": "lock", "lock_type": "write"}
    results.append(await client.call_tool("coordinate_session_work", arguments))


@pytest.mark.parametrize("mode", MODES)
async def test_a_wait_on_one_backend_wakes_on_a_post_through_another(
    deployment: Deployment, mode: str
) -> None:
    url = deployment.url
    alice, bob = await bearer(url, "alice"), await bearer(url, "bob")
    async with AsyncExitStack() as stack:
        waiter, where = await stack.enter_async_context(lb_client(url, mode, bob))
        if mode == "legacy":
            writer, through = await pinned_elsewhere(stack, url, alice, where.last)
        else:
            writer, through = await stack.enter_async_context(lb_client(url, mode, alice))
        session_id = (await ok(writer, "create_session", purpose="lb"))["session"]["id"]
        for round_ in range(ROUNDS):
            cursor = (await ok(waiter, "wait_for_updates", session_id=session_id, timeout_s=0))[
                "next_cursor"
            ]
            news: list[int] = []
            wait = functools.partial(wait_into, news, waiter, session_id, cursor)
            async with anyio.create_task_group() as tg:
                tg.start_soon(wait)
                posted = await post(writer, session_id, f"round {round_}")
            assert news == [posted["id"]]
            if where.last != through.last:
                return
        pytest.fail("the wait and the post never met on different backends")


@pytest.mark.parametrize("mode", MODES)
async def test_two_agents_on_different_backends_race_for_one_write_lock(
    deployment: Deployment, mode: str
) -> None:
    url = deployment.url
    alice, bob = await bearer(url, "alice"), await bearer(url, "bob")
    apart = 0
    async with AsyncExitStack() as stack:
        first, one = await stack.enter_async_context(lb_client(url, mode, alice))
        if mode == "legacy":
            second, two = await pinned_elsewhere(stack, url, bob, one.last)
        else:
            second, two = await stack.enter_async_context(lb_client(url, mode, bob))
        for round_ in range(ROUNDS):
            session_id = (await ok(first, "create_session", purpose=f"race {round_}"))["session"][
                "id"
            ]
            results: list[CallToolResult] = []
            async with anyio.create_task_group() as tg:
                tg.start_soon(lock_into, results, first, session_id)
                tg.start_soon(lock_into, results, second, session_id)
            won = [r for r in results if not r.is_error]
            lost = [r.structured_content for r in results if r.is_error]
            assert len(won) == 1, results
            assert [e and e["code"] for e in lost] == ["SESSION_LOCKED"]
            apart += one.last != two.last
    assert apart > 0, "the two lock calls never met on different backends"


@dataclass
class Writer:
    """An agent posting without pause; what it was told was stored, and what went wrong."""

    name: str
    mode: str
    headers: dict[str, str]
    acked: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    backends: list[str] = field(default_factory=list)  # a 2025 writer's session, each one
    acked_after_kill: int = 0

    async def run(self, url: str, session_id: str, killed: anyio.Event, stop: anyio.Event) -> None:
        """Post until ``stop``; after a failure, reconnect through the balancer and post the
        same message again with the same idempotency key (never twice)."""
        n = 0
        while not stop.is_set():
            try:
                async with lb_client(url, self.mode, self.headers) as (client, served):
                    if self.mode == "legacy":
                        self.backends.append(served.last)
                    while not stop.is_set():
                        arguments = {
                            "session_id": session_id,
                            "content": f"{self.name} message {n}: progress report",
                            "idempotency_key": f"{self.name}-{n}",
                        }
                        result = await client.call_tool("add_message", arguments)
                        assert not result.is_error, result.structured_content
                        assert result.structured_content is not None
                        self.acked.append(result.structured_content["message"]["id"])
                        self.acked_after_kill += killed.is_set()
                        n += 1
            except Exception as exc:  # the killed backend's clients: reconnect, carry on
                self.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                with suppress(Exception):
                    await anyio.sleep(0.05)


async def test_a_backend_killed_under_load_loses_no_acknowledged_write(
    deployment: Deployment,
) -> None:
    url = deployment.url
    admin = await bearer(url, "lead")
    async with lb_client(url, "2026-07-28", admin) as (client, _):
        session_id = (await ok(client, "create_session", purpose="kill one"))["session"]["id"]
    writers = [
        Writer(f"w{n}", "legacy" if n < 4 else "2026-07-28", await bearer(url, f"w{n}"))
        for n in range(7)
    ]
    killed, stop = anyio.Event(), anyio.Event()
    victim = ""
    async with anyio.create_task_group() as tg:
        for writer in writers:
            tg.start_soon(writer.run, url, session_id, killed, stop)
        with anyio.fail_after(60):
            while sum(len(w.acked) for w in writers) < 40 or not writers[0].backends:  # noqa: ASYNC110
                await anyio.sleep(0.05)
        victim = writers[0].backends[0]
        deployment.servers[victim].process.send_signal(signal.SIGKILL)
        killed.set()
        with anyio.fail_after(90):
            while any(w.acked_after_kill < 5 for w in writers):  # noqa: ASYNC110
                await anyio.sleep(0.05)
        stop.set()
    pinned_elsewhere_ = [w for w in writers if w.mode == "legacy" and w.backends[0] != victim]
    assert pinned_elsewhere_, "every 2025 writer was on the killed backend"
    for writer in pinned_elsewhere_:
        assert writer.errors == [], (writer.name, writer.errors)
        assert writer.backends == writer.backends[:1]  # never had to reconnect
    victim_clients = [w for w in writers if w.mode == "legacy" and w.backends[0] == victim]
    for writer in victim_clients:
        assert writer.errors, writer.name  # it lost its session...
        assert victim not in writer.backends[1:]  # ...and carried on elsewhere
    engine = sa.create_engine(deployment.database_url.replace("postgresql:", "postgresql+psycopg:"))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT id, content FROM messages WHERE session_id = :s"), {"s": session_id}
            ).all()
    finally:
        engine.dispose()
    stored = {row.id for row in rows}
    acked = [i for w in writers for i in w.acked]
    assert set(acked) <= stored, "acknowledged writes are missing"
    assert len(acked) == len(set(acked))
    contents = [row.content for row in rows]
    assert len(contents) == len(set(contents)), "a retried message was stored twice"
