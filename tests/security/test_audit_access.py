"""Security: the audit trail is read by admins only; a summary never shows another agent."""

from __future__ import annotations

from shared_context_server.app import App
from shared_context_server.domain.models import Permission
from tests.mcp.conftest import connect_client, fails, ok, token_for

AUDIT_TOOLS = ("get_audit_log", "verify_audit_log", "get_agent_activity_summary")


async def _activity(app: App, tokens: dict[str, str]) -> str:
    async with connect_client(app, tokens["alice"]) as alice:
        session_id = (await ok(alice, "create_session", purpose="secret plan"))["session"]["id"]
        await ok(alice, "add_message", session_id=session_id, content="x")
    async with connect_client(app, tokens["carol"]) as carol:
        await ok(carol, "add_message", session_id=session_id, content="y")
    return str(session_id)


async def test_without_admin_every_audit_read_of_others_is_refused(
    app: App, tokens: dict[str, str]
) -> None:
    session_id = await _activity(app, tokens)
    for agent in ("alice", "bob", "carol", "reader"):
        async with connect_client(app, tokens[agent]) as client:
            for arguments in (
                {},
                {"session_id": session_id},
                {"agent_id": agent},  # not even one's own records
                {"event_type": "message.added", "limit": 1},
            ):
                error = await fails(client, "get_audit_log", **arguments)
                assert error["code"] == "PERMISSION_DENIED", (agent, arguments)
                assert "records" not in error
            assert (await fails(client, "verify_audit_log"))["code"] == "PERMISSION_DENIED"
            for other in ("alice", "carol", "root", "system"):
                if other == agent:
                    continue
                error = await fails(client, "get_agent_activity_summary", agent_id=other)
                assert error["code"] == "PERMISSION_DENIED", (agent, other)


async def test_a_token_from_another_agent_does_not_lend_admin(
    app: App, tokens: dict[str, str]
) -> None:
    """The connection is an admin's; the auth_token argument names the caller and wins."""
    async with connect_client(app, tokens["root"]) as shared:
        error = await fails(shared, "get_audit_log", auth_token=tokens["bob"])
        assert error["code"] == "PERMISSION_DENIED"
        assert (await fails(shared, "verify_audit_log", auth_token=tokens["bob"]))["code"] == (
            "PERMISSION_DENIED"
        )
        assert (await ok(shared, "get_audit_log", limit=1))["count"] == 1


async def test_a_non_admin_summary_contains_only_themselves(
    app: App, tokens: dict[str, str]
) -> None:
    await _activity(app, tokens)
    for agent in ("alice", "carol", "reader"):
        async with connect_client(app, tokens[agent]) as client:
            for window in ("1h", "24h", "7d", "30d"):
                summary = await ok(client, "get_agent_activity_summary", time_window=window)
                assert {a["agent_id"] for a in summary["agents"]} <= {agent}
            own = await ok(client, "get_agent_activity_summary", agent_id=agent)
            assert {a["agent_id"] for a in own["agents"]} <= {agent}


async def test_without_any_read_permission_there_is_no_summary(app: App) -> None:
    writer_only = token_for(app, "w", "claude", frozenset({Permission.WRITE}))
    async with connect_client(app, writer_only) as client:
        for tool in AUDIT_TOOLS:
            assert (await fails(client, tool))["code"] == "PERMISSION_DENIED", tool
    async with connect_client(app) as anonymous:
        for tool in AUDIT_TOOLS:
            assert (await fails(anonymous, tool))["code"] == "AUTH_REQUIRED", tool


async def test_no_tool_can_change_the_audit_trail(app: App) -> None:
    async with connect_client(app) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for name in AUDIT_TOOLS:
        annotations = tools[name].annotations
        assert annotations is not None
        assert annotations.read_only_hint is True, name
    assert not [name for name in tools if "audit" in name and name not in AUDIT_TOOLS]
