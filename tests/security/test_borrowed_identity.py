"""Issue 8: a key proves who is speaking. Every way of borrowing another agent's identity,
and every revocation path, tried against a real server over streamable HTTP (both eras),
on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters

from shared_context_server.domain.models import KeyBinding
from tests.e2e.conftest import ADMIN_KEY, http_client
from tests.mcp.conftest import fails, ok
from tests.security.servers import READ, READ_WRITE, Deployment, deployment_fixture

CLAUDE = frozenset({"claude"})
MODES = ["legacy", "2026-07-28"]

deployment = deployment_fixture(
    {
        "alice-key": (READ_WRITE, KeyBinding("alice", agent_types=CLAUDE)),
        "bob-key": (READ_WRITE, KeyBinding("bob", agent_types=CLAUDE)),
        "mallory-ro": (READ, KeyBinding("mallory", agent_types=CLAUDE)),
        "team": (READ_WRITE, KeyBinding(agent_pattern="*", agent_types=CLAUDE)),
        "workers": (READ_WRITE, KeyBinding(agent_pattern="worker-*", agent_types={"codex"})),
        "workers-2": (READ_WRITE, KeyBinding(agent_pattern="worker-*", agent_types={"codex"})),
        "gemini": (READ_WRITE, KeyBinding("gem", agent_types=frozenset({"gemini"}))),
        "orchestrator": (READ_WRITE, KeyBinding("orch", agent_types=CLAUDE)),
        "leaky": (READ_WRITE, KeyBinding("leaky", agent_types=CLAUDE)),
    }
)


@asynccontextmanager
async def as_key(
    dep: Deployment, key: str, mode: str = "legacy", **headers: str
) -> AsyncIterator[Client]:
    """A client whose connection carries an API key (and optional identity headers)."""
    async with http_client(
        dep.url, mode=mode, headers={"Authorization": f"Bearer {key}", **headers}
    ) as client:
        yield client


def raw_call(dep: Deployment, credential: str, **headers: str) -> httpx2.Response:
    """One 2026-07-28 tools/call with a bearer credential, below any SDK."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": "list_sessions",
            "arguments": {},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
            },
        },
    }
    return httpx2.post(
        dep.url,
        content=json.dumps(body),
        headers={
            "Authorization": f"Bearer {credential}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2026-07-28",
            "Mcp-Method": "tools/call",
            "Mcp-Name": "list_sessions",
            **headers,
        },
        timeout=30,
    )


def refused_with(response: httpx2.Response, code: str) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["code"] == code
    assert "resource_metadata=" in response.headers["www-authenticate"]


async def token(client: Client, agent_id: str, key: str, **args: Any) -> str:
    issued = await ok(client, "authenticate_agent", agent_id=agent_id, api_key=key, **args)
    return str(issued["token"])


async def _alice_has_secrets(dep: Deployment) -> tuple[str, str]:
    """Alice (her own key) keeps a private note and a memory value; a session of hers."""
    async with as_key(dep, dep.keys["alice-key"]) as alice:
        session_id = (await ok(alice, "create_session", purpose="alice's work"))["session"]["id"]
        await ok(alice, "add_private_note", session_id=session_id, content="the db password")
        await ok(alice, "set_memory", key="plan", value="secret plan")
    return session_id, "plan"


@pytest.mark.parametrize("mode", MODES)
async def test_a_read_only_key_cannot_mint_a_token_for_another_agent(
    deployment: Deployment, mode: str
) -> None:
    await _alice_has_secrets(deployment)
    key = deployment.keys["mallory-ro"]
    async with as_key(deployment, key, mode) as mallory:
        for agent_id in ("alice", "bob", "someone-new"):
            error = await fails(mallory, "authenticate_agent", agent_id=agent_id, api_key=key)
            assert error["code"] == "IDENTITY_NOT_ALLOWED"
        # Its own identity, read-only, is all it gets.
        own = await ok(mallory, "authenticate_agent", agent_id="mallory", api_key=key)
        assert (own["agent_id"], own["permissions"]) == ("mallory", ["read"])
        missing = await fails(mallory, "get_memory", key="plan", auth_token=key)
        assert missing["code"] == "MEMORY_NOT_FOUND"


async def test_a_key_bearer_cannot_name_another_agent_in_a_header(deployment: Deployment) -> None:
    key = deployment.keys["mallory-ro"]
    for headers in ({"X-Agent-Id": "alice"}, {"X-Agent-Id": "alice", "X-Agent-Type": "claude"}):
        refused_with(raw_call(deployment, key, **headers), "IDENTITY_NOT_ALLOWED")
    assert raw_call(deployment, key, **{"X-Agent-Id": "mallory"}).status_code == 200


