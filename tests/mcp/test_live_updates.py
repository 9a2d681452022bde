"""Subscriptions: 2025-11-25 resources/subscribe and 2026-07-28 subscriptions/listen."""

from __future__ import annotations

import anyio
import pytest
from mcp.client.subscriptions import ResourcesListChanged, ResourceUpdated
from mcp.shared.exceptions import MCPError

from shared_context_server.app import App
from tests.mcp.conftest import connect_client, ok
from tests.mcp.live import Heard, settle


async def test_a_2025_subscriber_hears_of_visible_posts_only(
    app: App, tokens: dict[str, str]
) -> None:
    heard = Heard()
    async with (
        connect_client(app, tokens["alice"]) as alice,
        connect_client(app, tokens["carol"], message_handler=heard) as carol,
    ):
        session_id = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        uri = f"session://{session_id}"
        # Alice is active in the session before carol listens: her posts bring no presence news.
        await ok(alice, "get_session", session_id=session_id)
        await carol.subscribe_resource(uri)

        await ok(
            alice, "add_message", session_id=session_id, content="private", visibility="private"
        )
        await ok(
            alice,
            "add_message",
            session_id=session_id,
            content="claude only",
            visibility="agent_only",
        )
        await settle()
        assert heard.updated == []

        await ok(alice, "add_message", session_id=session_id, content="public")
        await heard.wait_for(lambda: heard.updated == [uri])

        await carol.unsubscribe_resource(uri)
        await ok(alice, "add_message", session_id=session_id, content="after")
        await settle()
        assert heard.updated == [uri]


async def test_a_2025_connection_hears_list_changed_when_a_session_is_created(
    app: App, tokens: dict[str, str]
) -> None:
    heard = Heard()
    async with (
        connect_client(app, tokens["alice"]) as alice,
        connect_client(app, tokens["bob"], message_handler=heard) as bob,
    ):
        await bob.list_resources()
        await ok(alice, "create_session", purpose="new work")
        await heard.wait_for(lambda: heard.list_changed == 1)


async def test_a_2026_listener_hears_updates_and_list_changes(
    app: App, tokens: dict[str, str]
) -> None:
    async with (
        connect_client(app, tokens["alice"], mode="2026-07-28") as alice,
        connect_client(app, tokens["bob"], mode="2026-07-28") as bob,
    ):
        session_id = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        uri = f"session://{session_id}"
        async with bob.listen(resource_subscriptions=[uri], resources_list_changed=True) as sub:
            assert sub.honored.resource_subscriptions == [uri]
            await ok(
                alice, "add_message", session_id=session_id, content="secret", visibility="private"
            )
            await ok(alice, "add_message", session_id=session_id, content="hello")
            await ok(alice, "create_session", purpose="another")
            events = []
            with anyio.fail_after(5):
                async for event in sub:
                    events.append(event)
                    if len(events) == 2:
                        break
        assert events == [ResourceUpdated(uri=uri), ResourcesListChanged()]


async def test_subscriptions_are_authorised_when_made(app: App, tokens: dict[str, str]) -> None:
    async with connect_client(app) as anonymous:
        with pytest.raises(MCPError) as error:
            await anonymous.subscribe_resource("session://whatever")
        assert error.value.error.data["code"] == "AUTH_REQUIRED"
    async with connect_client(app, tokens["alice"]) as alice:
        with pytest.raises(MCPError) as missing:
            await alice.subscribe_resource("session://session_missing")
        assert missing.value.error.data["code"] == "SESSION_NOT_FOUND"
        with pytest.raises(MCPError) as memory:
            await alice.subscribe_resource("agent://alice/memory")
        assert memory.value.error.data["code"] == "INVALID_INPUT"
    async with connect_client(app, mode="2026-07-28") as anonymous:
        with pytest.raises(MCPError) as listen_error:
            async with anonymous.listen(resource_subscriptions=["session://x"]):
                pass
        assert listen_error.value.error.data["code"] == "AUTH_REQUIRED"


async def test_status_changes_reach_subscribers(app: App, tokens: dict[str, str]) -> None:
    heard = Heard()
    async with (
        connect_client(app, tokens["alice"]) as alice,
        connect_client(app, tokens["bob"], message_handler=heard) as bob,
    ):
        session_id = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        await bob.subscribe_resource(f"session://{session_id}")
        await ok(alice, "update_session", session_id=session_id, status="completed")
        await heard.wait_for(lambda: len(heard.updated) == 1)


async def test_a_uri_this_server_does_not_serve_can_be_watched_but_never_fires(
    app: App, tokens: dict[str, str]
) -> None:
    heard = Heard()
    async with connect_client(app, tokens["bob"], message_handler=heard) as bob:
        await bob.subscribe_resource("test://watched-resource")
        await ok(bob, "create_session", purpose="p")
        await heard.wait_for(lambda: heard.list_changed == 1)
        await bob.unsubscribe_resource("test://watched-resource")
    assert heard.updated == []


async def test_capabilities_advertise_only_the_notifications_sent(app: App) -> None:
    async with connect_client(app) as client:
        capabilities = client.session.server_capabilities
    assert capabilities is not None
    assert capabilities.resources is not None
    assert capabilities.resources.subscribe is True
    assert capabilities.resources.list_changed is True
    assert capabilities.tools is not None
    assert not capabilities.tools.list_changed
