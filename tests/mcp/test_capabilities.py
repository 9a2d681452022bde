"""What the server declares in each protocol era, exactly, and that each of it works."""

from __future__ import annotations

import json
import logging

import anyio
import pytest
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import ResourceUpdated
from mcp_types import (
    METHOD_NOT_FOUND,
    EmptyResult,
    ResourceTemplateReference,
    SetLevelRequest,
    SetLevelRequestParams,
)

from shared_context_server.app import App
from tests.mcp.conftest import connect_client, ok, token_for
from tests.mcp.live import Heard

# Both eras alike: no logging (no log message is ever sent), no list-changed notifications
# for tools or prompts (both lists are fixed), no extensions.
DECLARED = {
    "tools": {"listChanged": False},
    "resources": {"subscribe": True, "listChanged": True},
    "prompts": {"listChanged": False},
    "completions": {},
}


def _declared(capabilities: object) -> object:
    return capabilities.model_dump(by_alias=True, exclude_none=True)  # type: ignore[attr-defined]


async def test_the_handshake_era_declares_exactly_what_the_server_does(app: App) -> None:
    async with connect_client(app, token_for(app, "alice")) as client:
        assert client.protocol_version == "2025-11-25"
        assert _declared(client.server_capabilities) == DECLARED


async def test_discover_declares_the_same_in_the_2026_era(app: App) -> None:
    # "auto" asks server/discover and adopts its answer (a pinned version would not ask).
    async with connect_client(app, token_for(app, "alice"), mode="auto") as client:
        assert client.protocol_version == "2026-07-28"
        assert _declared(client.server_capabilities) == DECLARED


async def test_each_declared_capability_works_in_the_handshake_era(backend_app: App) -> None:
    heard = Heard()
    token = token_for(backend_app, "alice")
    async with connect_client(backend_app, token, message_handler=heard) as client:
        assert "create_session" in {t.name for t in (await client.list_tools()).tools}
        session_id = (await ok(client, "create_session", purpose="p"))["session"]["id"]
        uri = f"session://{session_id}"
        assert uri in {str(r.uri) for r in (await client.list_resources()).resources}
        await client.subscribe_resource(uri)
        await ok(client, "add_message", session_id=session_id, content="hello")
        await heard.wait_for(lambda: uri in heard.updated)
        await ok(client, "create_session", purpose="another")
        await heard.wait_for(lambda: heard.list_changed >= 1)
        body = json.loads((await client.read_resource(uri)).contents[0].text)  # type: ignore[union-attr]
        assert [m["content"] for m in body["messages"]] == ["hello"]
        prompt = await client.get_prompt("resume_session", {"session_id": session_id})
        assert "hello" in prompt.messages[0].content.text  # type: ignore[union-attr]
        completed = await client.complete(
            ResourceTemplateReference(type="ref/resource", uri="session://{session_id}"),
            {"name": "session_id", "value": session_id},
        )
        assert completed.completion.values == [session_id]


async def test_each_declared_capability_works_in_the_2026_era(backend_app: App) -> None:
    async with connect_client(backend_app, token_for(backend_app, "alice"), mode="auto") as client:
        session_id = (await ok(client, "create_session", purpose="p"))["session"]["id"]
        uri = f"session://{session_id}"
        # A listen stream honours exactly what discover declared: resource notifications,
        # not tool or prompt list changes.
        async with client.listen(
            resource_subscriptions=[uri],
            resources_list_changed=True,
            tools_list_changed=True,
            prompts_list_changed=True,
        ) as stream:
            assert stream.honored.resource_subscriptions == [uri]
            assert stream.honored.resources_list_changed is True
            assert not stream.honored.tools_list_changed
            assert not stream.honored.prompts_list_changed
            await ok(client, "add_message", session_id=session_id, content="hello")
            with anyio.fail_after(5):
                event = await stream.__anext__()
        assert event == ResourceUpdated(uri=uri)
        assert [p.name for p in (await client.list_prompts()).prompts]
        completed = await client.complete(
            ResourceTemplateReference(type="ref/resource", uri="session://{session_id}"),
            {"name": "session_id", "value": ""},
        )
        assert completed.completion.values == [session_id]


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_logging_is_not_offered(
    app: App, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    set_level = SetLevelRequest(params=SetLevelRequestParams(level="debug"))
    async with connect_client(app, token_for(app, "alice"), mode=mode) as client:
        with pytest.raises(MCPError) as refused:
            await client.session.send_request(set_level, EmptyResult)
    assert refused.value.error.code == METHOD_NOT_FOUND
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
