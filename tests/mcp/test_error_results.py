"""Error results every client reads (issue 9, item 1).

A refused call's structured content is valid against its tool's own output schema (the
TypeScript SDK 1.x and MCP Inspector validate it even when ``isError`` is set), success
results still are, each matching only its own branch; an unknown or disabled tool is a
JSON-RPC -32602 error whose data names the tool, not a tool result.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolResult

from shared_context_server.app import App
from shared_context_server.domain.models import KeyBinding, Permission
from shared_context_server.mcp.server import build_server
from tests.conftest import ADMIN, READ
from tests.mcp.conftest import connect_client, token_for

SESSION = "session_0123456789abcdef"
# Each tool with arguments that pass its input schema, and the code it answers a caller
# without an identity with.
REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "authenticate_agent": ({"agent_id": "a", "api_key": "scs_wrong"}, "AUTH_FAILED"),
    "refresh_token": ({"auth_token": "not-a-token"}, "TOKEN_INVALID"),
    "delegate_token": ({"agent_id": "sub", "session_id": SESSION}, "AUTH_REQUIRED"),
    "revoke_token": ({"jti": "j"}, "AUTH_REQUIRED"),
    "create_session": ({"purpose": "p"}, "AUTH_REQUIRED"),
    "get_session": ({"session_id": SESSION}, "AUTH_REQUIRED"),
    "list_sessions": ({}, "AUTH_REQUIRED"),
    "update_session": ({"session_id": SESSION}, "AUTH_REQUIRED"),
    "add_message": ({"session_id": SESSION, "content": "x"}, "AUTH_REQUIRED"),
    "add_private_note": ({"session_id": SESSION, "content": "x"}, "AUTH_REQUIRED"),
    "get_message": ({"message_id": 1}, "AUTH_REQUIRED"),
    "get_messages": ({"session_id": SESSION}, "AUTH_REQUIRED"),
    "get_context": ({"session_id": SESSION}, "AUTH_REQUIRED"),
    "set_message_visibility": (
        {"message_id": 1, "new_visibility": "public", "reason": "r"},
        "AUTH_REQUIRED",
    ),
    "get_messages_advanced": ({"session_id": SESSION}, "AUTH_REQUIRED"),
    "search_context": ({"session_id": SESSION, "query": "q"}, "AUTH_REQUIRED"),
    "search_by_sender": ({"session_id": SESSION, "sender": "a"}, "AUTH_REQUIRED"),
    "search_by_timerange": ({"session_id": SESSION}, "AUTH_REQUIRED"),
    "set_memory": ({"key": "k", "value": 1}, "AUTH_REQUIRED"),
    "get_memory": ({"key": "k"}, "AUTH_REQUIRED"),
    "list_memory": ({}, "AUTH_REQUIRED"),
    "delete_memory": ({"key": "k"}, "AUTH_REQUIRED"),
    "wait_for_updates": ({"timeout_s": 0}, "AUTH_REQUIRED"),
    "get_audit_log": ({}, "AUTH_REQUIRED"),
    "verify_audit_log": ({}, "AUTH_REQUIRED"),
    "get_agent_activity_summary": ({}, "AUTH_REQUIRED"),
    "register_agent_presence": ({}, "AUTH_REQUIRED"),
    "get_active_agents": ({}, "AUTH_REQUIRED"),
    "coordinate_session_work": ({"session_id": SESSION, "action": "status"}, "AUTH_REQUIRED"),
}


async def _validators(client: Client) -> dict[str, Draft202012Validator]:
    """Each listed tool's output schema, checked as JSON Schema 2020-12 (MCP's default)."""
    validators = {}
    for tool in (await client.list_tools()).tools:
        assert tool.output_schema is not None, tool.name
        Draft202012Validator.check_schema(tool.output_schema)
        validators[tool.name] = Draft202012Validator(tool.output_schema)
    return validators


def _branch(validator: Draft202012Validator, content: dict[str, Any]) -> int:
    """Which branch of the schema's ``anyOf`` ``content`` matches; it must match one only."""
    validator.validate(content)
    branches = validator.schema["anyOf"]
    matched = [i for i, b in enumerate(branches) if validator.evolve(schema=b).is_valid(content)]
    assert len(matched) == 1, (matched, content)
    return matched[0]


