"""The abuse bounds in a real ``scs serve`` process, configured from its environment, on
SQLite and PostgreSQL: anonymous sessions refused, one agent's cap holding while another
works, a slow socket closed, and refused calls leaving no traceback on stderr."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2
import pytest

from tests.e2e.conftest import ADMIN_KEY, HttpServer, http_client, start_http_server, stop
from tests.mcp.conftest import fails, ok
from tests.security.inprocess import ACCEPT, INITIALIZE

MODERN = "2026-07-28"


@pytest.fixture
def server(tmp_path: Path, backend_url: str | None) -> Iterator[HttpServer]:
    env = {
        "SCS_ABUSE_MCP_SESSIONS_PER_AGENT": "1",
        "SCS_ABUSE_HEADER_TIMEOUT_SECONDS": "0.5",
    }
    if backend_url:
        env["SCS_DATABASE_URL"] = backend_url
    running = start_http_server(tmp_path / "data", **env)
    try:
        yield running
    finally:
        stop(running)


async def _token(server: HttpServer, agent_id: str) -> dict[str, str]:
    async with http_client(server.url, mode=MODERN) as client:
        issued = await ok(client, "authenticate_agent", agent_id=agent_id, api_key=ADMIN_KEY)
    return {"Authorization": f"Bearer {issued['token']}"}


async def test_the_bounds_hold_in_a_served_process(server: HttpServer) -> None:
    alice, bob = await _token(server, "alice"), await _token(server, "bob")
    async with httpx2.AsyncClient(timeout=30) as http:
        anonymous = await http.post(server.url, json=INITIALIZE, headers=ACCEPT)
        assert anonymous.status_code == 401
        bad = {**ACCEPT, "Authorization": "Bearer scs_" + "guess" * 8}
        assert (await http.post(server.url, json=INITIALIZE, headers=bad)).status_code == 401
        async with http_client(server.url, headers=alice) as first:
            await ok(first, "list_sessions")
            capped = await http.post(server.url, json=INITIALIZE, headers={**ACCEPT, **alice})
            assert capped.status_code == 429
            assert capped.json()["code"] == "LIMIT_EXCEEDED"
            async with http_client(server.url, headers=bob) as other:
                await ok(other, "create_session", purpose="bob is not capped by alice")
                assert (await fails(other, "get_session", session_id="nope"))["code"] == (
                    "SESSION_NOT_FOUND"
                )

    host, port = server.base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    await writer.drain()
    with anyio.fail_after(5):
        await reader.read()  # closed by the server
    writer.close()

    stop(server)  # its log is complete once it has exited
    assert server.log is not None
    logged = server.log.read_text()
    assert "Traceback" not in logged, logged[-3000:]
    assert "guess" not in logged
