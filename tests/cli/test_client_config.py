"""``scs client-config``: every client's configuration parses, has that client's shape, and
carries a credential that works through a real MCP client, also a day and more later."""

from __future__ import annotations

import json
import os
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from pydantic import SecretStr
from typer.testing import CliRunner

from shared_context_server.app import App, running_app
from shared_context_server.cli import client_config
from shared_context_server.cli.client_config import (
    CLIENTS,
    ConfigRequest,
    Connection,
    build_connection,
    obtain_credential,
    render,
)
from shared_context_server.cli.main import cli
from shared_context_server.clock import FakeClock
from shared_context_server.config import Settings
from shared_context_server.domain.models import KeyBinding
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import DomainError
from shared_context_server.mcp.identity import AmbientCredential
from shared_context_server.mcp.server import build_server
from shared_context_server.services.auth import ALL_PERMISSIONS
from tests.conftest import READ_WRITE
from tests.e2e.conftest import http_client
from tests.mcp.conftest import fails, ok
from tests.security.inprocess import initialize, serving

DAY = 24 * 3600


# Reading each client's format back, as that client would ------------------------------


@dataclass
class Parsed:
    """What a client takes from its configuration: where the server is and what it sends."""

    transport: str
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    command: str = ""
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


def _stdio(entry: dict[str, Any]) -> Parsed:
    return Parsed("stdio", command=entry["command"], args=entry["args"], env=entry["env"])


def _only(servers: dict[str, Any], name: str) -> dict[str, Any]:
    assert list(servers) == [name]
    entry: dict[str, Any] = servers[name]
    return entry


def _claude_code(text: str, name: str) -> Parsed:
    argv = shlex.split(text)
    assert argv[:3] == ["claude", "mcp", "add"], argv
    rest, command = argv[3:], []
    if "--" in rest:
        command = rest[rest.index("--") + 1 :]
        rest = rest[: rest.index("--")]
    options: dict[str, list[str]] = {}
    positional = []
    i = 0
    while i < len(rest):
        if rest[i].startswith("-"):
            options.setdefault(rest[i], []).append(rest[i + 1])
            i += 2
        else:
            positional.append(rest[i])
            i += 1
    assert set(options) <= {"--transport", "--header", "-e"}
    (transport,) = options["--transport"]
    if transport == "http":
        assert positional[0] == name
        assert len(positional) == 2
        assert not command
        headers = dict(h.split(": ", 1) for h in options.get("--header", []))
        return Parsed("http", url=positional[1], headers=headers)
    assert transport == "stdio"
    assert positional == [name]
    env = dict(e.split("=", 1) for e in options.get("-e", []))
    return Parsed("stdio", command=command[0], args=command[1:], env=env)


def _claude_desktop(text: str, name: str) -> Parsed:
    config = json.loads(text)
    assert list(config) == ["mcpServers"]
    entry = _only(config["mcpServers"], name)
    assert set(entry) == {"command", "args", "env"}  # the only shape the file takes
    if entry["command"] != "npx":
        return _stdio(entry)
    # mcp-remote: -y mcp-remote URL --header Name:Value..., ${VAR} from its environment.
    args = entry["args"]
    assert args[:2] == ["-y", "mcp-remote"]
    headers = {}
    for i, arg in enumerate(args):
        if arg == "--header":
            key, value = args[i + 1].split(":", 1)
            for var, secret in entry["env"].items():
                value = value.replace("${" + var + "}", secret)
            headers[key] = value
    return Parsed("http", url=args[2], headers=headers)


def _gemini_cli(text: str, name: str) -> Parsed:
    config = json.loads(text)
    assert list(config) == ["mcpServers"]
    entry = _only(config["mcpServers"], name)
    if "httpUrl" in entry:  # url alone would be SSE to Gemini CLI
        assert set(entry) == {"httpUrl", "headers"}
        return Parsed("http", url=entry["httpUrl"], headers=entry["headers"])
    assert entry["timeout"] >= 30_000  # `gemini mcp list` allows 5 s without it
    return _stdio(entry)


