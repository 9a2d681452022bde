"""Sequential latency of each tool, one call after another, over streamable HTTP and stdio."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from mcp import Client

from bench.clients import call, http_client, stdio_client
from bench.context import ADMIN, READER, Bench
from bench.measure import Call, Samples, paired, row, tool
from bench.seed import SeededSession
from bench.servers import floor_stdio, ours_stdio
from bench.stats import with_floor
from bench.text import SEARCH_QUERIES, message_text

MEMORY_KEYS = 50
Connect = Callable[[], AbstractAsyncContextManager[Client]]


def _lock_round_trip(client: Client, session_id: str) -> Call:
    """coordinate_session_work lock then unlock: one round trip."""

    async def run(i: int) -> str | None:
        for action in ("lock", "unlock"):
            arguments = {"session_id": session_id, "action": action, "lock_type": "write"}
            result = await client.call_tool("coordinate_session_work", arguments)
            if result.is_error:
                return f"{action}: {result.structured_content or result.content}"
        return None

    return run


def _per_session(client: Client, s: SeededSession) -> list[tuple[str, Call]]:
    sid = s.session_id
    ids = s.public_ids
    return [
        (
            "add_message",
            tool(client, "add_message", lambda i: {"session_id": sid, "content": message_text(i)}),
        ),
        ("get_messages", tool(client, "get_messages", lambda i: {"session_id": sid, "limit": 50})),
        ("get_message", tool(client, "get_message", lambda i: {"message_id": ids[i % len(ids)]})),
        ("get_context", tool(client, "get_context", lambda i: {"session_id": sid})),
        (
            "search_context",
            tool(
                client,
                "search_context",
                lambda i: {"session_id": sid, "query": SEARCH_QUERIES[i % len(SEARCH_QUERIES)]},
            ),
        ),
    ]


async def _ours(
    bench: Bench, client: Client, noop: Call, pooled: Samples, transport: str
) -> list[dict[str, Any]]:
    plan = bench.plan

    async def measure(name: str, op: str, run: Call, **attributes: Any) -> dict[str, Any]:
        samples, floor = await paired(run, noop, plan)
        pooled.latencies += floor.latencies
        pooled.errors += floor.errors
        pooled.first_error = pooled.first_error or floor.first_error
        floor_row = row(f"floor: noop, paired with {name}", "noop", floor, server="floor")
        measured = row(name, op, samples, transport=transport, server="ours", **attributes)
        return with_floor(measured, floor_row)

    rows = []
    for seeded in bench.seeded:
        for op, run in _per_session(client, seeded):
            name = f"{op} ({seeded.size:,} msgs)"
            rows.append(await measure(name, op, run, size=seeded.size))

    def memory_key(i: int) -> str:
        return f"bench.note.{i % MEMORY_KEYS}"

    value = {"summary": message_text(1), "files": ["src/a.py", "src/b.py"], "step": 3}
    for i in range(MEMORY_KEYS):  # get_memory reads keys that exist
        await call(client, "set_memory", {"key": memory_key(i), "value": value})
    lock_session = (await call(client, "create_session", {"purpose": "bench: locks"}))["session"][
        "id"
    ]
    singles: list[tuple[str, str, Call]] = [
        (
            "set_memory",
            "set_memory",
            tool(client, "set_memory", lambda i: {"key": memory_key(i), "value": value}),
        ),
        ("get_memory", "get_memory", tool(client, "get_memory", lambda i: {"key": memory_key(i)})),
        (
            "authenticate_agent",
            "authenticate_agent",
            tool(
                client,
                "authenticate_agent",
                lambda i: {
                    "agent_id": "bench-auth",
                    "agent_type": "claude",
                    "api_key": bench.creds.admin_key,
                },
            ),
        ),
        ("lock + unlock", "lock_round_trip", _lock_round_trip(client, lock_session)),
        (
            "get_audit_log (100)",
            "get_audit_log",
            # An admin's token as auth_token: the connection's agent is not an admin.
            tool(
                client, "get_audit_log", lambda i: {"limit": 100, "auth_token": bench.tokens[ADMIN]}
            ),
        ),
    ]
    for name, op, run in singles:
        rows.append(await measure(name, op, run))
    return rows


async def _section(bench: Bench, ours: Connect, floor: Connect, transport: str) -> dict[str, Any]:
    """Each of our calls is paired with a floor call just before it, and each row's ratios
    are to its own paired floor samples: a drift in the machine's load weighs on both
    sides of a ratio alike. The section's floor row pools every pair."""
    pooled = Samples()
    async with floor() as floor_client, ours() as client:
        noop = tool(floor_client, "noop", lambda i: {})
        rows = await _ours(bench, client, noop, pooled, transport)
    floor_row = row("floor: noop", "noop", pooled, transport=transport, server="floor")
    return {
        "client": "official mcp client (mcp Python SDK), one connection, one call at a time",
        "transport": transport,
        "floor": floor_row,
        "rows": rows,
    }


async def run_http(bench: Bench) -> dict[str, Any]:
    token = bench.tokens[READER]
    return await _section(
        bench,
        lambda: http_client(bench.ours.url, token),
        lambda: http_client(bench.floor.url),
        "streamable HTTP",
    )


async def run_stdio(bench: Bench) -> dict[str, Any]:
    params = ours_stdio(bench.data_dir, bench.creds, bench.tokens[READER], READER)
    return await _section(
        bench,
        lambda: stdio_client(params, bench.log_path("ours-stdio")),
        lambda: stdio_client(floor_stdio(), bench.log_path("floor-stdio")),
        "stdio",
    )