@pytest.mark.parametrize("mode", MODES)
async def test_an_agent_id_belongs_to_the_key_that_registered_it(
    deployment: Deployment, mode: str
) -> None:
    session_id, _ = await _alice_has_secrets(deployment)
    team = deployment.keys["team"]
    async with as_key(deployment, team, mode, **{"X-Agent-Id": f"team-{mode}"}) as client:
        # A key that may name any id cannot take one that alice's key registered ...
        error = await fails(client, "authenticate_agent", agent_id="alice", api_key=team)
        assert (error["code"], error["details"]["reason"]) == ("IDENTITY_NOT_ALLOWED", "owned")
        # ... so her private note, memory and session stay hers.
        page = await ok(client, "get_messages", session_id=session_id)
        assert page["messages"] == []
        assert (await fails(client, "get_memory", key="plan"))["code"] == "MEMORY_NOT_FOUND"
        archived = await fails(client, "update_session", session_id=session_id, status="archived")
        assert archived["code"] == "PERMISSION_DENIED"
        # A new id is registered to the first key that uses it, and to no other.
        mine = await ok(client, "authenticate_agent", agent_id=f"fresh-{mode}", api_key=team)
        assert mine["agent_id"] == f"fresh-{mode}"
    refused_with(raw_call(deployment, team, **{"X-Agent-Id": "alice"}), "IDENTITY_NOT_ALLOWED")
    workers, workers_2 = deployment.keys["workers"], deployment.keys["workers-2"]
    assert raw_call(deployment, workers, **{"X-Agent-Id": f"worker-{mode}"}).status_code == 200
    refused_with(
        raw_call(deployment, workers_2, **{"X-Agent-Id": f"worker-{mode}"}), "IDENTITY_NOT_ALLOWED"
    )
    refused_with(
        raw_call(deployment, workers, **{"X-Agent-Id": f"planner-{mode}"}), "IDENTITY_NOT_ALLOWED"
    )
    # An operator key may still act as anyone (it is the operator's).
    assert raw_call(deployment, ADMIN_KEY, **{"X-Agent-Id": f"worker-{mode}"}).status_code == 200


@pytest.mark.parametrize("mode", MODES)
async def test_no_key_mints_a_sub_agent_id(deployment: Deployment, mode: str) -> None:
    for name, own_id in (("team", f"sub-{mode}"), ("alice-key", "alice")):
        key = deployment.keys[name]
        async with as_key(deployment, key, mode, **{"X-Agent-Id": own_id}) as client:
            error = await fails(client, "authenticate_agent", agent_id="alice:helper", api_key=key)
            assert error["code"] == "IDENTITY_NOT_ALLOWED"
    async with as_key(deployment, ADMIN_KEY, mode) as operator:
        error = await fails(
            operator, "authenticate_agent", agent_id="alice:helper", api_key=ADMIN_KEY
        )
        assert error["code"] == "IDENTITY_NOT_ALLOWED"
    for key in (deployment.keys["team"], ADMIN_KEY):
        refused_with(
            raw_call(deployment, key, **{"X-Agent-Id": "alice:helper"}), "IDENTITY_NOT_ALLOWED"
        )


@pytest.mark.parametrize("mode", MODES)
async def test_the_agent_type_is_the_keys_not_the_callers(
    deployment: Deployment, mode: str
) -> None:
    async with as_key(deployment, deployment.keys["alice-key"], mode) as alice:
        session_id = (await ok(alice, "create_session", purpose="types"))["session"]["id"]
        await ok(
            alice,
            "add_message",
            session_id=session_id,
            content="claude only",
            visibility="agent_only",
        )
    key = deployment.keys["gemini"]
    async with as_key(deployment, key, mode) as gem:
        error = await fails(
            gem, "authenticate_agent", agent_id="gem", api_key=key, agent_type="claude"
        )
        assert (error["code"], error["details"]["reason"]) == ("IDENTITY_NOT_ALLOWED", "agent_type")
        assert (await ok(gem, "get_messages", session_id=session_id))["messages"] == []
    refused_with(raw_call(deployment, key, **{"X-Agent-Type": "claude"}), "IDENTITY_NOT_ALLOWED")


async def test_a_stdio_environment_identity_obeys_the_key(deployment: Deployment) -> None:
    env = deployment.env()
    env.update(SCS_AUTH_TOKEN=deployment.keys["mallory-ro"], SCS_AGENT_ID="alice")
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "shared_context_server", "serve", "--transport", "stdio"],
        env=env,
    )
    async with Client(params, mode="legacy", cache=None) as client:
        assert (await fails(client, "list_sessions"))["code"] == "IDENTITY_NOT_ALLOWED"


