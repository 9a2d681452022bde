"""The MCP Inspector CLI reads our error results.

The Inspector validates structured content against the tool's output schema on its own
(Ajv, strict, isError or not), so a refusal used to reach its user as "-32602 Structured
content does not match the tool's output schema" instead of the code.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.clients.conftest import NODE_TESTS, Node
from tests.e2e.conftest import ADMIN_KEY, HttpServer

TOOL_IS_ERROR = 5  # the Inspector CLI's exit status for a result with isError set

pytestmark = NODE_TESTS


def _inspector(node_clients: Node) -> Path:
    package = node_clients.home / "node_modules/@modelcontextprotocol/inspector"
    manifest = json.loads((package / "package.json").read_text())
    return package / manifest["bin"]["mcp-inspector"]


def _call(
    node_clients: Node, server: HttpServer, home: Path, tool: str, *args: str
) -> tuple[subprocess.CompletedProcess[str], Any]:
    run = node_clients.run(
        _inspector(node_clients),
        "--cli",
        server.url,
        "--transport",
        "http",
        "--header",
        f"Authorization: Bearer {ADMIN_KEY}",
        "--method",
        "tools/call",
        "--tool-name",
        tool,
        *(part for arg in args for part in ("--tool-arg", arg)),
        "--format",
        "json",
        HOME=str(home),  # it keeps its catalogue and storage under ~/.mcp-inspector
    )
    return run, node_clients.last_json(run)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_the_inspector_gets_the_stable_code_of_a_refused_call(
    node_clients: Node, server: HttpServer, home: Path
) -> None:
    for tool, args, code in [
        ("get_session", ["session_id=nope"], "SESSION_NOT_FOUND"),
        ("list_sessions", ["auth_token=not-a-token"], "AUTH_FAILED"),
    ]:
        run, output = _call(node_clients, server, home, tool, *args)
        assert run.returncode == TOOL_IS_ERROR, (run.stdout, run.stderr)
        result = output["result"]
        assert result["isError"] is True
        assert result["structuredContent"]["code"] == code, result
        assert json.loads(result["content"][0]["text"])["code"] == code


def test_the_inspector_accepts_a_success_result(
    node_clients: Node, server: HttpServer, home: Path
) -> None:
    run, output = _call(node_clients, server, home, "create_session", "purpose=inspected")
    assert run.returncode == 0, (run.stdout, run.stderr)
    assert output["result"]["structuredContent"]["session"]["purpose"] == "inspected"
