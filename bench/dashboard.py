"""The dashboard's live streams against MCP calls (issue 12): ``add_message`` latency with
no dashboard open, then with many browsers' streams open on the very session the agent
posts to (each post wakes every stream, which reads the feed and sends the post).

Two rows: the streams on the very session the agent posts to, and on another session
(dashboards left open elsewhere). One connection posts: a quiet block, then twice as many
calls with the streams open (read all along, as browsers would), then a quiet block again,
so the machine's drift shows on both sides.
"""

from __future__ import annotations

import re
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
from mcp import Client

from bench.clients import call, http_client
from bench.context import ADMIN, Bench
from bench.measure import Samples, say, tool
from bench.stats import ratio, summarize

STREAM = re.compile(r'data-stream="([^"]+)"')
DELIVERY_TIMEOUT_S = 30.0
TIMES = "\u00d7"


@dataclass
class _Delivered:
    """Posts the streams received; ``all_in`` is set once ``expected`` have."""

    count: int = 0
    expected: int | None = None
    all_in: anyio.Event = field(default_factory=anyio.Event)

    def one(self) -> None:
        self.count += 1
        self._check()

    def expect(self, expected: int) -> None:
        self.expected = expected
        self._check()

    def _check(self) -> None:
        if self.expected is not None and self.count >= self.expected:
            self.all_in.set()


async def _signed_in(base: str, admin_key: str, n: int) -> httpx2.AsyncClient:
    """The ``n``-th viewer, a human of its own (streams are capped per identity)."""
    http = httpx2.AsyncClient(base_url=base, timeout=60)
    form = {"credential": admin_key, "agent_id": f"bench-viewer-{n}", "agent_type": "human"}
    response = await http.post("/ui/signin", data=form)
    if response.status_code != 303:
        await http.aclose()
        raise RuntimeError(f"dashboard sign-in: {response.status_code}")
    return http


async def _drain(
    http: httpx2.AsyncClient, url: str, opened: anyio.Event, delivered: _Delivered
) -> None:
    async with http.stream("GET", url) as response:
        if response.status_code != 200:
            raise RuntimeError(f"stream: {response.status_code}")
        opened.set()
        async for line in response.aiter_lines():
            if line.startswith("event: post"):
                delivered.one()


async def run(bench: Bench) -> dict[str, Any]:
    async with http_client(bench.ours.url, bench.tokens[ADMIN]) as agent:
        rows = [await _row(bench, agent, same=True), await _row(bench, agent, same=False)]
    return {
        "client": "official mcp client, one connection, one call at a time; each stream read "
        "by its own signed-in httpx client",
        "transport": "streamable HTTP; Server-Sent Events",
        "rows": rows,
    }


async def _row(bench: Bench, agent: Client, *, same: bool) -> dict[str, Any]:
    """The streams watch the session the agent posts to (``same``), or another one."""
    plan = bench.plan
    streams = plan.dashboard_streams
    base = bench.ours.url.removesuffix("/mcp")
    per_block = max(plan.min_samples, plan.iterations // 2)
    quiet, watched = Samples(), Samples()
    delivered = _Delivered()
    posted = (await call(agent, "create_session", {"purpose": "bench: dashboard"}))["session"]
    session = posted["id"]
    shown = session
    if not same:
        other = await call(agent, "create_session", {"purpose": "bench: dashboard, watched"})
        shown = other["session"]["id"]
    post = tool(agent, "add_message", lambda i: {"session_id": session, "content": f"news {i}"})
    async with AsyncExitStack() as stack:
        for i in range(plan.warmup):
            await post(i)
        viewers = []
        for n in range(streams):
            viewers.append(await _signed_in(base, bench.creds.admin_key, n))
            stack.push_async_callback(viewers[-1].aclose)
        n = plan.warmup
        for _ in range(per_block):
            await quiet.take(post, n)
            n += 1
        # The page, read now: its stream starts after the quiet posts.
        found = STREAM.search((await viewers[0].get(f"/ui/sessions/{shown}")).text)
        if found is None:
            raise RuntimeError("no stream on the session page")
        url = found.group(1).replace("&amp;", "&")
        async with anyio.create_task_group() as tg:
            opened = [anyio.Event() for _ in viewers]
            for http, event in zip(viewers, opened, strict=True):
                tg.start_soon(_drain, http, url, event, delivered)
            for event in opened:
                await event.wait()
            for _ in range(2 * per_block):
                await watched.take(post, n)
                n += 1
            delivered.expect(streams * len(watched.latencies) if same else 0)
            with anyio.move_on_after(DELIVERY_TIMEOUT_S):  # the last posts reach every stream
                await delivered.all_in.wait()
            tg.cancel_scope.cancel()
        for _ in range(per_block):
            await quiet.take(post, n)
            n += 1
    where = "its session" if same else "another session"
    row: dict[str, Any] = {
        "name": f"add_message with {streams} dashboard streams open on {where}",
        "op": "add_message_streams" if same else "add_message_streams_elsewhere",
        "server": "ours",
        "streams": streams,
        "delivered": delivered.count,
        "expected": delivered.expected,
    }
    row.update(summarize(watched.latencies, watched.errors))
    row["quiet"] = summarize(quiet.latencies, quiet.errors)
    for q in ("p50", "p95"):
        row[f"ratio_{q}"] = ratio(row.get(f"{q}_ms"), row["quiet"].get(f"{q}_ms"))
    say(
        f"  {row['name']}: p50 {row.get('p50_ms')} ms against {row['quiet'].get('p50_ms')} ms "
        f"quiet ({row.get('ratio_p50')}x); {delivered.count} of {delivered.expected} delivered"
    )
    return row


def markdown(section: dict[str, Any], target: Any) -> str:
    lines = [
        f"{section['client']}; {section['transport']}. A quiet block, the calls with the "
        "streams open, a quiet block again, on one connection; the ratio is with streams "
        "\u00f7 quiet at the same percentile.",
        "",
        f"| measurement | p50 ms | p95 ms | quiet p50 ms | quiet p95 ms | {TIMES}quiet p50 "
        f"| {TIMES}quiet p95 | delivered | target |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in section["rows"]:
        quiet = row["quiet"]
        lines.append(
            f"| {row['name']} | {row.get('p50_ms')} | {row.get('p95_ms')} "
            f"| {quiet.get('p50_ms')} | {quiet.get('p95_ms')} | {row.get('ratio_p50')}{TIMES} "
            f"| {row.get('ratio_p95')}{TIMES} | {row['delivered']} of {row['expected']} "
            f"| {target(row)} |"
        )
    return "\n".join(lines)
