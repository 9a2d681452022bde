"""completion/complete through a real client: session ids from the sessions the caller may
read, at most 100 at a time; refusals structured and quiet."""

from __future__ import annotations

import logging

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    Completion,
    ErrorData,
    PromptReference,
    ResourceTemplateReference,
)

from shared_context_server.app import App
from shared_context_server.domain.principal import Principal
from shared_context_server.mcp.completion import MAX_VALUES
from tests.conftest import READ_WRITE
from tests.mcp.conftest import connect_client, ok, token_for

SESSION = ResourceTemplateReference(type="ref/resource", uri="session://{session_id}")
MEMORY = ResourceTemplateReference(type="ref/resource", uri="agent://{agent_id}/memory")
RESUME = PromptReference(type="ref/prompt", name="resume_session")
HAND_OFF = PromptReference(type="ref/prompt", name="hand_off_to_subagent")


async def _complete(
    client: Client, ref: ResourceTemplateReference | PromptReference, name: str, value: str
) -> Completion:
    return (await client.complete(ref, {"name": name, "value": value})).completion


async def _refused(
    client: Client, ref: ResourceTemplateReference | PromptReference, name: str
) -> ErrorData:
    with pytest.raises(MCPError) as refused:
        await client.complete(ref, {"name": name, "value": ""})
    return refused.value.error


async def test_session_ids_come_from_the_sessions_the_caller_may_read(
    backend_app: App, mode: str
) -> None:
    app = backend_app
    async with connect_client(app, token_for(app, "alice"), mode=mode) as alice:
        created = [
            (await ok(alice, "create_session", purpose=f"s{n}"))["session"]["id"] for n in range(3)
        ]
        # The most recently active first, as list_sessions orders them.
        await ok(alice, "add_message", session_id=created[0], content="active again")
        expected = [created[0], created[2], created[1]]
        assert (await ok(alice, "list_sessions"))["sessions"][0]["id"] == created[0]
    async with connect_client(app, token_for(app, "bob"), mode=mode) as bob:
        for ref in (SESSION, RESUME, HAND_OFF):
            everything = await _complete(bob, ref, "session_id", "")
            assert everything == Completion(values=expected, total=3, has_more=False)
        assert (await _complete(bob, SESSION, "session_id", "session_")).values == expected
        one = await _complete(bob, SESSION, "session_id", created[1])
        assert one == Completion(values=[created[1]], total=1, has_more=False)
        # A prefix is matched exactly on both backends: no case folding, no wildcards.
        for typed in ("SESSION_", "session%", "session_" + "_" * 8, "nope", "a b", "x\x00"):
            assert await _complete(bob, SESSION, "session_id", typed) == Completion(
                values=[], total=0, has_more=False
            ), typed


async def test_a_token_limited_to_one_session_completes_only_that_one(
    backend_app: App, mode: str
) -> None:
    app = backend_app
    async with connect_client(app, token_for(app, "alice"), mode=mode) as alice:
        mine = (await ok(alice, "create_session", purpose="mine"))["session"]["id"]
        await ok(alice, "create_session", purpose="other")
        delegated = (await ok(alice, "delegate_token", agent_id="sub", session_id=mine))["token"]
    async with connect_client(app, delegated, mode=mode) as sub:
        assert (await _complete(sub, SESSION, "session_id", "")).values == [mine]


async def test_at_most_a_hundred_values_and_has_more_beyond(backend_app: App, mode: str) -> None:
    alice = Principal("alice", "claude", READ_WRITE)
    for n in range(MAX_VALUES + 1):
        await backend_app.sessions.create(alice, f"session {n}")
    async with connect_client(backend_app, token_for(backend_app, "bob"), mode=mode) as bob:
        many = await _complete(bob, SESSION, "session_id", "s")
        listed = (await ok(bob, "list_sessions", limit=MAX_VALUES))["sessions"]
    assert many.has_more is True
    assert many.total is None  # not counted: the client narrows the prefix instead
    assert many.values == [s["id"] for s in listed]


async def test_free_text_arguments_have_nothing_to_offer(app: App, mode: str) -> None:
    async with connect_client(app, token_for(app, "alice"), mode=mode) as client:
        await ok(client, "create_session", purpose="p")
        start = PromptReference(type="ref/prompt", name="start_collaboration")
        for ref, name in [(start, "purpose"), (start, "agents"), (HAND_OFF, "task")]:
            nothing = await _complete(client, ref, name, "s")
            assert nothing == Completion(values=[], total=0, has_more=False), name


async def test_the_memory_template_completes_to_the_callers_own_id(app: App, mode: str) -> None:
    async with connect_client(app, token_for(app, "alice"), mode=mode) as client:
        assert (await _complete(client, MEMORY, "agent_id", "al")).values == ["alice"]
        assert (await _complete(client, MEMORY, "agent_id", "bo")).values == []


async def test_completion_needs_an_identity(app: App, mode: str) -> None:
    async with connect_client(app, token_for(app, "alice")) as alice:
        await ok(alice, "create_session", purpose="p")
    async with connect_client(app, mode=mode) as anonymous:
        error = await _refused(anonymous, SESSION, "session_id")
    assert error.code == -32001
    assert error.data["code"] == "AUTH_REQUIRED"


async def test_unknown_references_are_quiet_invalid_input(
    app: App, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    unknown_prompt = PromptReference(type="ref/prompt", name="test_prompt_with_arguments")
    unknown_template = ResourceTemplateReference(type="ref/resource", uri="test://{id}")
    async with connect_client(app, token_for(app, "alice"), mode=mode) as client:
        errors = {
            "prompt": await _refused(client, unknown_prompt, "arg1"),
            "template": await _refused(client, unknown_template, "id"),
            "prompt argument": await _refused(client, RESUME, "limit"),
            "template argument": await _refused(client, SESSION, "agent_id"),
        }
    for what, error in errors.items():
        assert error.code == INVALID_PARAMS, what
        assert error.data["code"] == "INVALID_INPUT", what
    assert errors["prompt"].data["details"] == {"prompt": "test_prompt_with_arguments"}
    assert errors["template"].data["details"] == {"uri": "test://{id}"}
    server = [r for r in caplog.records if not r.name.startswith("mcp.client")]
    assert not [r for r in server if r.levelno >= logging.WARNING or r.exc_info], server
