"""Tool profiles: a setting chooses which tools are exposed."""

from __future__ import annotations

import pytest
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from shared_context_server.app import App
from shared_context_server.mcp.tools import CORE
from tests.mcp.conftest import connect_client, fails, ok
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


# --- SCS_AUTH_TOKEN_PARAM=false: no auth_token argument, the connection's identity ------


def _lean(app: App, profile: str = "all") -> None:
    app.settings = app.settings.model_copy(
        update={"tool_profile": profile, "auth_token_param": False}
    )


def _takes_auth_token(tool: object) -> bool:
    return "auth_token" in tool.input_schema["properties"]  # type: ignore[attr-defined]


async def test_by_default_every_tool_but_authentication_takes_auth_token(app: App) -> None:
    tools = await _tools(app, "all")
    assert {name for name, tool in tools.items() if not _takes_auth_token(tool)} == {
        "authenticate_agent"
    }


@pytest.mark.parametrize("profile", ["all", "core"])
async def test_without_the_parameter_no_tool_lists_auth_token(app: App, profile: str) -> None:
    _lean(app, profile)
    async with connect_client(app) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == (TOOLS if profile == "all" else CORE)
    # refresh_token's auth_token is the token it swaps, not an identity: it stays required.
    kept = {name for name, tool in tools.items() if _takes_auth_token(tool)}
    assert kept == ({"refresh_token"} if profile == "all" else set())
    if profile == "all":
        assert "auth_token" in tools["refresh_token"].input_schema["required"]


async def test_without_the_parameter_calls_authenticate_from_the_connection(
    app: App, tokens: dict[str, str]
) -> None:
    _lean(app)
    async with connect_client(app, tokens["alice"]) as alice:
        session = (await ok(alice, "create_session", purpose="lean"))["session"]
        assert session["created_by"] == "alice"
        posted = await ok(alice, "add_message", session_id=session["id"], content="hi")
        assert posted["message"]["sender"] == "alice"
        refreshed = await ok(alice, "refresh_token", auth_token=tokens["alice"])
        assert refreshed["agent_id"] == "alice"
    async with connect_client(app) as anonymous:
        refused = await fails(anonymous, "list_sessions")
        assert refused["code"] == "AUTH_REQUIRED"


async def test_without_the_parameter_passing_auth_token_is_invalid_input(
    app: App, tokens: dict[str, str]
) -> None:
    _lean(app)
    async with connect_client(app) as anonymous:
        refused = await fails(anonymous, "list_sessions", auth_token=tokens["alice"])
    assert refused["code"] == "INVALID_INPUT"
    assert "auth_token" in refused["error"]


@pytest.mark.parametrize("param", [True, False])
async def test_the_instructions_say_how_to_authenticate_as_the_tools_do(
    app: App, param: bool
) -> None:
    app.settings = app.settings.model_copy(update={"auth_token_param": param})
    async with connect_client(app) as client:
        instructions = client.instructions or ""
    assert ("auth_token" in instructions) is param
    assert "session://{session_id}" in instructions
