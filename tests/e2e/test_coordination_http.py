"""Session locks against real server processes over streamable HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio

from tests.e2e.conftest import ADMIN_KEY, HttpServer, http_client, start_http_server, stop
from tests.mcp.conftest import ok

WORK = "coordinate_session_work"


async def _headers(url: str, agent_id: str) -> dict[str, str]:
    async with http_client(url, mode="2026-07-28") as client:  # no identity yet: 2026 era
        result = await ok(
            client, "authenticate_agent", agent_id=agent_id, agent_type="claude", api_key=ADMIN_KEY
        )
    return {"Authorization": f"Bearer {result['token']}"}


async def _try_lock(url: str, headers: dict[str, str], session_id: str, out: list[Any]) -> None:
    async with http_client(url, headers=headers) as client:
        result = await client.call_tool(WORK, {"session_id": session_id, "action": "lock"})
        out.append(result.structured_content)


async def test_two_agents_racing_for_a_lock_over_http_only_one_wins(
    http_server: HttpServer,
) -> None:
    agents = ["alice", "bob", "carol", "dave"]
    headers = {agent: await _headers(http_server.url, agent) for agent in agents}
    async with http_client(http_server.url, headers=headers["alice"]) as alice:
        session_id = (await ok(alice, "create_session", purpose="race"))["session"]["id"]
    results: list[Any] = []
    async with anyio.create_task_group() as tg:
        for agent in agents:
            tg.start_soon(_try_lock, http_server.url, headers[agent], session_id, results)
    winners = [r for r in results if r["success"]]
    losers = [r for r in results if not r["success"]]
    assert len(winners) == 1
    assert {r["code"] for r in losers} == {"SESSION_LOCKED"}
    assert {r["details"]["holders"][0] for r in losers} == {winners[0]["lock"]["holder"]}


async def test_a_lock_holds_across_server_processes_and_restarts(data_dir: Path) -> None:
    first = start_http_server(data_dir)
    second = start_http_server(data_dir)
    try:
        alice = await _headers(first.url, "alice")
        bob = await _headers(second.url, "bob")
        async with http_client(first.url, headers=alice) as client:
            session_id = (await ok(client, "create_session", purpose="shared"))["session"]["id"]
            granted = await ok(client, WORK, session_id=session_id, action="lock")
        async with http_client(second.url, headers=bob) as client:
            refused = await client.call_tool(WORK, {"session_id": session_id, "action": "lock"})
            assert refused.structured_content is not None
            assert refused.structured_content["code"] == "SESSION_LOCKED"

        stop(first)
        first = start_http_server(data_dir)  # a restart keeps the lock: it lives in the database
        async with http_client(first.url, headers=bob) as client:
            status = await ok(client, WORK, session_id=session_id, action="status")
            assert [lock["holder"] for lock in status["locks"]] == ["alice"]
        async with http_client(second.url, headers=alice) as client:
            await ok(client, WORK, session_id=session_id, action="unlock")
        async with http_client(first.url, headers=bob) as client:
            taken = await ok(client, WORK, session_id=session_id, action="lock")
            assert taken["lock"]["fencing_token"] > granted["lock"]["fencing_token"]
    finally:
        stop(first)
        stop(second)
