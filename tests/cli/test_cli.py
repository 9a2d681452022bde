"""The operator CLI against a real data directory."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jwt
import pytest
from mcp import Client, StdioServerParameters
from typer.testing import CliRunner

from shared_context_server.cli.main import cli
from tests import processes
from tests.e2e.conftest import ADMIN_KEY, free_port, server_env

SECRET = "cli-secret-" + "c" * 40


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"SCS_DATA_DIR": str(tmp_path / "data"), "JWT_SECRET_KEY": SECRET}


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.stdout + result.stderr


def test_keys_can_be_created_listed_and_revoked(env: dict[str, str]) -> None:
    code, output = run(env, "keys", "create", "ci-bot", "--permissions", "read")
    assert code == 0, output
    assert output.strip().splitlines()[1].startswith("scs_")
    code, output = run(env, "keys", "list")
    rows = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    by_name = {row["name"]: row for row in rows}
    assert by_name["ci-bot"]["permissions"] == ["read"]
    assert by_name["ci-bot"]["revoked"] is False
    assert "bootstrap-admin" in by_name
    assert "scs_" not in output.replace("bootstrap_api_key", "")
    assert run(env, "keys", "revoke", "ci-bot")[0] == 0
    assert run(env, "keys", "revoke", "ci-bot")[0] == 1


def test_bad_key_requests_fail_clearly(env: dict[str, str]) -> None:
    code, output = run(env, "keys", "create", "x", "--permissions", "root")
    assert code == 2
    assert "INVALID_INPUT" in output
    assert run(env, "keys", "create", "dup")[0] == 0
    code, output = run(env, "keys", "create", "dup")
    assert code == 2
    assert "CONFLICT" in output


def test_token_issues_a_verifiable_jwt(env: dict[str, str]) -> None:
    code, output = run(env, "token", "planner", "--agent-type", "claude", "--permissions", "read")
    assert code == 0, output
    token = output.strip().splitlines()[0]
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="shared-context-server")
    assert claims["sub"] == "planner"
    assert claims["agent_type"] == "claude"
    assert claims["permissions"] == ["read"]
    assert run(env, "token", "bad id!")[0] == 2


def test_db_upgrade_and_version(env: dict[str, str]) -> None:
    code, output = run(env, "db", "upgrade")
    assert code == 0
    assert "up to date" in output
    code, output = run(env, "version")
    assert code == 0
    assert output.strip() == "0.1.0"


def test_serve_rejects_an_unknown_transport(env: dict[str, str]) -> None:
    code, _ = run(env, "serve", "--transport", "carrier-pigeon")
    assert code == 2


def test_keys_are_bound_to_the_identities_they_may_act_as(env: dict[str, str]) -> None:
    code, output = run(env, "keys", "create", "ci-bot")
    assert code == 0, output
    assert "acting as ci-bot (generic)" in output
    code, output = run(
        env, "keys", "create", "pool", "--agent-pattern", "worker-*", "--agent-type", "codex,claude"
    )
    assert code == 0, output
    code, output = run(env, "keys", "create", "ops", "--any-agent", "--permissions", "read,admin")
    assert code == 0, output
    rows = {row["name"]: row for row in map(json.loads, run(env, "keys", "list")[1].splitlines())}
    assert (rows["ci-bot"]["agent_id"], rows["ci-bot"]["agent_types"]) == ("ci-bot", ["generic"])
    assert rows["pool"]["agent_pattern"] == "worker-*"
    assert rows["pool"]["agent_types"] == ["claude", "codex"]
    assert (rows["ops"]["any_agent"], rows["ops"]["agent_types"]) == (True, None)
    code, output = run(env, "keys", "create", "both", "--agent-id", "a", "--agent-pattern", "b*")
    assert (code, "INVALID_INPUT" in output) == (2, True)
    code, output = run(env, "keys", "create", "sub", "--agent-id", "alice:helper")
    assert (code, "IDENTITY_NOT_ALLOWED" in output) == (2, True)


def test_an_operator_token_cannot_name_a_sub_agent(env: dict[str, str]) -> None:
    code, output = run(env, "token", "alice:helper")
    assert (code, "IDENTITY_NOT_ALLOWED" in output) == (2, True)


# --- scs serve: SCS_TRANSPORT, overridden by --transport ---------------------------------


def test_an_unknown_scs_transport_is_one_line_error(env: dict[str, str]) -> None:
    code, output = run({**env, "SCS_TRANSPORT": "carrier-pigeon"}, "serve")
    assert code == 2
    assert output.startswith("error: invalid configuration: transport:"), output
    assert "Traceback" not in output


def test_scs_transport_chooses_the_transport(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    env = server_env(tmp_path / "data", SCS_TRANSPORT="http", SCS_PORT=str(port))
    process = processes.spawn(
        [sys.executable, "-m", "shared_context_server", "serve"], env=env, log=log
    )
    try:
        processes.wait_healthy(process, f"http://127.0.0.1:{port}/health", log=log)
    finally:
        processes.reap(process)


async def test_the_transport_flag_overrides_scs_transport(tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "shared_context_server", "serve", "--transport", "stdio"],
        env=server_env(tmp_path / "data", SCS_TRANSPORT="http", SCS_AUTH_TOKEN=ADMIN_KEY),
    )
    async with Client(params, mode="legacy", cache=None) as client:
        assert (await client.call_tool("list_sessions", {})).is_error is False


def test_stdio_without_the_auth_token_parameter_needs_scs_auth_token(env: dict[str, str]) -> None:
    code, output = run({**env, "SCS_AUTH_TOKEN_PARAM": "false"}, "serve", "--transport", "stdio")
    assert code == 2
    assert "SCS_AUTH_TOKEN" in output


async def test_a_stdio_server_without_the_parameter_acts_as_scs_auth_token(
    tmp_path: Path,
) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "shared_context_server", "serve", "--transport", "stdio"],
        env=server_env(
            tmp_path / "data",
            SCS_AUTH_TOKEN=ADMIN_KEY,
            SCS_AGENT_ID="lean-agent",
            SCS_AUTH_TOKEN_PARAM="false",
        ),
    )
    async with Client(params, mode="legacy", cache=None) as client:
        tools = (await client.list_tools()).tools
        assert not any(
            "auth_token" in t.input_schema["properties"] for t in tools if t.name != "refresh_token"
        )
        created = await client.call_tool("create_session", {"purpose": "lean"})
        assert created.structured_content is not None
        assert created.structured_content["session"]["created_by"] == "lean-agent"


def test_postgresql_without_its_driver_is_one_line_error(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(  # as if the postgres extra were not installed
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "psycopg" else find_spec(name, *a),
    )
    url = {"SCS_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/test"}
    code, output = run({**env, **url}, "serve", "--transport", "http", "--port", "0")
    assert code == 2, output
    assert "STORAGE_UNAVAILABLE" in output
    assert "shared-context-server[postgres]" in output
    assert "Traceback" not in output