async def _until(check: Any, deadline: float = 15.0) -> None:
    """Poll a condition that another process makes true within its re-check interval."""
    end = time.monotonic() + deadline
    while not await check():
        assert time.monotonic() < end, "not revoked in time"
        await anyio.sleep(0.2)


async def test_revoking_a_key_ends_every_token_and_delegation_obtained_with_it(
    deployment: Deployment,
) -> None:
    key = deployment.keys["leaky"]
    async with as_key(deployment, key) as leaky:
        jwt = await token(leaky, "leaky", key)
        session_id = (await ok(leaky, "create_session", purpose="to revoke"))["session"]["id"]
        # Delegated through the raw key as bearer: it still derives from the key.
        delegated = await ok(leaky, "delegate_token", agent_id="helper", session_id=session_id)
        helper = delegated["token"]
        locked = await ok(
            leaky,
            "coordinate_session_work",
            session_id=session_id,
            action="lock",
            auth_token=helper,
        )
        assert locked["lock"]["holder"] == "leaky:helper"
    revoked = deployment.scs("keys", "revoke", "leaky")
    assert revoked.returncode == 0, revoked.stderr

    async with as_key(deployment, ADMIN_KEY) as admin:

        async def all_refused() -> bool:
            by_jwt = await admin.call_tool("list_sessions", {"auth_token": jwt})
            by_helper = await admin.call_tool("list_sessions", {"auth_token": helper})
            return bool(by_jwt.is_error and by_helper.is_error)

        await _until(all_refused)
        assert (await fails(admin, "list_sessions", auth_token=jwt))["code"] == "TOKEN_REVOKED"
        assert (await fails(admin, "list_sessions", auth_token=helper))["code"] == "TOKEN_REVOKED"
        assert (await fails(admin, "list_sessions", auth_token=key))["code"] == "AUTH_FAILED"
        status = await ok(admin, "coordinate_session_work", session_id=session_id, action="status")
        assert status["locks"] == []
    refused_with(raw_call(deployment, key), "AUTH_FAILED")


@pytest.mark.parametrize("mode", MODES)
async def test_revoking_a_delegation_releases_the_sub_agents_locks(
    deployment: Deployment, mode: str
) -> None:
    async with as_key(deployment, deployment.keys["orchestrator"], mode) as orch:
        session_id = (await ok(orch, "create_session", purpose="delegated"))["session"]["id"]
        minted = await ok(orch, "delegate_token", agent_id="helper", session_id=session_id)
        await ok(
            orch,
            "coordinate_session_work",
            session_id=session_id,
            action="lock",
            lock_type="exclusive",
            auth_token=minted["token"],
        )
        await ok(orch, "revoke_token", jti=minted["jti"])
        assert (await fails(orch, "list_sessions", auth_token=minted["token"]))[
            "code"
        ] == "TOKEN_REVOKED"
        status = await ok(orch, "coordinate_session_work", session_id=session_id, action="status")
        assert status["locks"] == []
        await ok(orch, "add_message", session_id=session_id, content="the session is open again")


@pytest.mark.parametrize("mode", MODES)
async def test_locks_cannot_lock_people_out(deployment: Deployment, mode: str) -> None:
    work = "coordinate_session_work"
    async with (
        as_key(deployment, deployment.keys["alice-key"], mode) as alice,
        as_key(deployment, deployment.keys["bob-key"], mode) as bob,
        as_key(deployment, deployment.keys["orchestrator"], mode) as orch,
    ):
        session_id = (await ok(alice, "create_session", purpose="shared"))["session"]["id"]
        # Only the creator (or their sub-agents, or an admin) may make a session read-only.
        refused = await fails(
            bob, work, session_id=session_id, action="lock", lock_type="exclusive"
        )
        assert refused["code"] == "PERMISSION_DENIED"
        await ok(bob, work, session_id=session_id, action="lock")
        # Nobody releases another agent's lock but a delegator its own sub-agents'.
        not_hers = await fails(alice, work, session_id=session_id, action="unlock", holder="bob")
        assert not_hers["code"] == "PERMISSION_DENIED"
        await ok(bob, work, session_id=session_id, action="unlock")
        helper = await ok(orch, "delegate_token", agent_id="helper", session_id=session_id)
        await ok(orch, work, session_id=session_id, action="lock", auth_token=helper["token"])
        freed = await ok(orch, work, session_id=session_id, action="unlock", holder="orch:helper")
        assert freed["lock"]["holder"] == "orch:helper"
        # The creator's exclusive lock holds others out of writing, not of reading.
        await ok(alice, work, session_id=session_id, action="lock", lock_type="exclusive")
        assert (await fails(bob, "add_message", session_id=session_id, content="hi"))[
            "code"
        ] == "SESSION_LOCKED"
        assert (await ok(bob, "get_session", session_id=session_id))["session"]["id"] == session_id