def _codex(text: str, name: str) -> Parsed:
    config = tomllib.loads(text)
    assert list(config) == ["mcp_servers"]
    entry = _only(config["mcp_servers"], name)
    if "url" in entry:
        assert set(entry) == {"url", "http_headers"}  # `headers` would be ignored by codex
        return Parsed("http", url=entry["url"], headers=entry["http_headers"])
    assert entry["startup_timeout_sec"] >= 10
    return _stdio(entry)


def _cursor(text: str, name: str) -> Parsed:
    config = json.loads(text)
    assert list(config) == ["mcpServers"]
    entry = _only(config["mcpServers"], name)
    if "url" in entry:
        assert set(entry) == {"url", "headers"}
        return Parsed("http", url=entry["url"], headers=entry["headers"])
    return _stdio(entry)


def _typed(entry: dict[str, Any]) -> Parsed:
    if entry["type"] == "http":
        assert set(entry) == {"type", "url", "headers"}
        return Parsed("http", url=entry["url"], headers=entry["headers"])
    assert entry["type"] == "stdio"
    return _stdio(entry)


def _vscode(text: str, name: str) -> Parsed:
    config = json.loads(text)
    assert list(config) == ["servers"]  # not mcpServers
    return _typed(_only(config["servers"], name))


def _generic(text: str, name: str) -> Parsed:
    config = json.loads(text)
    assert list(config) == ["mcpServers"]
    return _typed(_only(config["mcpServers"], name))


READERS = {
    "claude-code": _claude_code,
    "claude-desktop": _claude_desktop,
    "gemini-cli": _gemini_cli,
    "codex": _codex,
    "cursor": _cursor,
    "vscode": _vscode,
    "generic": _generic,
}


def read_config(client: str, text: str, name: str = "shared-context") -> Parsed:
    """A printed configuration as its client reads it; fails on any other shape."""
    return READERS[client](text, name)


# Pure rendering --------------------------------------------------------------------------

ODD = 'a "quoted" \\ back\tslash é \x7f ünï/ \U0001f600'
HTTP = Connection(
    "shared-context",
    "http",
    url="http://127.0.0.1:23456/mcp",
    headers={"Authorization": "Bearer scs_abc-DEF_123", "X-Agent-Id": "worker-1"},
)
STDIO = Connection(
    "my_server-2",
    "stdio",
    command="/opt/with space/it's/scs",
    args=("serve", "--transport", "stdio"),
    env={"SCS_AUTH_TOKEN": "scs_xyz", "SCS_DATA_DIR": "/data/" + ODD},
)


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("connection", [HTTP, STDIO], ids=["http", "stdio"])
def test_every_rendering_parses_back_to_its_connection(client: str, connection: Connection) -> None:
    rendered = render(client, connection)
    parsed = read_config(client, rendered.text, connection.name)
    assert parsed.transport == connection.transport
    if connection.transport == "http":
        assert (parsed.url, parsed.headers) == (connection.url, dict(connection.headers))
    else:
        assert parsed.command == connection.command
        assert parsed.args == list(connection.args)
        assert parsed.env == dict(connection.env)
    assert rendered.where


def test_claude_desktop_reaches_http_through_mcp_remote_with_the_key_in_its_env() -> None:
    entry = json.loads(render("claude-desktop", HTTP).text)["mcpServers"]["shared-context"]
    assert "scs_abc" not in " ".join(entry["args"])  # not in the arguments mcp-remote logs
    assert entry["env"] == {"SCS_AUTH_HEADER": "Bearer scs_abc-DEF_123"}
    assert "--allow-http" not in entry["args"]  # loopback needs none
    remote = Connection("n", "http", url="http://10.1.2.3:9/mcp", headers={"Authorization": "x"})
    assert (
        "--allow-http"
        in json.loads(render("claude-desktop", remote).text)["mcpServers"]["n"]["args"]
    )


def test_the_default_url_is_reachable_from_this_host(tmp_path: Path) -> None:
    def url(host: str) -> str:
        return client_config.default_url(Settings(data_dir=tmp_path, host=host, port=8000))

    assert url("127.0.0.1") == "http://127.0.0.1:8000/mcp"
    assert url("0.0.0.0") == "http://127.0.0.1:8000/mcp"
    assert url("::") == "http://[::1]:8000/mcp"
    assert url("fd00::5") == "http://[fd00::5]:8000/mcp"


