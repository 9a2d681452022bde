"""set_message_visibility and get_messages_advanced through a real client."""

from __future__ import annotations

from shared_context_server.app import App
from tests.mcp.conftest import connect_client, fails, ok
from tests.mcp.live import Heard


async def _session_with_message(app: App, token: str, **message: object) -> tuple[str, int]:
    async with connect_client(app, token) as client:
        session_id = (await ok(client, "create_session", purpose="p"))["session"]["id"]
        posted = await ok(
            client, "add_message", session_id=session_id, content="a finding", **message
        )
    return session_id, posted["message"]["id"]


async def test_the_sender_may_hide_their_own_message(
    app: App, tokens: dict[str, str], mode: str
) -> None:
    _, message_id = await _session_with_message(app, tokens["alice"])
    async with connect_client(app, tokens["alice"], mode=mode) as alice:
        changed = await ok(
            alice,
            "set_message_visibility",
            message_id=message_id,
            new_visibility="private",
            reason="posted too early",
        )
        assert changed["message"]["visibility"] == "private"
    async with connect_client(app, tokens["bob"], mode=mode) as bob:
        assert (await fails(bob, "get_message", message_id=message_id))["code"] == (
            "MESSAGE_NOT_FOUND"
        )


async def test_changing_another_agents_message_needs_admin(
    app: App, tokens: dict[str, str]
) -> None:
    _, message_id = await _session_with_message(app, tokens["alice"])
    async with connect_client(app, tokens["bob"]) as bob:
        error = await fails(
            bob,
            "set_message_visibility",
            message_id=message_id,
            new_visibility="private",
            reason="mine now",
        )
        assert error["code"] == "PERMISSION_DENIED"
    async with connect_client(app, tokens["root"]) as root:
        changed = await ok(
            root,
            "set_message_visibility",
            message_id=message_id,
            new_visibility="admin_only",
            reason="contains a credential",
        )
        assert changed["message"]["visibility"] == "admin_only"
    async with connect_client(app, tokens["alice"]) as alice:
        # The sender cannot see it any more, so cannot change it back either.
        error = await fails(
            alice,
            "set_message_visibility",
            message_id=message_id,
            new_visibility="public",
            reason="undo",
        )
        assert error["code"] == "MESSAGE_NOT_FOUND"


async def test_only_admins_may_make_a_message_admin_only(app: App, tokens: dict[str, str]) -> None:
    _, message_id = await _session_with_message(app, tokens["alice"])
    async with connect_client(app, tokens["alice"]) as alice:
        error = await fails(
            alice,
            "set_message_visibility",
            message_id=message_id,
            new_visibility="admin_only",
            reason="hide",
        )
        assert error["code"] == "PERMISSION_DENIED"
        assert (
            await fails(
                alice,
                "set_message_visibility",
                message_id=message_id,
                new_visibility="private",
                reason="",
            )
        )["code"] == "INVALID_INPUT"


async def test_subscribers_who_could_see_it_hear_of_a_visibility_change(
    app: App, tokens: dict[str, str]
) -> None:
    session_id, message_id = await _session_with_message(app, tokens["alice"])
    heard = Heard()
    async with (
        connect_client(app, tokens["alice"]) as alice,
        connect_client(app, tokens["bob"], message_handler=heard) as bob,
    ):
        await bob.subscribe_resource(f"session://{session_id}")
        await ok(
            alice,
            "set_message_visibility",
            message_id=message_id,
            new_visibility="private",
            reason="oops",
        )
        await heard.wait_for(lambda: heard.updated == [f"session://{session_id}"])


async def test_advanced_reads_filter_by_visibility_and_agent_type(
    app: App, tokens: dict[str, str], mode: str
) -> None:
    async with connect_client(app, tokens["alice"]) as alice:
        session_id = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        await ok(alice, "add_message", session_id=session_id, content="claude public")
        await ok(
            alice,
            "add_message",
            session_id=session_id,
            content="claude only",
            visibility="agent_only",
        )
    async with connect_client(app, tokens["carol"]) as carol:
        await ok(carol, "add_message", session_id=session_id, content="gemini public")
    async with connect_client(app, tokens["root"]) as root:
        await ok(
            root, "add_message", session_id=session_id, content="admins", visibility="admin_only"
        )

    async with connect_client(app, tokens["bob"], mode=mode) as bob:
        claude = await ok(
            bob, "get_messages_advanced", session_id=session_id, agent_type_filter="claude"
        )
        assert [m["content"] for m in claude["messages"]] == ["claude public", "claude only"]
        public = await ok(
            bob, "get_messages_advanced", session_id=session_id, visibility_filter=["public"]
        )
        assert [m["content"] for m in public["messages"]] == ["claude public", "gemini public"]
        refused = await fails(
            bob, "get_messages_advanced", session_id=session_id, include_admin_only=True
        )
        assert refused["code"] == "PERMISSION_DENIED"

    async with connect_client(app, tokens["root"], mode=mode) as root:
        without = await ok(root, "get_messages_advanced", session_id=session_id)
        assert [m["content"] for m in without["messages"]] == ["claude public", "gemini public"]
        with_admin = await ok(
            root, "get_messages_advanced", session_id=session_id, include_admin_only=True
        )
        assert "admins" in [m["content"] for m in with_admin["messages"]]