def _error(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error
    content = result.structured_content
    assert content is not None
    # The text says the same, for clients that show a model only the text.
    assert json.loads(result.content[0].text) == content  # type: ignore[union-attr]
    return content


async def test_every_tools_refusal_is_valid_against_its_output_schema(
    backend_app: App, mode: str
) -> None:
    async with connect_client(backend_app, mode=mode) as anonymous:
        validators = await _validators(anonymous)
        assert set(validators) == set(REFUSED)
        for tool, (arguments, expected) in REFUSED.items():
            error = _error(await anonymous.call_tool(tool, arguments))
            assert error["code"] == expected, (tool, error)
            assert _branch(validators[tool], error) == 1, tool


async def test_refusals_with_an_identity_are_valid_too(backend_app: App, mode: str) -> None:
    reader = token_for(backend_app, "reader", permissions=READ)
    async with connect_client(backend_app, reader, mode=mode) as client:
        validators = await _validators(client)
        for tool, arguments, expected in [
            ("get_session", {"session_id": "nope"}, "SESSION_NOT_FOUND"),
            ("create_session", {"purpose": "p"}, "PERMISSION_DENIED"),
            ("list_sessions", {"limit": 0}, "INVALID_INPUT"),
            ("get_memory", {"key": "missing"}, "MEMORY_NOT_FOUND"),
            ("add_message", {"session_id": "nope", "content": "x" * 100_001}, "LIMIT_EXCEEDED"),
        ]:
            error = _error(await client.call_tool(tool, arguments))
            assert error["code"] == expected, (tool, error)
            assert _branch(validators[tool], error) == 1, tool


async def test_every_tools_success_is_valid_against_its_output_schema(
    backend_app: App, mode: str
) -> None:
    app = backend_app
    _, key = await app.auth.create_api_key(
        "k", frozenset(Permission), KeyBinding("planner", agent_types=frozenset({"claude"}))
    )
    called: set[str] = set()

    async def succeeds(
        client: Client, validators: dict[str, Draft202012Validator], tool: str, **args: Any
    ) -> dict[str, Any]:
        result = await client.call_tool(tool, args)  # the SDK validates it too
        assert not result.is_error, result.structured_content
        content = result.structured_content
        assert content is not None
        assert _branch(validators[tool], content) == 0, tool
        called.add(tool)
        return content

    async with (
        connect_client(app, token_for(app, "alice"), mode=mode) as alice,
        connect_client(app, token_for(app, "root", permissions=ADMIN), mode=mode) as root,
    ):
        validators = await _validators(alice)
        issued = await succeeds(
            alice, validators, "authenticate_agent", agent_id="planner", api_key=key
        )
        await succeeds(alice, validators, "refresh_token", auth_token=issued["token"])
        sid = (await succeeds(alice, validators, "create_session", purpose="p"))["session"]["id"]
        await succeeds(alice, validators, "get_session", session_id=sid)
        await succeeds(alice, validators, "list_sessions")
        await succeeds(alice, validators, "update_session", session_id=sid, purpose="q")
        posted = await succeeds(alice, validators, "add_message", session_id=sid, content="hi")
        mid = posted["message"]["id"]
        await succeeds(alice, validators, "add_private_note", session_id=sid, content="note")
        await succeeds(alice, validators, "get_message", message_id=mid)
        await succeeds(alice, validators, "get_messages", session_id=sid)
        await succeeds(alice, validators, "get_context", session_id=sid)
        await succeeds(
            alice,
            validators,
            "set_message_visibility",
            message_id=mid,
            new_visibility="public",
            reason="r",
        )
        await succeeds(alice, validators, "get_messages_advanced", session_id=sid)
        await succeeds(alice, validators, "search_context", session_id=sid, query="hi")
        await succeeds(alice, validators, "search_by_sender", session_id=sid, sender="alice")
        await succeeds(alice, validators, "search_by_timerange", session_id=sid)
        await succeeds(alice, validators, "set_memory", key="k", value={"n": 1})
        await succeeds(alice, validators, "get_memory", key="k")
        await succeeds(alice, validators, "list_memory")
        await succeeds(alice, validators, "delete_memory", key="k")
        await succeeds(alice, validators, "wait_for_updates", cursor=0, timeout_s=0)
        await succeeds(alice, validators, "register_agent_presence")
        await succeeds(alice, validators, "get_active_agents", session_id=sid)
        await succeeds(
            alice, validators, "coordinate_session_work", session_id=sid, action="status"
        )
        minted = await succeeds(alice, validators, "delegate_token", agent_id="sub", session_id=sid)
        await succeeds(alice, validators, "revoke_token", jti=minted["jti"])
        await succeeds(alice, validators, "get_agent_activity_summary")
        await succeeds(root, validators, "get_audit_log")
        await succeeds(root, validators, "verify_audit_log")
    assert called == set(REFUSED)


def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    server = [r for r in caplog.records if not r.name.startswith("mcp.client")]
    assert not [r for r in server if r.levelno >= logging.WARNING or r.exc_info], server


async def test_an_unknown_tool_is_a_json_rpc_invalid_params_error(
    app: App, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with connect_client(app, token_for(app, "alice"), mode=mode) as client:
        with pytest.raises(MCPError) as refused:
            await client.call_tool("no_such_tool", {"auth_token": "x"})
    error = refused.value.error
    assert error.code == INVALID_PARAMS
    assert error.message == "unknown tool 'no_such_tool'"
    assert error.data == {
        "success": False,
        "code": "INVALID_INPUT",
        "error": "unknown tool 'no_such_tool'",
        "details": {"tool": "no_such_tool"},
    }
    _quiet(caplog)


async def test_a_disabled_tool_is_unknown_too(
    app: App, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = build_server(app)
    server.disable(names={"list_sessions"})
    async with Client(server._mcp_server, mode=mode, cache=None) as client:
        assert "list_sessions" not in {t.name for t in (await client.list_tools()).tools}
        with pytest.raises(MCPError) as refused:
            await client.call_tool("list_sessions", {})
    assert refused.value.error.code == INVALID_PARAMS
    assert refused.value.error.data["details"] == {"tool": "list_sessions"}
    _quiet(caplog)


async def test_invalid_arguments_are_answered_not_logged(
    app: App, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # FastMCP's logger keeps to its own handler unless told to propagate: make it visible.
    fastmcp_log = logging.getLogger("fastmcp")
    propagate, fastmcp_log.propagate = fastmcp_log.propagate, True
    try:
        async with connect_client(app, token_for(app, "alice"), mode=mode) as client:
            result = await client.call_tool("get_session", {"session_id": 5, "bogus": 1})
            assert result.is_error
            assert json.loads(result.content[0].text)["code"] == "INVALID_INPUT"  # type: ignore[union-attr]
    finally:
        fastmcp_log.propagate = propagate
    _quiet(caplog)
