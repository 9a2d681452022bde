"""The TypeScript SDK 1.x client, the one most hosts embed, reads our error results.

It validates a result's structured content against the tool's output schema even when
``isError`` is set; before every schema had an error branch it threw "-32602 Structured
content does not match the tool's output schema" for every refusal, and the code was lost.
"""

from __future__ import annotations

import json
from typing import Any

from tests.clients.conftest import NODE_TESTS, Node
from tests.e2e.conftest import ADMIN_KEY, HttpServer

pytestmark = NODE_TESTS


def _calls(node_clients: Node, server: HttpServer, *calls: tuple[str, dict[str, Any]]) -> Any:
    spec = json.dumps([{"tool": tool, "arguments": args} for tool, args in calls])
    run = node_clients.run("ts_sdk_client.mjs", server.url, spec, SCS_BEARER=ADMIN_KEY)
    assert run.returncode == 0, run.stderr
    report = node_clients.last_json(run)
    assert report["sdk"].startswith("1."), report["sdk"]
    return report["outcomes"]


def test_the_ts_sdk_gets_the_stable_code_of_a_refused_call(
    node_clients: Node, server: HttpServer
) -> None:
    not_found, bad_key = _calls(
        node_clients,
        server,
        ("get_session", {"session_id": "nope"}),
        ("list_sessions", {"auth_token": "not-a-token"}),
    )
    for outcome, code in ((not_found, "SESSION_NOT_FOUND"), (bad_key, "AUTH_FAILED")):
        assert "thrown" not in outcome, outcome
        assert outcome["isError"] is True
        assert outcome["structuredContent"]["success"] is False
        assert outcome["structuredContent"]["code"] == code
        assert outcome["schemaValid"] is True, outcome["schemaError"]
        assert json.loads(outcome["text"])["code"] == code  # what a text-only host shows
    assert not_found["structuredContent"]["details"] == {"session_id": "nope"}


def test_the_ts_sdk_accepts_a_success_result(node_clients: Node, server: HttpServer) -> None:
    (created,) = _calls(node_clients, server, ("create_session", {"purpose": "ts sdk"}))
    assert "thrown" not in created, created
    assert created["isError"] is False
    assert created["structuredContent"]["success"] is True
    assert created["structuredContent"]["session"]["purpose"] == "ts sdk"
    assert created["schemaValid"] is True, created["schemaError"]


def test_the_ts_sdk_gets_an_unknown_tool_as_invalid_params(
    node_clients: Node, server: HttpServer
) -> None:
    (unknown,) = _calls(node_clients, server, ("no_such_tool", {}))
    assert unknown["thrown"]["code"] == -32602
    assert unknown["thrown"]["data"]["code"] == "INVALID_INPUT"
    assert unknown["thrown"]["data"]["details"] == {"tool": "no_such_tool"}
