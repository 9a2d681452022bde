"""Real MCP clients, in memory, against a server built on the test's app.

Each agent gets its own server instance on the shared app, with its token as the
connection's identity (as a stdio server launched for that agent would have).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from mcp import Client
from mcp_types import CallToolResult

from shared_context_server.app import App
from shared_context_server.domain.models import Permission
from shared_context_server.domain.principal import Principal
from shared_context_server.mcp.identity import AmbientCredential
from shared_context_server.mcp.server import build_server
from tests.conftest import ADMIN, READ, READ_WRITE

MODES = ["legacy", "2026-07-28"]
Connect = Callable[..., Any]


def token_for(
    app: App,
    agent_id: str,
    agent_type: str = "claude",
    permissions: frozenset[Permission] = READ_WRITE,
) -> str:
    token, _ = app.auth.issue_token(Principal(agent_id, agent_type, permissions))
    return token


@asynccontextmanager
async def connect_client(
    app: App,
    token: str | None = None,
    *,
    mode: str = "legacy",
    message_handler: Callable[[Any], Awaitable[None]] | None = None,
) -> AsyncIterator[Client]:
    server = build_server(app, AmbientCredential(token) if token else None)
    async with Client(
        server._mcp_server, mode=mode, message_handler=message_handler, cache=None
    ) as client:
        yield client


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def tokens(app: App) -> dict[str, str]:
    return {
        "alice": token_for(app, "alice", "claude"),
        "bob": token_for(app, "bob", "claude"),
        "carol": token_for(app, "carol", "gemini"),
        "root": token_for(app, "root", "gemini", ADMIN),
        "reader": token_for(app, "reader", "claude", READ),
    }


async def ok(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert isinstance(result, CallToolResult)
    assert not result.is_error, result.structured_content or result.content
    assert result.structured_content is not None
    assert result.structured_content["success"] is True
    return result.structured_content


async def fails(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """Calls a tool that must fail; returns the structured error."""
    result = await client.call_tool(tool, arguments)
    assert isinstance(result, CallToolResult)
    assert result.is_error, result.structured_content
    error = result.structured_content
    assert error is not None
    assert error["success"] is False
    assert isinstance(error["code"], str)
    assert error["error"]
    return error
