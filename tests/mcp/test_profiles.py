"""Tool profiles: a setting chooses which tools are exposed."""

from __future__ import annotations

import pytest
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from shared_context_server.app import App
from shared_context_server.mcp.tools import CORE
from tests.mcp.conftest import connect_client, ok
from tests.mcp.test_catalogue import TOOLS


async def _tools(app: App, profile: str) -> dict[str, object]:
    app.settings = app.settings.model_copy(update={"tool_profile": profile})
    async with connect_client(app) as client:
        return {tool.name: tool for tool in (await client.list_tools()).tools}


async def test_the_default_profile_exposes_every_tool(app: App) -> None:
    assert set(await _tools(app, "all")) == TOOLS


async def test_the_core_profile_exposes_an_agents_everyday_set(app: App) -> None:
    assert set(await _tools(app, "core")) == CORE


async def test_the_readonly_profile_exposes_only_tools_that_change_nothing(app: App) -> None:
    tools = await _tools(app, "readonly")
    assert {"get_messages", "search_context", "wait_for_updates"} <= set(tools)
    for name, tool in tools.items():
        if name not in {"authenticate_agent", "refresh_token"}:
            assert tool.annotations.read_only_hint is True, name  # type: ignore[attr-defined]
    assert "add_message" not in tools


@pytest.mark.parametrize("profile", ["core", "readonly"])
async def test_a_tool_outside_the_profile_cannot_be_called(
    app: App, tokens: dict[str, str], profile: str
) -> None:
    app.settings = app.settings.model_copy(update={"tool_profile": profile})
    async with connect_client(app, tokens["alice"]) as client:
        with pytest.raises(MCPError) as refused:
            await client.call_tool("delete_memory", {"key": "k"})
        assert refused.value.error.code == INVALID_PARAMS
        assert refused.value.error.data["code"] == "INVALID_INPUT"
        await ok(client, "list_sessions")