def test_the_stdio_command_is_the_installed_scs_by_absolute_path() -> None:
    command = client_config.scs_command()
    assert Path(command[0]).is_absolute()
    assert Path(command[0]).is_file()
    assert command == [command[0]] or command[1:] == ["-m", "shared_context_server"]


def test_a_stdio_server_is_pointed_at_this_deployment_and_warned_of_secrets(
    tmp_path: Path,
) -> None:
    plain = Settings(data_dir=tmp_path / "d")
    env, warnings = client_config.stdio_server_env(plain)
    assert env == {"SCS_DATA_DIR": str((tmp_path / "d").absolute())}
    assert warnings == []
    keyed = plain.model_copy(
        update={
            "database_url": "postgresql://u@db/x",
            "jwt_secret_key": SecretStr("j" * 40),
            "audit": plain.audit.model_copy(update={"key": SecretStr("k" * 40)}),
        }
    )
    env, warnings = client_config.stdio_server_env(keyed)
    assert env["SCS_DATABASE_URL"] == "postgresql://u@db/x"
    assert "j" * 40 not in str(env)  # secrets stay out
    assert "k" * 40 not in str(env)
    assert [w.split(" ", 1)[0] for w in warnings] == ["SCS_AUDIT_KEY", "JWT_SECRET_KEY"]


# Requests refused before anything is created ---------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"client": "emacs"}, "client"),
        ({"transport": "carrier-pigeon"}, "transport"),
        ({"name": "has space"}, "name"),
        ({"url": "ftp://x/mcp"}, "url"),
        ({"agent_id": "bad id!"}, "agent_id"),
        ({"permissions": "read,root"}, "permissions"),
        ({"permissions": " , "}, "permissions"),
        ({"api_key": "a.b.c"}, "api_key"),
        ({"token_days": 2}, "token_days"),
        ({"token_days": 0}, "token_days"),
    ],
)
def test_bad_requests_are_refused_with_invalid_input(
    settings: Settings, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(DomainError) as caught:
        ConfigRequest(**{"client": "codex", **changes}).check(settings)
    assert caught.value.code == "INVALID_INPUT"
    assert caught.value.details.get("field") == field


@pytest.mark.parametrize(
    "changes",
    [
        {"api_key": "scs_" + "k" * 40, "token_days": 1},
        {"api_key": "scs_" + "k" * 40, "permissions": "read"},
        {"token_days": 1, "key_name": "x"},
        {"transport": "stdio", "url": "http://127.0.0.1:1/mcp"},
        {"transport": "stdio", "token_days": 1},  # the settings carry JWT_SECRET_KEY
    ],
)
def test_conflicting_options_are_refused(settings: Settings, changes: dict[str, Any]) -> None:
    with pytest.raises(DomainError) as caught:
        ConfigRequest("codex", **changes).check(settings)
    assert caught.value.code == "INVALID_INPUT"


# The command -----------------------------------------------------------------------------


@pytest.fixture
def env(backend_settings: Settings) -> dict[str, str]:
    """The command's environment for the test's deployment, on each backend."""
    values = {
        "SCS_DATA_DIR": str(backend_settings.data_dir),
        "JWT_SECRET_KEY": "cli-secret-" + "c" * 40,
        "SCS_DATABASE_URL": backend_settings.database_url or "",
    }
    return {k: v for k, v in values.items() if v}


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["client-config", *args], env=env, input=stdin)
    return result.exit_code, result.stdout, result.stderr


