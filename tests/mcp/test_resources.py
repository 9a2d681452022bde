import json

import pytest
from mcp.shared.exceptions import MCPError

from shared_context_server.app import App
from tests.mcp.conftest import connect_client, ok


async def test_resources_list_the_callers_sessions_and_memory(
    app: App, tokens: dict[str, str], mode: str
) -> None:
    async with connect_client(app, tokens["alice"], mode=mode) as client:
        session_id = (await ok(client, "create_session", purpose="the work"))["session"]["id"]
        listed = await client.list_resources()
        uris = [str(r.uri) for r in listed.resources]
        assert uris == ["agent://alice/memory", f"session://{session_id}"]
        templates = await client.list_resource_templates()
        assert {t.uri_template for t in templates.resource_templates} == {
            "session://{session_id}",
            "agent://{agent_id}/memory",
        }


async def test_reading_a_session_resource_shows_what_the_reader_may_see(
    app: App, tokens: dict[str, str], mode: str
) -> None:
    async with connect_client(app, tokens["alice"]) as alice:
        session_id = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        await ok(alice, "add_message", session_id=session_id, content="public")
        await ok(alice, "add_private_note", session_id=session_id, content="alice only")
    async with connect_client(app, tokens["bob"], mode=mode) as bob:
        result = await bob.read_resource(f"session://{session_id}")
        body = json.loads(result.contents[0].text)  # type: ignore[union-attr]
        assert body["session"]["id"] == session_id
        assert [m["content"] for m in body["messages"]] == ["public"]


async def test_memory_resource_is_readable_by_its_owner_only(
    app: App, tokens: dict[str, str], mode: str
) -> None:
    async with connect_client(app, tokens["alice"], mode=mode) as alice:
        await ok(alice, "set_memory", key="k", value={"x": 1})
        result = await alice.read_resource("agent://alice/memory")
        body = json.loads(result.contents[0].text)  # type: ignore[union-attr]
        assert [(e["key"], e["value"]) for e in body["entries"]] == [("k", {"x": 1})]
    async with connect_client(app, tokens["bob"], mode=mode) as bob:
        with pytest.raises(MCPError) as denied:
            await bob.read_resource("agent://alice/memory")
    assert denied.value.error.data["code"] == "PERMISSION_DENIED"


async def test_unknown_resources_are_a_clear_error(
    app: App, tokens: dict[str, str], mode: str
) -> None:
    async with connect_client(app, tokens["alice"], mode=mode) as client:
        for uri, code in [
            ("session://session_missing", "SESSION_NOT_FOUND"),
            ("file:///etc/passwd", "RESOURCE_NOT_FOUND"),
        ]:
            with pytest.raises(MCPError) as error:
                await client.read_resource(uri)
            assert error.value.error.code == -32602
            assert error.value.error.data["code"] == code
            assert error.value.error.data["uri"] == uri


async def test_resources_need_an_identity(app: App, mode: str) -> None:
    async with connect_client(app, mode=mode) as client:
        with pytest.raises(MCPError) as error:
            await client.list_resources()
        assert error.value.error.data["code"] == "AUTH_REQUIRED"
        with pytest.raises(MCPError):
            await client.read_resource("session://anything")
