"""Security: no route widens what an identity may do."""

from __future__ import annotations

import pytest

from shared_context_server.app import App
from tests.mcp.conftest import connect_client, fails, ok


async def _session_and_message(app: App, token: str, visibility: str = "public") -> tuple[str, int]:
    async with connect_client(app, token) as client:
        session_id = (await ok(client, "create_session", purpose="p"))["session"]["id"]
        message = await ok(
            client, "add_message", session_id=session_id, content="m", visibility=visibility
        )
    return session_id, message["message"]["id"]


@pytest.mark.parametrize(
    ("caller", "visibility", "code"),
    [
        ("bob", "private", "PERMISSION_DENIED"),  # not the sender, not admin
        ("bob", "admin_only", "PERMISSION_DENIED"),
        ("alice", "admin_only", "PERMISSION_DENIED"),  # the sender, but not admin
        ("reader", "private", "PERMISSION_DENIED"),  # no write
    ],
)
async def test_set_message_visibility_cannot_be_used_to_escalate(
    app: App, tokens: dict[str, str], caller: str, visibility: str, code: str
) -> None:
    _, message_id = await _session_and_message(app, tokens["alice"])
    async with connect_client(app, tokens[caller]) as client:
        error = await fails(
            client,
            "set_message_visibility",
            message_id=message_id,
            new_visibility=visibility,
            reason="try",
        )
    assert error["code"] == code


async def test_admin_only_messages_need_admin_in_advanced_reads(
    app: App, tokens: dict[str, str]
) -> None:
    session_id, _ = await _session_and_message(app, tokens["root"], "admin_only")
    async with connect_client(app, tokens["alice"]) as alice:
        error = await fails(
            alice, "get_messages_advanced", session_id=session_id, include_admin_only=True
        )
        assert error["code"] == "PERMISSION_DENIED"
        plain = await ok(
            alice,
            "get_messages_advanced",
            session_id=session_id,
            visibility_filter=["admin_only"],
        )
        assert plain["count"] == 0


async def test_a_delegated_token_cannot_grant_more_than_its_holder(
    app: App, tokens: dict[str, str]
) -> None:
    async with connect_client(app, tokens["bob"]) as bob:
        session_id = (await ok(bob, "create_session", purpose="p"))["session"]["id"]
        for permissions in (["admin"], ["debug"], ["read", "write", "admin"]):
            error = await fails(
                bob,
                "delegate_token",
                agent_id="sub",
                session_id=session_id,
                permissions=permissions,
            )
            assert error["code"] == "PERMISSION_DENIED"


async def test_a_revoked_delegated_token_is_refused_everywhere(
    app: App, tokens: dict[str, str]
) -> None:
    async with connect_client(app, tokens["alice"]) as alice:
        session_id = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        minted = await ok(alice, "delegate_token", agent_id="sub", session_id=session_id)
        await ok(alice, "revoke_token", jti=minted["jti"])
    async with connect_client(app) as client:
        for tool, args in [
            ("get_messages", {"session_id": session_id}),
            ("add_message", {"session_id": session_id, "content": "x"}),
            ("wait_for_updates", {"timeout_s": 0}),
        ]:
            error = await fails(client, tool, auth_token=minted["token"], **args)
            assert error["code"] == "TOKEN_REVOKED", tool