def keys(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["keys", "list"], env=env)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    return {row["name"]: row for row in rows}


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("transport", ["http", "stdio"])
def test_the_command_prints_a_config_with_a_new_bound_key(
    env: dict[str, str], client: str, transport: str
) -> None:
    code, stdout, stderr = run(env, client, "--transport", transport, "--agent-id", "planner")
    assert code == 0, stderr
    parsed = read_config(client, stdout)  # stdout is the configuration alone
    secret = (parsed.headers.get("Authorization", "").removeprefix("Bearer ")) or parsed.env[
        "SCS_AUTH_TOKEN"
    ]
    assert secret.startswith("scs_")
    assert secret not in stderr  # printed once, on stdout
    assert "scs keys revoke planner" in stderr
    key = keys(env)["planner"]
    assert (key["agent_id"], key["permissions"], key["revoked"]) == (
        "planner",
        ["read", "write"],
        False,
    )
    assert key["agent_types"] == [client_config.CLIENT_DEFAULTS[client].agent_type]
    if transport == "http":
        assert parsed.url == "http://127.0.0.1:23456/mcp"
        assert list(parsed.headers) == ["Authorization"]  # the key names its agent
    else:
        assert Path(parsed.command).is_absolute()
        assert "serve" in parsed.args
        assert parsed.env["SCS_DATA_DIR"] == env["SCS_DATA_DIR"]
        assert parsed.env.get("SCS_DATABASE_URL") == env.get("SCS_DATABASE_URL")


def test_each_run_makes_its_own_key_and_names_it_freely(env: dict[str, str]) -> None:
    for _ in range(3):
        assert run(env, "cursor")[0] == 0
    assert {"cursor", "cursor-2", "cursor-3"} <= set(keys(env))
    code, _, stderr = run(env, "cursor", "--key-name", "cursor-2")
    assert code == 2
    assert "CONFLICT" in stderr


def test_a_refused_request_leaves_no_key_behind(env: dict[str, str]) -> None:
    before = set(keys(env))
    code, stdout, stderr = run(env, "codex", "--permissions", "read,root")
    assert (code, stdout) == (2, "")
    assert stderr.startswith("error INVALID_INPUT")
    assert set(keys(env)) == before


def test_an_existing_key_is_checked_and_named_only_if_asked(env: dict[str, str]) -> None:
    code, stdout, _ = run(env, "generic", "--api-key", "scs_" + "n" * 40)
    assert code == 2
    assert "AUTH_FAILED" in _
    created = CliRunner().invoke(
        cli, ["keys", "create", "fleet", "--agent-pattern", "worker-*"], env=env
    )
    fleet = created.stdout.splitlines()[-1]
    code, _, stderr = run(env, "generic", "--api-key", fleet)
    assert code == 2
    assert "IDENTITY_NOT_ALLOWED" in stderr  # a pattern key must be told who
    code, stdout, stderr = run(
        env, "generic", "--api-key", "-", "--agent-id", "worker-7", stdin=fleet
    )
    assert code == 0, stderr
    assert read_config("generic", stdout).headers == {
        "Authorization": f"Bearer {fleet}",
        "X-Agent-Id": "worker-7",
    }


def test_a_long_lived_token_needs_the_settings_to_allow_it(env: dict[str, str]) -> None:
    code, _, stderr = run(env, "vscode", "--token-days", "30")
    assert code == 2
    assert "SCS_TOKEN_TTL_SECONDS=2592000" in stderr
    code, stdout, stderr = run(
        {**env, "SCS_TOKEN_TTL_SECONDS": str(30 * DAY)}, "vscode", "--token-days", "30"
    )
    assert code == 0, stderr
    token = read_config("vscode", stdout).headers["Authorization"].removeprefix("Bearer ")
    assert token.count(".") == 2


# The credential works, through a real MCP client, and keeps working -----------------------


async def call_as(client: Client) -> dict[str, Any]:
    session = (await ok(client, "create_session", purpose="config check"))["session"]
    message = (await ok(client, "add_message", session_id=session["id"], content="hi"))["message"]
    return {"agent_id": session["created_by"], "agent_type": message["sender_type"]}


