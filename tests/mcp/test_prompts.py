"""Prompts through a real client: workflow templates that name real tools, and a resume
prompt that shows what get_context would."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, GetPromptResult

from shared_context_server.app import App
from shared_context_server.domain.principal import Principal
from shared_context_server.mcp.prompts import MESSAGE_CHARS, RESUME_MESSAGES
from tests.conftest import READ, READ_WRITE
from tests.mcp.conftest import connect_client, ok, token_for

PROMPTS = {
    "start_collaboration": {"purpose": True, "agents": False},
    "hand_off_to_subagent": {"session_id": True, "subagent_id": True, "task": True},
    "resume_session": {"session_id": True},
}
# A call the text asks for: a tool name followed by an argument list.
CALLED = re.compile(r"\b([a-z]+(?:_[a-z]+)+)\(")


def _text(result: GetPromptResult) -> str:
    assert len(result.messages) == 1
    message = result.messages[0]
    assert message.role == "user"
    return message.content.text  # type: ignore[union-attr]


async def _tool_names(client: Client) -> set[str]:
    return {tool.name for tool in (await client.list_tools()).tools}


async def _refused(client: Client, name: str, arguments: dict[str, str] | None) -> Any:
    with pytest.raises(MCPError) as refused:
        await client.get_prompt(name, arguments)
    return refused.value.error


def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    server = [r for r in caplog.records if not r.name.startswith("mcp.client")]
    assert not [r for r in server if r.levelno >= logging.WARNING or r.exc_info], server


async def test_the_catalogue_lists_three_workflows_without_an_identity(app: App, mode: str) -> None:
    async with connect_client(app, mode=mode) as anonymous:
        listed = (await anonymous.list_prompts()).prompts
    assert {p.name: {a.name: a.required for a in p.arguments or []} for p in listed} == PROMPTS
    assert all(p.title and p.description for p in listed)
    assert all(a.description for p in listed for a in p.arguments or [])


async def test_every_tool_a_prompt_names_is_a_real_tool(app: App, mode: str) -> None:
    async with connect_client(app, token_for(app, "alice"), mode=mode) as client:
        session_id = (await ok(client, "create_session", purpose="p"))["session"]["id"]
        texts = [
            _text(await client.get_prompt("start_collaboration", {"purpose": "ship it"})),
            _text(
                await client.get_prompt(
                    "hand_off_to_subagent",
                    {"session_id": session_id, "subagent_id": "tester", "task": "test it"},
                )
            ),
            _text(await client.get_prompt("resume_session", {"session_id": session_id})),
        ]
        tools = await _tool_names(client)
    for text in texts:
        named = set(CALLED.findall(text))
        assert named, text
        assert named <= tools, named - tools


async def test_start_collaboration_carries_the_purpose_and_the_team(app: App, mode: str) -> None:
    async with connect_client(app, token_for(app, "alice"), mode=mode) as client:
        result = await client.get_prompt(
            "start_collaboration", {"purpose": 'Fix "the" cache', "agents": "planner, , coder"}
        )
    text = _text(result)
    assert result.description
    assert 'create_session(purpose="Fix \\"the\\" cache")' in text
    assert "Team: planner, coder" in text
    assert "You (alice)" in text
    assert (
        text.index("create_session(") < text.index("add_message(") < text.index("delegate_token(")
    )


async def test_hand_off_steps_mint_a_token_that_works_as_described(
    backend_app: App, mode: str
) -> None:
    async with connect_client(backend_app, token_for(backend_app, "alice"), mode=mode) as alice:
        session_id = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        text = _text(
            await alice.get_prompt(
                "hand_off_to_subagent",
                {"session_id": session_id, "subagent_id": "tester", "task": "run the suite"},
            )
        )
        assert f'delegate_token(agent_id="tester", session_id="{session_id}")' in text
        assert "Task: run the suite" in text
        # Doing what it says gives the sub-agent the identity the prompt names.
        minted = await ok(alice, "delegate_token", agent_id="tester", session_id=session_id)
        assert f'"{minted["agent_id"]}"' in text
        assert "revoke_token(jti=<jti>)" in text
    async with connect_client(backend_app, minted["token"], mode=mode) as tester:
        context = await ok(tester, "get_context", session_id=session_id)
    assert context["session"]["id"] == session_id


async def test_resume_session_shows_what_get_context_shows_the_caller(
    backend_app: App, mode: str
) -> None:
    app = backend_app
    async with (
        connect_client(app, token_for(app, "alice", "claude"), mode=mode) as alice,
        connect_client(app, token_for(app, "bob", "claude"), mode=mode) as bob,
        connect_client(app, token_for(app, "carol", "gemini"), mode=mode) as carol,
    ):
        session_id = (await ok(alice, "create_session", purpose="Migrate the cache"))["session"][
            "id"
        ]
        await ok(alice, "add_message", session_id=session_id, content="plan: step one")
        await ok(alice, "add_private_note", session_id=session_id, content="alice's secret")
        await ok(
            carol,
            "add_message",
            session_id=session_id,
            content="for geminis only",
            visibility="agent_only",
        )
        await ok(bob, "add_message", session_id=session_id, content="bob's finding")
        await ok(alice, "set_memory", key="alice.key", value=1, session_id=session_id)
        await ok(bob, "set_memory", key="bob.progress", value=2, session_id=session_id)
        await ok(
            alice,
            "coordinate_session_work",
            session_id=session_id,
            action="lock",
            message="editing cache.py",
        )
        text = _text(await bob.get_prompt("resume_session", {"session_id": session_id}))
        context = await ok(bob, "get_context", session_id=session_id)
    shown = [int(n) for n in re.findall(r"^#(\d+) ", text, re.MULTILINE)]
    assert shown == [m["id"] for m in context["messages"]]
    assert "plan: step one" in text
    assert "bob's finding" in text
    assert "alice's secret" not in text
    assert "for geminis only" not in text
    assert "Purpose: Migrate the cache" in text
    assert "- alice: write until" in text
    assert "editing cache.py" in text
    assert "bob.progress" in text
    assert "alice.key" not in text
    assert f'wait_for_updates(session_id="{session_id}", cursor={context["feed_cursor"]})' in text


async def test_resume_session_shows_the_newest_messages_and_cuts_long_ones(app: App) -> None:
    async with connect_client(app, token_for(app, "alice")) as client:
        session_id = (await ok(client, "create_session", purpose="p"))["session"]["id"]
        ids = [
            (await ok(client, "add_message", session_id=session_id, content=f"m{n}"))["message"][
                "id"
            ]
            for n in range(RESUME_MESSAGES + 4)
        ]
        long = "x" * (MESSAGE_CHARS + 250)
        last = (await ok(client, "add_message", session_id=session_id, content=long))["message"]
        text = _text(await client.get_prompt("resume_session", {"session_id": session_id}))
        whole = await ok(client, "get_message", message_id=last["id"])
    shown = [int(n) for n in re.findall(r"^#(\d+) ", text, re.MULTILINE)]
    assert shown == [*ids, last["id"]][-RESUME_MESSAGES:]
    assert f"The newest {RESUME_MESSAGES} messages you may see" in text
    assert f'get_context(session_id="{session_id}", offset={RESUME_MESSAGES})' in text
    assert long not in text
    assert f"{'x' * MESSAGE_CHARS}… [250 more characters: get_message({last['id']})]" in text
    assert whole["message"]["content"] == long


async def test_an_unreadable_session_fails_as_get_context_does(backend_app: App, mode: str) -> None:
    app = backend_app
    async with connect_client(app, token_for(app, "alice"), mode=mode) as alice:
        mine = (await ok(alice, "create_session", purpose="mine"))["session"]["id"]
        other = (await ok(alice, "create_session", purpose="other"))["session"]["id"]
        delegated = (await ok(alice, "delegate_token", agent_id="sub", session_id=mine))["token"]
    cases = [
        (token_for(app, "bob"), "session_missing", "SESSION_NOT_FOUND"),
        (delegated, other, "PERMISSION_DENIED"),
        (token_for(app, "nobody", permissions=frozenset()), mine, "PERMISSION_DENIED"),
    ]
    for token, session_id, code in cases:
        async with connect_client(app, token, mode=mode) as client:
            tool = await client.call_tool("get_context", {"session_id": session_id})
            error = await _refused(client, "resume_session", {"session_id": session_id})
        assert tool.structured_content is not None
        assert tool.structured_content["code"] == code
        assert error.data["code"] == code
        assert error.data["details"] == tool.structured_content["details"]
        assert error.data["prompt"] == "resume_session"


async def test_getting_a_prompt_needs_an_identity(app: App, mode: str) -> None:
    async with connect_client(app, mode=mode) as anonymous:
        for name, arguments in [
            ("start_collaboration", {"purpose": "p"}),
            ("resume_session", {"session_id": "session_x"}),
        ]:
            error = await _refused(anonymous, name, arguments)
            assert error.code == -32001
            assert error.data["code"] == "AUTH_REQUIRED"


async def test_bad_requests_are_quiet_structured_errors(
    app: App, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hand_off = {"session_id": "session_x", "subagent_id": "tester", "task": "t"}
    async with connect_client(app, token_for(app, "alice", permissions=READ), mode=mode) as client:
        missing = await _refused(client, "resume_session", {})
        unknown = await _refused(client, "no_such_prompt", None)
        extra = await _refused(client, "resume_session", {"session_id": "s", "limit": "5"})
        too_long = await _refused(
            client, "hand_off_to_subagent", {**hand_off, "task": "t" * 10_001}
        )
        bad_name = await _refused(
            client, "hand_off_to_subagent", {**hand_off, "subagent_id": "no spaces"}
        )
        with pytest.raises(MCPError) as cursor:
            await client.list_prompts(cursor="7")
    assert missing.data["details"]["problems"][0]["field"] == "session_id"
    assert unknown.data["details"] == {"prompt": "no_such_prompt"}
    assert extra.data["details"]["problems"][0]["field"] == "limit"
    assert too_long.data["code"] == "LIMIT_EXCEEDED"
    assert bad_name.data["details"]["problems"][0]["field"] == "subagent_id"
    for error in (missing, unknown, extra, bad_name, cursor.value.error):
        assert error.code == INVALID_PARAMS
        assert error.data["code"] == "INVALID_INPUT"
    assert too_long.code == INVALID_PARAMS
    _quiet(caplog)


@pytest.mark.parametrize(
    ("profile", "offered"),
    [("core", {"start_collaboration", "resume_session"}), ("readonly", {"resume_session"})],
)
async def test_a_smaller_tool_profile_offers_only_prompts_whose_tools_it_has(
    app: App, profile: str, offered: set[str]
) -> None:
    app.settings = app.settings.model_copy(update={"tool_profile": profile})
    async with connect_client(app, token_for(app, "alice")) as client:
        assert {p.name for p in (await client.list_prompts()).prompts} == offered
        hidden = await _refused(
            client, "hand_off_to_subagent", {"session_id": "s", "subagent_id": "a", "task": "t"}
        )
        tools = await _tool_names(client)
        session = await app.sessions.create(Principal("alice", "claude", READ_WRITE), "p")
        text = _text(await client.get_prompt("resume_session", {"session_id": session.id}))
    assert hidden.data["details"] == {"prompt": "hand_off_to_subagent"}
    assert set(CALLED.findall(text)) <= tools


def test_every_prompt_is_documented() -> None:
    text = (Path(__file__).parents[2] / "docs" / "tools.md").read_text()
    assert [name for name in PROMPTS if f"| `{name}` |" not in text] == []
