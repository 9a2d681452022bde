"""The main flows against a real server process over streamable HTTP, in both eras."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx2
import pytest
from mcp.client.subscriptions import ResourceUpdated

from tests.e2e.conftest import ADMIN_KEY, HttpServer, http_client, start_http_server, stop
from tests.mcp.conftest import fails, ok
from tests.mcp.live import Heard
from tests.security.inprocess import INITIALIZE

MODES = ["legacy", "2026-07-28"]


@pytest.mark.parametrize("mode", MODES)
async def test_main_flow_over_http(http_server: HttpServer, mode: str) -> None:
    # A 2025 session needs an identity to open: the operator key's, until the token is used.
    key = {"Authorization": f"Bearer {ADMIN_KEY}"} if mode == "legacy" else None
    async with http_client(http_server.url, mode=mode, headers=key) as client:
        token = (
            await ok(
                client,
                "authenticate_agent",
                agent_id="planner",
                agent_type="claude",
                api_key=ADMIN_KEY,
            )
        )["token"]
        session_id = (await ok(client, "create_session", purpose="e2e", auth_token=token))[
            "session"
        ]["id"]
        message = (
            await ok(
                client,
                "add_message",
                session_id=session_id,
                content="the cache key is wrong",
                auth_token=token,
            )
        )["message"]
        page = await ok(client, "get_messages", session_id=session_id, auth_token=token)
        assert [m["id"] for m in page["messages"]] == [message["id"]]
        hits = await ok(
            client, "search_context", session_id=session_id, query="cache key", auth_token=token
        )
        assert hits["hits"][0]["message"]["id"] == message["id"]
        await ok(client, "set_memory", key="plan", value=[1, 2], auth_token=token)
        assert (await ok(client, "get_memory", key="plan", auth_token=token))["entry"]["value"] == [
            1,
            2,
        ]

    # The same token as a bearer header identifies the agent for tools and resources.
    headers = {"Authorization": f"Bearer {token}"}
    async with http_client(http_server.url, mode=mode, headers=headers) as client:
        context = await ok(client, "get_context", session_id=session_id)
        assert context["count"] == 1
        resource = await client.read_resource(f"session://{session_id}")
        assert "the cache key is wrong" in resource.contents[0].text  # type: ignore[union-attr]
        uris = [str(r.uri) for r in (await client.list_resources()).resources]
        assert f"session://{session_id}" in uris


async def _token(url: str, agent_id: str, agent_type: str = "claude") -> str:
    async with http_client(url, mode="2026-07-28") as client:  # no identity yet: 2026 era
        result = await ok(
            client,
            "authenticate_agent",
            agent_id=agent_id,
            agent_type=agent_type,
            api_key=ADMIN_KEY,
        )
    return str(result["token"])


async def test_a_2025_subscriber_is_notified_over_http(http_server: HttpServer) -> None:
    alice = {"Authorization": f"Bearer {await _token(http_server.url, 'alice')}"}
    bob = {"Authorization": f"Bearer {await _token(http_server.url, 'bob')}"}
    heard = Heard()
    async with (
        http_client(http_server.url, headers=alice) as writer,
        http_client(http_server.url, headers=bob, message_handler=heard) as subscriber,
    ):
        session_id = (await ok(writer, "create_session", purpose="live"))["session"]["id"]
        uri = f"session://{session_id}"
        await subscriber.subscribe_resource(uri)
        await ok(writer, "add_message", session_id=session_id, content="news")
        await heard.wait_for(lambda: uri in heard.updated)


async def test_a_2026_listener_is_notified_over_http(http_server: HttpServer) -> None:
    alice = {"Authorization": f"Bearer {await _token(http_server.url, 'alice')}"}
    bob = {"Authorization": f"Bearer {await _token(http_server.url, 'bob')}"}
    async with (
        http_client(http_server.url, mode="2026-07-28", headers=alice) as writer,
        http_client(http_server.url, mode="2026-07-28", headers=bob) as listener,
    ):
        session_id = (await ok(writer, "create_session", purpose="live"))["session"]["id"]
        uri = f"session://{session_id}"
        async with listener.listen(resource_subscriptions=[uri]) as subscription:
            await ok(writer, "add_message", session_id=session_id, content="news")
            with anyio.fail_after(5):
                assert await subscription.__anext__() == ResourceUpdated(uri=uri)


async def test_two_processes_on_one_database_share_data_and_live_updates(
    data_dir: Path,
) -> None:
    first = start_http_server(data_dir)
    second = start_http_server(data_dir)
    try:
        alice = {"Authorization": f"Bearer {await _token(first.url, 'alice')}"}
        bob = {"Authorization": f"Bearer {await _token(second.url, 'bob')}"}
        heard = Heard()
        async with (
            http_client(first.url, headers=alice) as writer,
            http_client(second.url, headers=bob, message_handler=heard) as subscriber,
        ):
            session_id = (await ok(writer, "create_session", purpose="shared"))["session"]["id"]
            uri = f"session://{session_id}"
            await subscriber.subscribe_resource(uri)
            await ok(writer, "add_message", session_id=session_id, content="from process one")
            await heard.wait_for(lambda: uri in heard.updated)
            page = await ok(subscriber, "get_messages", session_id=session_id)
            assert [m["content"] for m in page["messages"]] == ["from process one"]
    finally:
        stop(first)
        stop(second)


def test_health_and_protected_resource_metadata(http_server: HttpServer) -> None:
    health = httpx2.get(http_server.base + "/health")
    assert health.json()["status"] == "ok"
    metadata = httpx2.get(http_server.base + "/.well-known/oauth-protected-resource").json()
    assert metadata["resource"] == http_server.url
    assert metadata["bearer_methods_supported"] == ["header"]


def test_a_bad_bearer_credential_gets_a_401_challenge(http_server: HttpServer) -> None:
    response = httpx2.post(
        http_server.url,
        headers={
            "Authorization": "Bearer not-a-token",
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
        },
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert "resource_metadata=" in response.headers["www-authenticate"]
    assert response.json()["code"] == "AUTH_FAILED"


def test_requests_for_a_foreign_host_are_refused(http_server: HttpServer) -> None:
    response = httpx2.post(
        http_server.url,
        headers={
            "Host": "evil.example.com",
            "Origin": "http://evil.example.com",
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
        },
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
    )
    assert 400 <= response.status_code < 500


async def test_no_identity_means_no_access_over_http(http_server: HttpServer) -> None:
    async with http_client(http_server.url, mode="2026-07-28") as client:
        assert (await fails(client, "list_sessions"))["code"] == "AUTH_REQUIRED"
    # A 2025 client cannot even open a session without one.
    response = httpx2.post(
        http_server.url,
        headers={"Accept": "application/json, text/event-stream"},
        json=INITIALIZE,
    )
    assert response.status_code == 401
    assert "resource_metadata=" in response.headers["www-authenticate"]
