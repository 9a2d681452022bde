"""Concurrent agents with the official client: each its own connection and identity.

All agents run in this process's event loop, so the client library's own CPU cost is part
of what is measured, for our server and the floor alike; the lean section removes it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from mcp import Client

from bench.clients import call, http_client
from bench.context import Bench, agent_ids
from bench.measure import Samples, measured
from bench.stats import ratio, with_floor
from bench.text import message_text

# Per agent: given its connection and index, prepare (untimed) and return one timed call.
Prepare = Callable[[Client, int], Awaitable[Callable[[int], Awaitable[str | None]]]]
WARMUP_CALLS = 3


async def _load(
    url: str, tokens: list[str | None], prepare: Prepare, seconds: float
) -> tuple[Samples, float]:
    """Every agent connects and warms up; then all call in a loop for `seconds`."""
    samples = Samples()
    ready = 0
    all_ready = anyio.Event()
    start = anyio.Event()
    finished = anyio.Event()
    remaining = len(tokens)
    window: dict[str, float] = {}

    async def agent(index: int, token: str | None) -> None:
        nonlocal ready, remaining
        async with http_client(url, token) as client:
            run = await prepare(client, index)
            for i in range(WARMUP_CALLS):
                error = await run(-1 - i)
                if error:
                    samples.failed(error)
            ready += 1
            if ready == len(tokens):
                all_ready.set()
            await start.wait()
            i = 0
            while time.perf_counter() < window["stop"]:
                await samples.take(run, i)
                i += 1
            remaining -= 1
            if remaining == 0:
                window["end"] = time.perf_counter()
                finished.set()
            # Stay connected until everyone is done: a closing connection is load too.
            await finished.wait()

    async with anyio.create_task_group() as tg:
        for index, token in enumerate(tokens):
            tg.start_soon(agent, index, token)
        with anyio.fail_after(120):
            await all_ready.wait()
        window["start"] = time.perf_counter()
        window["stop"] = window["start"] + seconds
        start.set()
    return samples, window["end"] - window["start"]


def _row(
    name: str, op: str, agents: int, layout: str, samples: Samples, elapsed: float
) -> dict[str, Any]:
    result: dict[str, Any] = {"name": name, "op": op, "agents": agents, "layout": layout}
    result["server"] = "floor" if op == "noop" else "ours"
    result["calls"] = len(samples.latencies)
    result["seconds"] = round(elapsed, 2)
    result["throughput"] = round(len(samples.latencies) / elapsed, 1)
    return measured(result, samples)


async def run(bench: Bench) -> dict[str, Any]:
    plan = bench.plan
    ids = agent_ids(max(plan.agents))
    tokens = [bench.tokens[a] for a in ids]
    async with http_client(bench.ours.url, tokens[0]) as owner:
        shared = (await call(owner, "create_session", {"purpose": "bench: one session"}))[
            "session"
        ]["id"]

    async def noop(client: Client, index: int) -> Callable[[int], Awaitable[str | None]]:
        async def run(i: int) -> str | None:
            result = await client.call_tool("noop", {})
            return f"noop: {result.content}" if result.is_error else None

        return run

    def writer(one_session: bool) -> Prepare:
        async def prepare(client: Client, index: int) -> Callable[[int], Awaitable[str | None]]:
            session_id = shared
            if not one_session:
                created = await call(client, "create_session", {"purpose": f"bench: agent {index}"})
                session_id = created["session"]["id"]

            async def run(i: int) -> str | None:
                arguments = {"session_id": session_id, "content": message_text(index * 1000 + i)}
                result = await client.call_tool("add_message", arguments)
                if result.is_error:
                    return f"add_message: {result.structured_content or result.content}"
                return None

            return run

        return prepare

    rows = []
    for count in plan.agents:
        samples, elapsed = await _load(bench.floor.url, [None] * count, noop, plan.load_seconds)
        floor = _row(
            f"floor: noop, {count} client{'s' if count > 1 else ''}",
            "noop",
            count,
            "floor",
            samples,
            elapsed,
        )
        rows.append(floor)
        for one_session, layout in ((True, "one session"), (False, "separate sessions")):
            samples, elapsed = await _load(
                bench.ours.url, list(tokens[:count]), writer(one_session), plan.load_seconds
            )
            name = f"add_message, {count} agent{'s' if count > 1 else ''}, {layout}"
            ours = with_floor(_row(name, "add_message", count, layout, samples, elapsed), floor)
            ours["floor_throughput"] = floor["throughput"]
            ours["throughput_ratio"] = ratio(ours["throughput"], floor["throughput"])
            rows.append(ours)
    return {
        "client": "official mcp client, one connection and identity per agent, one process",
        "transport": "streamable HTTP",
        "seconds_per_run": plan.load_seconds,
        "rows": rows,
    }
