"""A stdio server's stderr is the client's log: at the default WARNING level it stays quiet
(FastMCP's "Starting MCP server" INFO line included); SCS_LOG_LEVEL decides."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests import processes
from tests.e2e.conftest import ADMIN_KEY, server_env
from tests.security.inprocess import INITIALIZE

REQUESTS = [
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "list_sessions"}},
]


def _session(data_dir: Path, **env: str) -> tuple[list[dict[str, Any]], str]:
    """One stdio session (initialize, tools/list, a tool call, end of input): the answers
    and everything the server wrote to stderr."""
    log = data_dir.parent / "stderr.log"
    with log.open("wb") as stderr:
        process = processes.spawn(
            [sys.executable, "-m", "shared_context_server", "serve", "--transport", "stdio"],
            env=server_env(data_dir, SCS_AUTH_TOKEN=ADMIN_KEY, **env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    assert process.stdin is not None
    assert process.stdout is not None
    answers: list[dict[str, Any]] = []

    def send(*messages: dict[str, Any]) -> None:
        assert process.stdin is not None
        process.stdin.write("".join(json.dumps(m) + "\n" for m in messages).encode())
        process.stdin.flush()

    def answer_to(request_id: int) -> None:
        # The pytest hang guard bounds a server that never answers.
        assert process.stdout is not None
        while not any(a.get("id") == request_id for a in answers):
            line = process.stdout.readline()
            assert line, f"the server exited:\n{log.read_text()}"
            answers.append(json.loads(line))

    try:
        send(INITIALIZE)
        answer_to(1)
        send(*REQUESTS)
        answer_to(3)
        process.stdin.close()  # end of the session: the server exits on its own
        process.wait(timeout=processes.STOP_TIMEOUT_S)
    finally:
        processes.reap(process)
    return answers, log.read_text()


def test_stdio_stderr_has_no_info_line_at_warning(data_dir: Path) -> None:
    answers, stderr = _session(data_dir)
    by_id = {answer.get("id"): answer for answer in answers}
    assert by_id[2]["result"]["tools"], by_id
    assert by_id[3]["result"]["isError"] is False, by_id[3]
    assert "INFO" not in stderr, stderr
    assert "Starting MCP server" not in stderr, stderr


def test_scs_log_level_info_shows_the_start_line(data_dir: Path) -> None:
    _, stderr = _session(data_dir, SCS_LOG_LEVEL="INFO")
    assert "Starting MCP server" in stderr, stderr
