"""Security: no path lets an agent read another agent's memory or private messages."""

from __future__ import annotations

import json

import pytest
from mcp.shared.exceptions import MCPError

from shared_context_server.app import App
from tests.mcp.conftest import connect_client, fails, ok
from tests.mcp.live import Heard, settle


async def test_another_agents_memory_is_unreachable(app: App, tokens: dict[str, str]) -> None:
    async with connect_client(app, tokens["alice"]) as alice:
        session_id = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        await ok(alice, "set_memory", key="api.secret", value="hunter2")
        await ok(alice, "set_memory", key="api.secret", value="scoped", session_id=session_id)
    for agent in ("bob", "root"):
        async with connect_client(app, tokens[agent]) as other:
            assert (await fails(other, "get_memory", key="api.secret"))["code"] == (
                "MEMORY_NOT_FOUND"
            )
            assert (await fails(other, "get_memory", key="api.secret", session_id=session_id))[
                "code"
            ] == "MEMORY_NOT_FOUND"
            assert (await ok(other, "list_memory", all_scopes=True))["count"] == 0
            assert (await fails(other, "delete_memory", key="api.secret"))["code"] == (
                "MEMORY_NOT_FOUND"
            )
            with pytest.raises(MCPError) as denied:
                await other.read_resource("agent://alice/memory")
            assert denied.value.error.data["code"] == "PERMISSION_DENIED"
    async with connect_client(app, tokens["alice"]) as alice:
        assert (await ok(alice, "get_memory", key="api.secret"))["entry"]["value"] == "hunter2"


async def test_another_agents_private_messages_are_unreachable(
    app: App, tokens: dict[str, str]
) -> None:
    async with connect_client(app, tokens["alice"]) as alice:
        session_id = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        note = (await ok(alice, "add_private_note", session_id=session_id, content="zebra42"))[
            "message"
        ]
    heard = Heard()
    for agent in ("bob", "root"):
        async with connect_client(app, tokens[agent], message_handler=heard) as other:
            await other.subscribe_resource(f"session://{session_id}")
            assert (await fails(other, "get_message", message_id=note["id"]))["code"] == (
                "MESSAGE_NOT_FOUND"
            )
            assert (await ok(other, "get_messages", session_id=session_id))["count"] == 0
            assert (await ok(other, "get_context", session_id=session_id))["count"] == 0
            hits = await ok(
                other, "search_context", session_id=session_id, query="zebra42", fuzzy_threshold=0
            )
            assert hits["count"] == 0
            assert (await ok(other, "search_by_sender", session_id=session_id, sender="alice"))[
                "count"
            ] == 0
            advanced = await ok(other, "get_messages_advanced", session_id=session_id)
            assert advanced["count"] == 0
            waited = await ok(
                other, "wait_for_updates", session_id=session_id, cursor=0, timeout_s=0
            )
            assert [u for u in waited["updates"] if u["kind"] == "message_added"] == []
            resource = await other.read_resource(f"session://{session_id}")
            assert json.loads(resource.contents[0].text)["messages"] == []  # type: ignore[union-attr]
            reply = await fails(
                other,
                "add_message",
                session_id=session_id,
                content="re",
                parent_message_id=note["id"],
            )
            assert reply["code"] == "INVALID_PARENT"
            async with connect_client(app, tokens["alice"]) as alice:
                await ok(alice, "add_private_note", session_id=session_id, content="more")
            await settle()
    assert heard.updated == []


async def test_arguments_cannot_impersonate_another_agent(app: App, tokens: dict[str, str]) -> None:
    async with connect_client(app, tokens["bob"]) as bob:
        session_id = (await ok(bob, "create_session", purpose="p"))["session"]["id"]
        for tool, args in [
            ("add_message", {"session_id": session_id, "content": "x", "sender": "alice"}),
            ("set_memory", {"key": "k", "value": 1, "agent_id": "alice"}),
            ("create_session", {"purpose": "p", "created_by": "alice"}),
        ]:
            assert (await fails(bob, tool, **args))["code"] == "INVALID_INPUT", tool


async def test_a_shared_connection_filters_each_subscription_by_who_made_it(
    app: App, tokens: dict[str, str]
) -> None:
    """Sub-agents share their orchestrator's connection with their own auth_token; a later
    caller on the connection must not widen what an earlier subscription hears."""
    heard = Heard()
    async with connect_client(app, tokens["carol"], message_handler=heard) as shared:
        session_id = (await ok(shared, "create_session", purpose="p"))["session"]["id"]
        # Alice is active in the session already: her post below brings no presence news.
        await ok(shared, "get_session", session_id=session_id, auth_token=tokens["alice"])
        await shared.subscribe_resource(f"session://{session_id}")
        await ok(
            shared,
            "add_message",
            session_id=session_id,
            content="for claude agents",
            visibility="agent_only",
            auth_token=tokens["alice"],
        )
        await settle()
        assert heard.updated == []
        await ok(shared, "add_message", session_id=session_id, content="for all")
        await heard.wait_for(lambda: heard.updated == [f"session://{session_id}"])