def ambient_from(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> tuple[Settings, AmbientCredential]:
    """The identity a stdio server launched with ``env`` has (as ``scs serve`` reads it)."""
    with monkeypatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        seen = Settings()
    assert seen.auth_token is not None
    ambient = AmbientCredential(seen.auth_token.get_secret_value(), seen.agent_id, seen.agent_type)
    return seen, ambient


@pytest.fixture
def no_scs_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings() in the test sees the printed environment alone."""
    for key in list(os.environ):
        if key.startswith("SCS_") or key in ("DATABASE_URL", "JWT_SECRET_KEY", "API_KEY"):
            monkeypatch.delenv(key)


@pytest.mark.parametrize(
    "changes",
    [{}, {"token_days": 30}],
    ids=["new-key", "token"],
)
async def test_a_stdio_config_identifies_its_agent(
    backend_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    no_scs_env: None,
    changes: dict[str, Any],
) -> None:
    # No JWT_SECRET_KEY: the stdio server signs with the data directory's secret, as this one.
    settings = backend_settings.model_copy(
        update={"jwt_secret_key": None, "token_ttl_seconds": 30 * DAY}
    )
    request = ConfigRequest(
        "codex", "stdio", agent_id="builder", agent_type="codex", **changes
    ).check(settings)
    async with running_app(request.token_settings(settings), background=False) as app:
        credential = await obtain_credential(app, request)
        connection, warnings = build_connection(request, credential, settings)
        parsed = read_config("codex", render("codex", connection).text)
        seen, ambient = ambient_from(parsed.env, monkeypatch)
        assert seen.resolved_database_url == settings.resolved_database_url
        assert warnings == []
        server = build_server(app, ambient)
        async with Client(server._mcp_server, mode="legacy", cache=None) as client:
            assert await call_as(client) == {"agent_id": "builder", "agent_type": "codex"}


async def test_an_http_key_outlives_a_token(backend_settings: Settings) -> None:
    """A fake clock 25 hours on: the printed key still connects over real HTTP; the token
    the README used to print (24 h) is refused with 401; a --token-days 30 one lives 30."""
    clock = FakeClock()
    settings = backend_settings.model_copy(update={"token_ttl_seconds": 30 * DAY})
    async with serving(settings, clock) as served:
        configs = {}
        for label, changes in [("key", {}), ("token", {"token_days": 30})]:
            request = ConfigRequest(
                "gemini-cli", url=served.url, agent_id=f"g-{label}", **changes
            ).check(settings)
            credential = await obtain_credential(served.app, request)
            connection, _ = build_connection(request, credential, settings)
            configs[label] = read_config("gemini-cli", render("gemini-cli", connection).text)
        day_token, _ = served.app.auth.issue_token(
            Principal("g-day", "gemini", READ_WRITE), ttl_seconds=DAY
        )

        async def works(headers: dict[str, str]) -> bool:
            """Connects and calls a tool, or is turned away at the door (401)."""
            response = await initialize(served, headers)
            if response.status_code == 401:
                assert response.json()["code"] == "TOKEN_EXPIRED"
                return False
            assert response.status_code == 200, response.text
            async with http_client(served.url, headers=headers) as client:
                await call_as(client)
            return True

        day = {"Authorization": f"Bearer {day_token}"}
        assert await works(configs["key"].headers)
        assert await works(day)
        clock.advance(25 * 3600)
        assert await works(configs["key"].headers)
        assert await works(configs["token"].headers)
        assert not await works(day)
        clock.advance(30 * DAY)
        assert await works(configs["key"].headers)
        assert not await works(configs["token"].headers)


async def test_a_revoked_key_stops_the_config(app: App) -> None:
    record, plain = await app.auth.create_api_key(
        "ops", ALL_PERMISSIONS, KeyBinding(any_agent=True, agent_types=None)
    )
    request = ConfigRequest("generic", "stdio", api_key=plain, agent_id="ops-bot")
    request.check(app.settings)
    credential = await obtain_credential(app, request)
    assert (credential.agent_id, credential.agent_type) == ("ops-bot", None)
    ambient = AmbientCredential(credential.secret, credential.agent_id)
    async with Client(build_server(app, ambient)._mcp_server, mode="legacy", cache=None) as client:
        assert (await call_as(client))["agent_id"] == "ops-bot"
        await app.delegation.revoke_api_key(record.name)
        assert (await fails(client, "list_sessions"))["code"] == "AUTH_FAILED"
