"""An unknown tool is a JSON-RPC -32602 error (MCP: a protocol error, not a tool's result)
from a real server process, in both eras, over streamable HTTP and stdio; quietly."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from tests.e2e.conftest import ADMIN_KEY, HttpServer, http_client, server_env

MODES = ["legacy", "2026-07-28"]
UNKNOWN = {
    "success": False,
    "code": "INVALID_INPUT",
    "error": "unknown tool 'no_such_tool'",
    "details": {"tool": "no_such_tool"},
}


async def _refused(client: Client) -> None:
    with pytest.raises(MCPError) as refused:
        await client.call_tool("no_such_tool", {"key": "k"})
    assert refused.value.error.code == INVALID_PARAMS
    assert refused.value.error.data == UNKNOWN
    # The connection is fine afterwards.
    assert "list_sessions" in {tool.name for tool in (await client.list_tools()).tools}


@pytest.mark.parametrize("mode", MODES)
async def test_an_unknown_tool_over_http_is_invalid_params(server: HttpServer, mode: str) -> None:
    # A 2025 session needs an identity to open; a 2026 request may come without one.
    key = {"Authorization": f"Bearer {ADMIN_KEY}"} if mode == "legacy" else None
    async with http_client(server.url, mode=mode, headers=key) as client:
        await _refused(client)


@pytest.mark.parametrize("mode", MODES)
async def test_an_unknown_tool_over_stdio_is_invalid_params_and_quiet(
    tmp_path: Path, mode: str
) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "shared_context_server", "serve", "--transport", "stdio"],
        env=server_env(tmp_path / "data", SCS_AUTH_TOKEN=ADMIN_KEY, SCS_LOG_LEVEL="DEBUG"),
    )
    stderr = tmp_path / "stderr.log"
    with stderr.open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode=mode, cache=None) as client:
            await _refused(client)
    log = stderr.read_text()
    assert "Traceback" not in log, log
    assert not re.search(r"\b(CRITICAL|ERROR|WARNING)\b", log), log
