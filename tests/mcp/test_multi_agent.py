"""Several agents of two types and different permissions share one session.

The expectations are written out by hand from DESIGN.md §4, not computed with the
server's own rule, so this test checks the rule rather than restating it.
"""

from __future__ import annotations

import json

import anyio
import pytest
from mcp import Client
from mcp.client.subscriptions import ResourceUpdated

from shared_context_server.app import App
from tests.mcp.conftest import connect_client, fails, ok
from tests.mcp.live import Heard

POSTS = [
    # (label, author, visibility)
    ("m1", "alice", "public"),
    ("m2", "alice", "private"),
    ("m3", "alice", "agent_only"),  # claude agents
    ("m4", "carol", "agent_only"),  # gemini agents
    ("m5", "carol", "private"),
    ("m6", "root", "admin_only"),
    ("m7", "root", "private"),
]
SEES = {
    "alice": {"m1", "m2", "m3"},  # claude, read+write
    "bob": {"m1", "m3"},  # claude, read+write
    "carol": {"m1", "m4", "m5"},  # gemini, read+write
    "root": {"m1", "m4", "m6", "m7"},  # gemini, admin: no one else's private
    "reader": {"m1", "m3"},  # claude, read only
}


async def _labels_via_every_read_path(
    client: Client, session_id: str, ids: dict[str, int]
) -> dict[str, set[str]]:
    label_of = {v: k for k, v in ids.items()}
    seen: dict[str, set[str]] = {}
    page = await ok(client, "get_messages", session_id=session_id, limit=100)
    seen["get_messages"] = {label_of[m["id"]] for m in page["messages"]}
    context = await ok(client, "get_context", session_id=session_id, limit=100)
    seen["get_context"] = {label_of[m["id"]] for m in context["messages"]}
    hits = await ok(
        client,
        "search_context",
        session_id=session_id,
        query="shared finding",
        fuzzy_threshold=50,
        limit=50,
    )
    seen["search_context"] = {label_of[h["message"]["id"]] for h in hits["hits"]}
    result = await client.read_resource(f"session://{session_id}")
    body = json.loads(result.contents[0].text)  # type: ignore[union-attr]
    seen["resource"] = {label_of[m["id"]] for m in body["messages"]}
    gettable = set()
    for label, message_id in ids.items():
        response = await client.call_tool("get_message", {"message_id": message_id})
        if not response.is_error:
            gettable.add(label)
        else:
            assert response.structured_content is not None
            assert response.structured_content["code"] == "MESSAGE_NOT_FOUND"
    seen["get_message"] = gettable
    return seen


async def test_each_agent_sees_exactly_what_the_visibility_rules_allow(
    app: App, tokens: dict[str, str], mode: str
) -> None:
    ids: dict[str, int] = {}
    async with connect_client(app, tokens["alice"], mode=mode) as alice:
        session_id = (await ok(alice, "create_session", purpose="team"))["session"]["id"]
    for label, author, visibility in POSTS:
        async with connect_client(app, tokens[author], mode=mode) as client:
            posted = await ok(
                client,
                "add_message",
                session_id=session_id,
                content=f"shared finding {label}",
                visibility=visibility,
            )
            ids[label] = posted["message"]["id"]

    for agent, expected in SEES.items():
        async with connect_client(app, tokens[agent], mode=mode) as client:
            seen = await _labels_via_every_read_path(client, session_id, ids)
        for path, labels in seen.items():
            assert labels == expected, (agent, path)


async def test_a_reader_can_read_but_not_post(app: App, tokens: dict[str, str]) -> None:
    async with connect_client(app, tokens["alice"]) as alice:
        session_id = (await ok(alice, "create_session", purpose="team"))["session"]["id"]
    async with connect_client(app, tokens["reader"]) as reader:
        error = await fails(reader, "add_message", session_id=session_id, content="hi")
        assert error["code"] == "PERMISSION_DENIED"
        await ok(reader, "get_messages", session_id=session_id)


@pytest.mark.parametrize("visibility", ["public", "agent_only"])
async def test_a_subscribed_agent_is_told_when_another_posts_in_2025(
    app: App, tokens: dict[str, str], visibility: str
) -> None:
    heard = Heard()
    async with (
        connect_client(app, tokens["alice"]) as alice,
        connect_client(app, tokens["bob"], message_handler=heard) as bob,
    ):
        session_id = (await ok(alice, "create_session", purpose="team"))["session"]["id"]
        await bob.subscribe_resource(f"session://{session_id}")
        await ok(alice, "add_message", session_id=session_id, content="news", visibility=visibility)
        await heard.wait_for(lambda: heard.updated == [f"session://{session_id}"])


async def test_a_listening_agent_is_told_when_another_posts_in_2026(
    app: App, tokens: dict[str, str]
) -> None:
    async with (
        connect_client(app, tokens["alice"], mode="2026-07-28") as alice,
        connect_client(app, tokens["bob"], mode="2026-07-28") as bob,
    ):
        session_id = (await ok(alice, "create_session", purpose="team"))["session"]["id"]
        uri = f"session://{session_id}"
        async with bob.listen(resource_subscriptions=[uri]) as subscription:
            await ok(alice, "add_message", session_id=session_id, content="news")
            with anyio.fail_after(5):
                event = await subscription.__anext__()
        assert event == ResourceUpdated(uri=uri)
