"""Delegated tokens: one session, a subset of the delegator's permissions, revocable."""

from __future__ import annotations

from typing import Any

from shared_context_server.app import App
from tests.mcp.conftest import connect_client, fails, ok


async def _delegate(app: App, token: str, **arguments: Any) -> tuple[str, dict[str, Any]]:
    async with connect_client(app, token) as client:
        session_id = (await ok(client, "create_session", purpose="work"))["session"]["id"]
        minted = await ok(
            client, "delegate_token", agent_id="sub-1", session_id=session_id, **arguments
        )
    return session_id, minted


async def test_a_sub_agent_works_in_its_session_only(
    app: App, tokens: dict[str, str], mode: str
) -> None:
    session_id, minted = await _delegate(app, tokens["alice"])
    assert minted["permissions"] == ["read", "write"]
    assert minted["session_id"] == session_id
    async with connect_client(app, tokens["alice"]) as alice:
        other = (await ok(alice, "create_session", purpose="elsewhere"))["session"]["id"]
        await ok(alice, "add_message", session_id=other, content="not for sub-1")
    async with connect_client(app, minted["token"], mode=mode) as sub:
        posted = await ok(sub, "add_message", session_id=session_id, content="done")
        assert posted["message"]["sender"] == "alice:sub-1"
        assert posted["message"]["sender_type"] == "claude"  # alice's: a key vouched for it
        assert [s["id"] for s in (await ok(sub, "list_sessions"))["sessions"]] == [session_id]
        for tool, args in [
            ("get_messages", {"session_id": other}),
            ("add_message", {"session_id": other, "content": "x"}),
            ("get_context", {"session_id": other}),
            ("search_context", {"session_id": other, "query": "not"}),
            ("set_memory", {"key": "k", "value": 1, "session_id": other}),
            ("create_session", {"purpose": "escape"}),
            ("wait_for_updates", {"session_id": other, "timeout_s": 0}),
        ]:
            assert (await fails(sub, tool, **args))["code"] == "PERMISSION_DENIED", tool
        news = await ok(sub, "wait_for_updates", cursor=0, timeout_s=0)
        assert {u["session_id"] for u in news["updates"]} == {session_id}
        # Its delegator set its lifetime: it cannot extend it.
        refused = await fails(sub, "refresh_token", auth_token=minted["token"])
        assert refused["code"] == "PERMISSION_DENIED"


async def test_a_delegated_token_carries_only_permissions_the_delegator_holds(
    app: App, tokens: dict[str, str]
) -> None:
    async with connect_client(app, tokens["alice"]) as alice:
        session_id = (await ok(alice, "create_session", purpose="work"))["session"]["id"]
        error = await fails(
            alice,
            "delegate_token",
            agent_id="sub",
            session_id=session_id,
            permissions=["read", "admin"],
        )
        assert error["code"] == "PERMISSION_DENIED"
        assert error["details"]["not_delegable"] == ["admin"]
        read_only = await ok(
            alice, "delegate_token", agent_id="sub", session_id=session_id, permissions=["read"]
        )
    async with connect_client(app, read_only["token"]) as sub:
        assert (await fails(sub, "add_message", session_id=session_id, content="x"))[
            "code"
        ] == "PERMISSION_DENIED"
        # A sub-agent cannot widen its own grant by delegating further.
        widened = await fails(
            sub,
            "delegate_token",
            agent_id="subsub",
            session_id=session_id,
            permissions=["write"],
        )
        assert widened["code"] == "PERMISSION_DENIED"


async def test_the_delegator_can_revoke_a_token_before_it_expires(
    app: App, tokens: dict[str, str], mode: str
) -> None:
    session_id, minted = await _delegate(app, tokens["alice"])
    async with connect_client(app, tokens["bob"], mode=mode) as bob:
        assert (await fails(bob, "revoke_token", jti=minted["jti"]))["code"] == (
            "PERMISSION_DENIED"
        )
    async with connect_client(app, tokens["alice"], mode=mode) as alice:
        await ok(alice, "get_messages", session_id=session_id, auth_token=minted["token"])
        revoked = await ok(alice, "revoke_token", jti=minted["jti"])
        assert revoked["agent_id"] == "alice:sub-1"
        error = await fails(
            alice, "get_messages", session_id=session_id, auth_token=minted["token"]
        )
        assert error["code"] == "TOKEN_REVOKED"
        assert (await fails(alice, "revoke_token", jti=minted["jti"]))["code"] == "TOKEN_REVOKED"
        assert (await fails(alice, "revoke_token", jti="unknown"))["code"] == "INVALID_INPUT"


async def test_an_admin_may_revoke_any_delegated_token(app: App, tokens: dict[str, str]) -> None:
    _, minted = await _delegate(app, tokens["alice"])
    async with connect_client(app, tokens["root"]) as root:
        await ok(root, "revoke_token", jti=minted["jti"])


async def test_delegating_into_an_unknown_session_fails(app: App, tokens: dict[str, str]) -> None:
    async with connect_client(app, tokens["alice"]) as alice:
        error = await fails(alice, "delegate_token", agent_id="sub", session_id="nope")
        assert error["code"] == "SESSION_NOT_FOUND"
        too_long = await fails(
            alice, "delegate_token", agent_id="sub", session_id="nope", expires_in=10**9
        )
        assert too_long["code"] == "LIMIT_EXCEEDED"


async def test_a_delegated_token_cannot_pose_as_another_agent(
    app: App, tokens: dict[str, str]
) -> None:
    async with connect_client(app, tokens["alice"]) as alice:
        session_id = (await ok(alice, "create_session", purpose="work"))["session"]["id"]
        await ok(alice, "add_private_note", session_id=session_id, content="alice's secret")
        await ok(alice, "set_memory", key="apikey", value="hunter2")
    async with connect_client(app, tokens["bob"]) as bob:
        minted = await ok(bob, "delegate_token", agent_id="alice", session_id=session_id)
        assert minted["agent_id"] == "bob:alice"
    async with connect_client(app, minted["token"]) as fake:
        context = await ok(fake, "get_context", session_id=session_id)
        assert context["count"] == 0
        assert (await fails(fake, "get_memory", key="apikey"))["code"] == "MEMORY_NOT_FOUND"


async def test_admin_cannot_be_delegated(app: App, tokens: dict[str, str]) -> None:
    async with connect_client(app, tokens["root"]) as root:
        session_id = (await ok(root, "create_session", purpose="work"))["session"]["id"]
        error = await fails(
            root,
            "delegate_token",
            agent_id="sub",
            session_id=session_id,
            permissions=["read", "admin"],
        )
    assert error["code"] == "PERMISSION_DENIED"
    assert error["details"]["not_delegable"] == ["admin"]
