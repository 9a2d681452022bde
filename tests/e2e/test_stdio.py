"""The main flow against a real stdio server process, identity from its environment."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from tests.e2e.conftest import ADMIN_KEY, server_env
from tests.mcp.conftest import fails, ok


def stdio_server(data_dir: Path, **env: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "shared_context_server", "serve", "--transport", "stdio"],
        env=server_env(data_dir, **env),
    )


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_main_flow_over_stdio(data_dir: Path, mode: str) -> None:
    params = stdio_server(
        data_dir,
        SCS_AUTH_TOKEN=ADMIN_KEY,
        SCS_AGENT_ID="cli-agent",
        SCS_AGENT_TYPE="codex",
    )
    async with Client(params, mode=mode, cache=None) as client:
        session = (await ok(client, "create_session", purpose="stdio work"))["session"]
        assert session["created_by"] == "cli-agent"
        message = (await ok(client, "add_message", session_id=session["id"], content="hello"))[
            "message"
        ]
        assert message["sender_type"] == "codex"
        assert (await ok(client, "get_context", session_id=session["id"]))["count"] == 1
        resource = await client.read_resource(f"session://{session['id']}")
        assert "hello" in resource.contents[0].text  # type: ignore[union-attr]
        await ok(client, "set_memory", key="k", value={"a": 1})
        assert (await ok(client, "list_memory"))["count"] == 1


async def test_a_stdio_server_without_an_identity_refuses_work(data_dir: Path) -> None:
    async with Client(stdio_server(data_dir), mode="legacy", cache=None) as client:
        assert (await fails(client, "list_sessions"))["code"] == "AUTH_REQUIRED"
        issued = await ok(client, "authenticate_agent", agent_id="sub", api_key=ADMIN_KEY)
        await ok(client, "list_sessions", auth_token=issued["token"])
