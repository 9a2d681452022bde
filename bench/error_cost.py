"""The cost of an error call against a success (issue 8): a refused call of a tool and a
successful call of the same tool, on the same connection, one right after the other.

Each pair is measured like a sequential row (``measure.paired``: warm-up, then each refused
call follows one successful call), so both sides see the same moment of the machine. A
refused call that does not fail with its expected code counts as an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp import Client

from bench.clients import MODERN, call, http_client
from bench.context import ADMIN, READER, Bench
from bench.measure import Call, Samples, paired, say, tool
from bench.stats import ratio, summarize

Arguments = Callable[[int], dict[str, Any]]
MISSING = "session_0000000000000000"


def refused(client: Client, name: str, arguments: Arguments, code: str) -> Call:
    """A Call that must fail with ``code``; anything else is an error of the measurement."""

    async def run(i: int) -> str | None:
        result = await client.call_tool(name, arguments(i))
        got = (result.structured_content or {}).get("code") if result.is_error else "success"
        return None if got == code else f"{name}: expected {code}, got {got}"

    return run


def _row(name: str, op: str, code: str, bad: Samples, good: Samples) -> dict[str, Any]:
    row: dict[str, Any] = {"name": name, "op": op, "code": code, "server": "ours"}
    row.update(summarize(bad.latencies, bad.errors + good.errors))
    row["success"] = summarize(good.latencies, good.errors)
    for q in ("p50", "p95", "p99"):
        row[f"ratio_{q}"] = ratio(row.get(f"{q}_ms"), row["success"].get(f"{q}_ms"))
    first = bad.first_error or good.first_error
    if first:
        row["first_error"] = first
    say(
        f"  {name}: refused p50 {row.get('p50_ms')} ms, success p50 "
        f"{row['success'].get('p50_ms')} ms, ratio {row.get('ratio_p50')}"
    )
    return row


async def _pairs(bench: Bench, client: Client) -> list[dict[str, Any]]:
    admin = bench.tokens[ADMIN]
    own = (await call(client, "create_session", {"purpose": "bench: errors"}))["session"]["id"]
    other = await call(
        client, "create_session", {"purpose": "bench: not yours", "auth_token": admin}
    )
    theirs = other["session"]["id"]
    await call(client, "add_message", {"session_id": own, "content": "hello"})
    pairs: list[tuple[str, str, Arguments, Arguments, str]] = [
        (
            "get_session",
            "get_session",
            lambda i: {"session_id": own},
            lambda i: {"session_id": MISSING},
            "SESSION_NOT_FOUND",
        ),
        (
            "get_messages (50)",
            "get_messages",
            lambda i: {"session_id": own, "limit": 50},
            lambda i: {"session_id": MISSING, "limit": 50},
            "SESSION_NOT_FOUND",
        ),
        (
            "add_message",
            "add_message",
            lambda i: {"session_id": own, "content": f"posted {i}"},
            lambda i: {"session_id": MISSING, "content": f"posted {i}"},
            "SESSION_NOT_FOUND",
        ),
        (
            "update_session",
            "update_session",
            lambda i: {"session_id": own, "purpose": f"bench: errors {i % 2}"},
            lambda i: {"session_id": theirs, "purpose": f"bench: errors {i % 2}"},
            "PERMISSION_DENIED",
        ),
    ]
    rows = []
    for name, op, good, bad, code in pairs:
        bad_samples, good_samples = await paired(
            refused(client, op, bad, code), tool(client, op, good), bench.plan
        )
        rows.append(_row(f"{name}: {code} vs success", op, code, bad_samples, good_samples))
    return rows


async def _anonymous(bench: Bench) -> dict[str, Any]:
    """AUTH_REQUIRED: a 2026-07-28 connection without an identity (stateless requests need
    none to reach the server), next to the same connection's call with ``auth_token``."""
    token = bench.tokens[READER]
    async with http_client(bench.ours.url, mode=MODERN) as client:
        bad, good = await paired(
            refused(client, "list_sessions", lambda i: {"limit": 10}, "AUTH_REQUIRED"),
            tool(client, "list_sessions", lambda i: {"limit": 10, "auth_token": token}),
            bench.plan,
        )
    return _row(
        "list_sessions: AUTH_REQUIRED vs success", "list_sessions", "AUTH_REQUIRED", bad, good
    )


async def run(bench: Bench) -> dict[str, Any]:
    async with http_client(bench.ours.url, bench.tokens[READER]) as client:
        rows = await _pairs(bench, client)
    rows.append(await _anonymous(bench))
    return {
        "client": "official mcp client (mcp Python SDK), one connection per row, one call at "
        "a time",
        "transport": "streamable HTTP",
        "rows": rows,
    }


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _x(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}\u00d7"


def markdown(section: dict[str, Any], target: Callable[[dict[str, Any]], str]) -> str:
    """The section's table; ``target`` renders a row's target verdicts."""
    lines = [
        f"{section['client']}; {section['transport']}. Each refused call follows a successful "
        "call of the same tool on the same connection; ratios are refused ÷ success at the "
        "same percentile.",
        "",
        "| measurement | n | refused p50 ms | refused p95 ms | success p50 ms | success p95 ms "
        "| p50 refused÷success | p95 refused÷success | errors | target |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in section["rows"]:
        ok = r["success"]
        errors = str(r.get("errors", 0)) + (
            f" ({r['first_error']})" if r.get("first_error") else ""
        )
        lines.append(
            f"| {r['name']} | {r.get('n', 0)} | {_ms(r.get('p50_ms'))} | {_ms(r.get('p95_ms'))} "
            f"| {_ms(ok.get('p50_ms'))} | {_ms(ok.get('p95_ms'))} | {_x(r.get('ratio_p50'))} "
            f"| {_x(r.get('ratio_p95'))} | {errors} | {target(r)} |"
        )
    return "\n".join(lines)
