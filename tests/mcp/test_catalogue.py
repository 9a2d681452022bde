from shared_context_server.app import App
from tests.mcp.conftest import connect_client

TOOLS = {
    "authenticate_agent",
    "refresh_token",
    "create_session",
    "get_session",
    "list_sessions",
    "update_session",
    "add_message",
    "add_private_note",
    "get_message",
    "get_messages",
    "get_context",
    "search_context",
    "search_by_sender",
    "search_by_timerange",
    "set_memory",
    "get_memory",
    "list_memory",
    "delete_memory",
    "get_audit_log",
    "verify_audit_log",
    "get_agent_activity_summary",
    "set_message_visibility",
    "get_messages_advanced",
    "wait_for_updates",
    "delegate_token",
    "revoke_token",
    "register_agent_presence",
    "get_active_agents",
    "coordinate_session_work",
}


async def test_every_tool_is_listed_with_schemas_annotations_and_a_description(
    app: App, mode: str
) -> None:
    async with connect_client(app, mode=mode) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description, tool.name
        assert len(tool.description) > 20, tool.name
        assert tool.output_schema is not None, tool.name
        assert "success" in tool.output_schema["properties"], tool.name
        assert tool.annotations is not None, tool.name
        assert tool.annotations.read_only_hint is not None, tool.name


async def test_input_schemas_carry_the_documented_limits(app: App) -> None:
    async with connect_client(app) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    add = tools["add_message"].input_schema["properties"]
    assert add["content"]["maxLength"] == 100_000
    assert set(add["visibility"]["enum"]) == {"public", "private", "agent_only", "admin_only"}
    assert tools["get_messages"].input_schema["properties"]["limit"]["maximum"] == 1_000
    assert tools["search_context"].input_schema["properties"]["limit"]["maximum"] == 200
    assert tools["set_memory"].input_schema["properties"]["key"]["maxLength"] == 255


async def test_read_tools_are_annotated_read_only_and_writes_are_not(app: App) -> None:
    async with connect_client(app) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for name in ("get_session", "get_messages", "search_context", "get_memory", "list_memory"):
        assert tools[name].annotations.read_only_hint is True, name  # type: ignore[union-attr]
    for name in ("add_message", "create_session", "set_memory"):
        assert tools[name].annotations.read_only_hint is False, name  # type: ignore[union-attr]
    assert tools["delete_memory"].annotations.destructive_hint is True  # type: ignore[union-attr]
