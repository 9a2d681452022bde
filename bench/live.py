"""Live updates: from another agent's add_message returning to the subscriber hearing of it.

t0 is taken when the writer's add_message returns, t1 when the subscriber's client hands
over the notification (or the waiting wait_for_updates returns). The server may send the
notification before the writer's response, so a sample can be negative: reported as is.
Samples are taken one at a time, each waiting for its notification before the next post,
after a random pause of up to 50 ms.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
from mcp import Client
from mcp.client.session import MessageHandlerFnT
from mcp_types import ResourceUpdatedNotification

from bench.clients import LEGACY, MODERN, call, http_client, stdio_client, subscribe
from bench.context import Bench
from bench.measure import Samples, row
from bench.servers import ours_stdio
from bench.text import message_text

WRITER = "bench-writer"
SUBSCRIBER = "bench-subscriber"
HEAR_TIMEOUT_S = 5.0
# A random pause before each post: back-to-back samples would otherwise lock onto the phase
# of any periodic work (the change-feed poll that carries news across processes).
JITTER_S = 0.05
# Where a client connects and as whom: an MCP URL and a bearer token.
Endpoint = tuple[str, str]
WAIT_SETTLE_S = 0.02  # lets a wait_for_updates request reach the server before the post


class Arrival:
    """When the last awaited notification arrived; re-armed before each post."""

    def __init__(self) -> None:
        self.at: float | None = None
        self._event = anyio.Event()

    def arm(self) -> None:
        self.at = None
        self._event = anyio.Event()

    def hear(self) -> None:
        if self.at is None:
            self.at = time.perf_counter()
            self._event.set()

    async def wait(self) -> float:
        with anyio.fail_after(HEAR_TIMEOUT_S):
            await self._event.wait()
        assert self.at is not None
        return self.at


async def _post(writer: Client, session_id: str, i: int) -> float:
    await call(writer, "add_message", {"session_id": session_id, "content": message_text(i)})
    return time.perf_counter()


async def _sample(
    samples: Samples, arrival: Arrival, post: Callable[[], Awaitable[float]], timed: bool
) -> None:
    await anyio.sleep(random.uniform(0, JITTER_S))
    arrival.arm()
    try:
        posted = await post()
        heard = await arrival.wait()
    except Exception as exc:  # a lost notification is an error of this measurement
        samples.failed(f"{type(exc).__name__}: {exc}")
        return
    if timed:
        samples.latencies.append(heard - posted)


async def _delivery(
    writer: Client, session_id: str, arrival: Arrival, count: int, warmup: int
) -> Samples:
    samples = Samples()
    for i in range(warmup + count):
        await _sample(
            samples, arrival, functools.partial(_post, writer, session_id, i), i >= warmup
        )
    return samples


def _handler(arrival: Arrival, uri: str) -> MessageHandlerFnT:
    async def handle(message: Any) -> None:
        if isinstance(message, ResourceUpdatedNotification) and str(message.params.uri) == uri:
            arrival.hear()

    return handle


async def _new_session(writer: Client, purpose: str) -> str:
    return str((await call(writer, "create_session", {"purpose": purpose}))["session"]["id"])


async def notify_2025(
    bench: Bench,
    writer_of: Callable[[], AbstractAsyncContextManager[Client]],
    label: str,
    subscriber_at: Endpoint | None = None,
) -> Samples:
    """resources/subscribe, then notifications/resources/updated on the subscriber's stream
    (by default: on our server, as SUBSCRIBER)."""
    plan = bench.plan
    arrival = Arrival()
    url, token = subscriber_at or (bench.ours.url, bench.tokens[SUBSCRIBER])
    async with writer_of() as writer:
        session_id = await _new_session(writer, f"bench: live {label}")
        uri = f"session://{session_id}"
        async with http_client(url, token, message_handler=_handler(arrival, uri)) as subscriber:
            await subscribe(subscriber, uri)
            return await _delivery(writer, session_id, arrival, plan.live_samples, plan.warmup)


async def notify_2026(
    bench: Bench, writer_at: Endpoint | None = None, listener_at: Endpoint | None = None
) -> Samples:
    """subscriptions/listen; the event as the client's subscription iterator yields it
    (by default both on our server, as WRITER and SUBSCRIBER)."""
    plan = bench.plan
    arrival = Arrival()
    writer_url, writer_token = writer_at or (bench.ours.url, bench.tokens[WRITER])
    listener_url, listener_token = listener_at or (bench.ours.url, bench.tokens[SUBSCRIBER])
    async with (
        http_client(writer_url, writer_token, mode=MODERN) as writer,
        http_client(listener_url, listener_token, mode=MODERN) as listener,
    ):
        session_id = await _new_session(writer, "bench: live 2026")
        uri = f"session://{session_id}"
        async with listener.listen(resource_subscriptions=[uri]) as subscription:

            async def consume() -> None:
                async for _ in subscription:
                    arrival.hear()

            async with anyio.create_task_group() as tg:
                tg.start_soon(consume)
                samples = await _delivery(
                    writer, session_id, arrival, plan.live_samples, plan.warmup
                )
                tg.cancel_scope.cancel()
    return samples


async def wait_for_updates(bench: Bench) -> Samples:
    """A waiting wait_for_updates call returns with the post (a long-poll, no notifications)."""
    plan = bench.plan
    url = bench.ours.url
    samples = Samples()
    async with (
        http_client(url, bench.tokens[WRITER]) as writer,
        http_client(url, bench.tokens[SUBSCRIBER]) as waiter,
    ):
        session_id = await _new_session(writer, "bench: wait_for_updates")
        page = await call(waiter, "get_messages", {"session_id": session_id, "limit": 1})
        cursor = page["feed_cursor"]
        arrival = Arrival()

        async def wait() -> None:
            # Other changes (presence) also end a wait: wait again until the post arrives.
            nonlocal cursor
            while True:
                news = await call(
                    waiter,
                    "wait_for_updates",
                    {"session_id": session_id, "cursor": cursor, "timeout_s": 20},
                )
                cursor = news["next_cursor"]
                if any(u["kind"] == "message_added" for u in news["updates"]):
                    arrival.hear()
                    return

        async def post(i: int) -> float:
            async with anyio.create_task_group() as tg:
                tg.start_soon(wait)
                await anyio.sleep(WAIT_SETTLE_S)
                posted = await _post(writer, session_id, i)
            return posted

        for i in range(plan.warmup + plan.live_samples):
            await _sample(samples, arrival, functools.partial(post, i), i >= plan.warmup)
    return samples


async def run(bench: Bench) -> dict[str, Any]:
    def http_writer() -> AbstractAsyncContextManager[Client]:
        return http_client(bench.ours.url, bench.tokens[WRITER])

    @asynccontextmanager
    async def stdio_writer() -> AsyncIterator[Client]:
        params = ours_stdio(bench.data_dir, bench.creds, bench.tokens[WRITER], WRITER)
        async with stdio_client(params, bench.log_path("writer-stdio"), mode=LEGACY) as client:
            yield client

    rows = [
        row(
            "notifications/resources/updated (2025-11-25, resources/subscribe)",
            "notify_2025",
            await notify_2025(bench, http_writer, "2025"),
            era="2025-11-25",
        ),
        row(
            "subscriptions/listen event (2026-07-28)",
            "notify_2026",
            await notify_2026(bench),
            era="2026-07-28",
        ),
        row("wait_for_updates returns", "wait_for_updates", await wait_for_updates(bench)),
        row(
            "notifications/resources/updated, writer on another server process (stdio)",
            "notify_cross",
            await notify_2025(bench, stdio_writer, "cross-process"),
            era="2025-11-25",
        ),
    ]
    return {
        "client": "official mcp client; writer and subscriber are separate connections and agents",
        "transport": "streamable HTTP (the cross-process writer: stdio)",
        "rows": rows,
    }
