"""Prompts, completion and the declared capabilities against a real server over HTTP."""

from __future__ import annotations

import pytest
from mcp.shared.exceptions import MCPError
from mcp_types import METHOD_NOT_FOUND, EmptyResult, ResourceTemplateReference, SetLevelRequest
from mcp_types import SetLevelRequestParams as LevelParams

from tests.e2e.conftest import ADMIN_KEY, HttpServer, http_client
from tests.mcp.conftest import ok
from tests.mcp.test_capabilities import DECLARED

SESSION = ResourceTemplateReference(type="ref/resource", uri="session://{session_id}")


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_prompts_and_completion_over_http(http_server: HttpServer, mode: str) -> None:
    operator = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with http_client(http_server.url, mode=mode, headers=operator) as client:
        token = (
            await ok(client, "authenticate_agent", agent_id=f"resumer-{mode}", api_key=ADMIN_KEY)
        )["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    async with http_client(http_server.url, mode=mode, headers=bearer) as client:
        # auto negotiates 2026-07-28 through server/discover.
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        declared = client.server_capabilities.model_dump(by_alias=True, exclude_none=True)
        assert declared == DECLARED
        session_id = (await ok(client, "create_session", purpose="over http"))["session"]["id"]
        await ok(client, "add_message", session_id=session_id, content="where we stopped")
        prompt = await client.get_prompt("resume_session", {"session_id": session_id})
        assert "where we stopped" in prompt.messages[0].content.text  # type: ignore[union-attr]
        completed = await client.complete(SESSION, {"name": "session_id", "value": session_id})
        assert completed.completion.values == [session_id]
        level = SetLevelRequest(params=LevelParams(level="info"))
        with pytest.raises(MCPError) as refused:
            await client.session.send_request(level, EmptyResult)
        assert refused.value.error.code == METHOD_NOT_FOUND


async def test_a_stateless_anonymous_caller_may_list_prompts_but_not_get_one(
    http_server: HttpServer,
) -> None:
    async with http_client(http_server.url, mode="2026-07-28") as anonymous:
        assert {p.name for p in (await anonymous.list_prompts()).prompts} == {
            "start_collaboration",
            "hand_off_to_subagent",
            "resume_session",
        }
        with pytest.raises(MCPError) as refused:
            await anonymous.get_prompt("start_collaboration", {"purpose": "p"})
        assert refused.value.error.data["code"] == "AUTH_REQUIRED"
        with pytest.raises(MCPError) as completion:
            await anonymous.complete(SESSION, {"name": "session_id", "value": ""})
        assert completion.value.error.data["code"] == "AUTH_REQUIRED"
