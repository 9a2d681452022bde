"""Idempotency keys on add_message and set_memory; version checks on set_memory."""

from __future__ import annotations

from shared_context_server.app import App
from tests.mcp.conftest import connect_client, fails, ok


async def test_a_retried_add_message_posts_once(
    app: App, tokens: dict[str, str], mode: str
) -> None:
    async with connect_client(app, tokens["alice"], mode=mode) as client:
        session_id = (await ok(client, "create_session", purpose="p"))["session"]["id"]
        first = await ok(
            client, "add_message", session_id=session_id, content="once", idempotency_key="k-1"
        )
        again = await ok(
            client, "add_message", session_id=session_id, content="once", idempotency_key="k-1"
        )
        assert again["message"] == first["message"]
        assert (await ok(client, "get_messages", session_id=session_id))["count"] == 1
        other = await ok(
            client, "add_message", session_id=session_id, content="once", idempotency_key="k-2"
        )
        assert other["message"]["id"] != first["message"]["id"]
        reused = await fails(
            client,
            "add_message",
            session_id=session_id,
            content="different",
            idempotency_key="k-1",
        )
        assert reused["code"] == "CONFLICT"


async def test_idempotency_keys_belong_to_one_agent(app: App, tokens: dict[str, str]) -> None:
    async with connect_client(app, tokens["alice"]) as alice:
        session_id = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        await ok(alice, "add_message", session_id=session_id, content="x", idempotency_key="k")
    async with connect_client(app, tokens["bob"]) as bob:
        mine = await ok(bob, "add_message", session_id=session_id, content="x", idempotency_key="k")
        assert mine["message"]["sender"] == "bob"


async def test_a_retried_set_memory_returns_the_first_result(
    app: App, tokens: dict[str, str]
) -> None:
    async with connect_client(app, tokens["alice"]) as client:
        first = await ok(client, "set_memory", key="k", value=1, idempotency_key="op-1")
        await ok(client, "set_memory", key="k", value=2)
        again = await ok(client, "set_memory", key="k", value=1, idempotency_key="op-1")
        assert again["entry"] == first["entry"]
        assert (await ok(client, "get_memory", key="k"))["entry"]["value"] == 2


async def test_set_memory_with_a_version_check_refuses_a_lost_update(
    app: App, tokens: dict[str, str], mode: str
) -> None:
    async with connect_client(app, tokens["alice"], mode=mode) as client:
        created = await ok(client, "set_memory", key="plan", value="v1", expected_version=0)
        assert created["entry"]["version"] == 1
        assert (await fails(client, "set_memory", key="plan", value="x", expected_version=0))[
            "code"
        ] == "CONFLICT"
        read = (await ok(client, "get_memory", key="plan"))["entry"]
        updated = await ok(
            client, "set_memory", key="plan", value="v2", expected_version=read["version"]
        )
        assert updated["entry"]["version"] == 2
        stale = await fails(
            client, "set_memory", key="plan", value="v3", expected_version=read["version"]
        )
        assert stale["code"] == "CONFLICT"
        assert stale["details"]["current_version"] == 2
        assert (await ok(client, "get_memory", key="plan"))["entry"]["value"] == "v2"
