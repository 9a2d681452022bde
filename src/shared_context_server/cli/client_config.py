"""``scs client-config``: a working MCP client configuration, in each client's own format,
with a credential that lasts.

Three parts, each testable alone:

- the request (``ConfigRequest``), checked before anything is created;
- the credential (``obtain_credential``): a new API key bound to the agent (what
  ``scs keys create`` makes, through the same service), an API key the operator already
  holds, or a JWT of a lifetime the operator chose within ``SCS_TOKEN_TTL_SECONDS``;
- the rendering: a ``Connection`` (URL and headers, or command and environment) turned
  into each client's text by a pure function per client.

Nothing here prints or logs: the command prints the configuration (the secret in it is
shown once, on stdout) and the notes on stderr.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from shared_context_server.app import App
from shared_context_server.config import Settings, default_data_dir
from shared_context_server.domain.limits import check_agent_id
from shared_context_server.domain.models import KeyBinding
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import InvalidInputError
from shared_context_server.mcp.identity import AGENT_ID_HEADER, AGENT_TYPE_HEADER
from shared_context_server.services.auth import API_KEY_PREFIX, parse_permissions

Transport = Literal["http", "stdio"]
DAY_SECONDS = 24 * 3600
DEFAULT_NAME = "shared-context"
DEFAULT_PERMISSIONS = "read,write"
# A server name every client accepts as is: a TOML bare key, a JSON key, a shell word.
SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
STDIO_ARGS = ("serve", "--transport", "stdio")
# Gemini CLI's `mcp list` gives a server 5 s to start unless the entry says otherwise; a
# stdio server's cold start on a busy machine can take longer. Also its tool-call timeout,
# which our longest call (wait_for_updates, at most 25 s) stays well under.
GEMINI_STDIO_TIMEOUT_MS = 60_000
# Codex waits 10 s for a server to start by default.
CODEX_STDIO_STARTUP_SECONDS = 30
# Claude Desktop reads only stdio servers from its file: HTTP goes through this bridge.
MCP_REMOTE = "mcp-remote"
MCP_REMOTE_AUTH_ENV = "SCS_AUTH_HEADER"
LOOPBACK_NAMES = {"localhost", "127.0.0.1"}


# The request ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientDefaults:
    agent_id: str
    agent_type: str


# Who an agent is by default, per client: the id its key is bound to, the type it declares.
CLIENT_DEFAULTS: dict[str, ClientDefaults] = {
    "claude-code": ClientDefaults("claude-code", "claude"),
    "claude-desktop": ClientDefaults("claude-desktop", "claude"),
    "gemini-cli": ClientDefaults("gemini-cli", "gemini"),
    "codex": ClientDefaults("codex", "codex"),
    "cursor": ClientDefaults("cursor", "cursor"),
    "vscode": ClientDefaults("vscode", "copilot"),
    "generic": ClientDefaults("agent", "generic"),
}
CLIENTS = tuple(CLIENT_DEFAULTS)


@dataclass(frozen=True, slots=True)
class ConfigRequest:
    """What the operator asked for; ``check()`` refuses a bad combination up front, so a
    failed request never leaves a key behind."""

    client: str
    transport: str = "http"
    url: str | None = None
    agent_id: str | None = None
    agent_type: str | None = None
    permissions: str | None = None
    name: str = DEFAULT_NAME
    key_name: str | None = None
    api_key: str | None = None
    token_days: int | None = None

    def check(self, settings: Settings) -> ConfigRequest:
        if self.client not in CLIENT_DEFAULTS:
            raise InvalidInputError(
                f"unknown client; use one of {', '.join(CLIENTS)}", field="client"
            )
        if self.transport not in ("http", "stdio"):
            raise InvalidInputError("transport must be http or stdio", field="transport")
        if not SERVER_NAME.fullmatch(self.name):
            raise InvalidInputError(
                "name: 1-64 letters, digits, '_' or '-' (a name every client accepts)",
                field="name",
            )
        if self.url is not None:
            if self.transport == "stdio":
                raise InvalidInputError("--url is for http; a stdio client launches the server")
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise InvalidInputError("url must be http(s)://host[:port]/path", field="url")
        for value, name in ((self.agent_id, "agent_id"), (self.agent_type, "agent_type")):
            if value is not None:
                check_agent_id(value, name)
        if self.key_name is not None:
            check_agent_id(self.key_name, "key_name")
        if self.api_key is not None and self.token_days is not None:
            raise InvalidInputError("choose one credential: --api-key or --token-days")
        if self.api_key is not None:
            if self.permissions is not None or self.key_name is not None:
                raise InvalidInputError(
                    "--permissions and --key-name are for a new key; an existing key keeps "
                    "its own permissions"
                )
            if _looks_like_jwt(self.api_key):
                raise InvalidInputError(
                    "--api-key takes an API key, not a token (a token expires; for one "
                    "of a lifetime you choose, use --token-days)",
                    field="api_key",
                )
        if not parse_permissions(self.permission_names):
            raise InvalidInputError("name at least one permission", field="permissions")
        if self.token_days is not None:
            self._check_token_days(settings)
        return self

    def _check_token_days(self, settings: Settings) -> None:
        assert self.token_days is not None
        if self.key_name is not None:
            raise InvalidInputError("--key-name is for a new key, not a token")
        if self.token_days < 1:
            raise InvalidInputError("--token-days must be at least 1", field="token_days")
        if self.token_days * DAY_SECONDS > settings.token_ttl_seconds:
            raise InvalidInputError(
                f"a {self.token_days}-day token is longer than tokens may live here "
                f"(SCS_TOKEN_TTL_SECONDS={settings.token_ttl_seconds}); set "
                f"SCS_TOKEN_TTL_SECONDS={self.token_days * DAY_SECONDS} where you run this "
                "to allow it, or use the default: an API key, which does not expire",
                field="token_days",
                max_seconds=settings.token_ttl_seconds,
            )
        if self.transport == "stdio" and settings.jwt_secret_key is not None:
            raise InvalidInputError(
                "JWT_SECRET_KEY is set here, so a token signed with it would not verify at "
                "the stdio server the client launches (it signs with the data directory's "
                "secret unless given the key); use the default, an API key",
                field="token_days",
            )

    @property
    def defaults(self) -> ClientDefaults:
        return CLIENT_DEFAULTS[self.client]

    @property
    def permission_names(self) -> list[str]:
        text = self.permissions or DEFAULT_PERMISSIONS
        return [p.strip() for p in text.split(",") if p.strip()]

    def token_settings(self, settings: Settings) -> Settings:
        """The settings to open the app with: tokens of the chosen lifetime, if any."""
        if self.token_days is None:
            return settings
        return settings.model_copy(update={"token_ttl_seconds": self.token_days * DAY_SECONDS})


def _looks_like_jwt(credential: str) -> bool:
    # As AuthService.resolve tells a token from a key.
    return not credential.startswith(API_KEY_PREFIX) and credential.count(".") == 2


# The credential -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credential:
    """A secret to present, and the identity to name alongside it (None: the one the key
    is bound to, or the token's own)."""

    secret: str
    agent_id: str | None = None
    agent_type: str | None = None
    notes: tuple[str, ...] = ()


async def obtain_credential(app: App, request: ConfigRequest) -> Credential:
    """The credential the request asks for (``request`` already checked)."""
    if request.api_key is not None:
        return await _existing_key(app, request, request.api_key)
    if request.token_days is not None:
        return await _token(app, request)
    return await _new_key(app, request)


async def _new_key(app: App, request: ConfigRequest) -> Credential:
    agent_id = request.agent_id or request.defaults.agent_id
    agent_type = request.agent_type or request.defaults.agent_type
    permissions = parse_permissions(request.permission_names)
    taken = {key.name for key in await app.auth.list_api_keys()}
    key_name = request.key_name or _free_name(agent_id, taken)
    binding = KeyBinding(agent_id=agent_id, agent_types=frozenset({agent_type}))
    record, plain = await app.auth.create_api_key(key_name, permissions, binding)
    perms = ",".join(sorted(p.value for p in record.permissions))
    note = (
        f"created API key {record.name!r} ({perms}), acting as {record.binding.describe()}; "
        f"it does not expire: revoke it with `scs keys revoke {record.name}`"
    )
    # Bound to one id and one type: the key alone names the agent, no header needed.
    return Credential(plain, notes=(note,))


def _free_name(base: str, taken: set[str]) -> str:
    """``base``, or ``base-2``, ``base-3``…: the first key name not in use."""
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return check_agent_id(f"{base}-{n}", "key_name")


async def _existing_key(app: App, request: ConfigRequest, key: str) -> Credential:
    """Checked now, as the server will check it (so a wrong key or an identity outside its
    binding fails here, not in the client); the agent is named only if the operator did."""
    principal = await app.auth.resolve(key, request.agent_id, request.agent_type)
    note = (
        f"using the API key {principal.key_name!r}, acting as {principal.agent_id} "
        f"({principal.agent_type})"
    )
    return Credential(key, request.agent_id, request.agent_type, notes=(note,))


async def _token(app: App, request: ConfigRequest) -> Credential:
    assert request.token_days is not None
    principal = Principal(
        request.agent_id or request.defaults.agent_id,
        request.agent_type or request.defaults.agent_type,
        parse_permissions(request.permission_names),
    )
    token = await app.auth.operator_token(principal)  # the app's tokens last token_days
    note = (
        f"issued a {request.token_days}-day token for {principal.agent_id} "
        f"({principal.agent_type}); it stops working then (an API key would not)"
    )
    return Credential(token, notes=(note,))


# The connection -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connection:
    """How the client reaches the server: a URL and headers (http), or a command and its
    environment (stdio)."""

    name: str
    transport: Transport
    url: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    command: str = ""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)


def default_url(settings: Settings) -> str:
    """The MCP URL of a server run with these settings, as a local client reaches it."""
    host = settings.host
    if host in ("0.0.0.0", ""):  # noqa: S104 - a bind-all address, reached on loopback
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}/mcp"


def http_connection(name: str, url: str, credential: Credential) -> Connection:
    headers = {"Authorization": f"Bearer {credential.secret}"}
    if credential.agent_id is not None:
        headers[AGENT_ID_HEADER.title()] = credential.agent_id
    if credential.agent_type is not None:
        headers[AGENT_TYPE_HEADER.title()] = credential.agent_type
    return Connection(name, "http", url=url, headers=headers)


def stdio_connection(
    name: str,
    credential: Credential,
    command: Sequence[str],
    server_env: Mapping[str, str],
) -> Connection:
    env = {"SCS_AUTH_TOKEN": credential.secret}
    if credential.agent_id is not None:
        env["SCS_AGENT_ID"] = credential.agent_id
    if credential.agent_type is not None:
        env["SCS_AGENT_TYPE"] = credential.agent_type
    env.update(server_env)
    return Connection(name, "stdio", command=command[0], args=(*command[1:], *STDIO_ARGS), env=env)


def scs_command() -> list[str]:
    """The installed ``scs`` by absolute path (beside this interpreter), or this
    interpreter running the package when there is none."""
    scripts = Path(sys.executable).absolute().parent  # not resolved: a venv's python links out
    scs = scripts / ("scs.exe" if os.name == "nt" else "scs")
    if scs.is_file():
        return [str(scs)]
    return [str(Path(sys.executable).absolute()), "-m", "shared_context_server"]


def stdio_server_env(settings: Settings) -> tuple[dict[str, str], list[str]]:
    """What a stdio server launched by the client must be told to open this deployment's
    data (it does not see this shell's environment), and warnings for the secrets set here
    that it is not given (they would otherwise be written into the client's config)."""
    env: dict[str, str] = {}
    data_dir = settings.data_dir.expanduser().absolute()
    if data_dir != default_data_dir().absolute():
        env["SCS_DATA_DIR"] = str(data_dir)
    if settings.database_url:
        env["SCS_DATABASE_URL"] = settings.database_url
    if settings.audit.anchor_path is not None:
        env["SCS_AUDIT_ANCHOR_PATH"] = str(settings.audit.anchor_path.expanduser().absolute())
    warnings = []
    if settings.audit.key is not None:
        warnings.append(
            "SCS_AUDIT_KEY is set here: add it to the env above, or the stdio server seals "
            "its audit records with the data directory's key and the trail stops verifying"
        )
    if settings.jwt_secret_key is not None:
        warnings.append(
            "JWT_SECRET_KEY is set here: tokens the stdio server issues (authenticate_agent, "
            "delegate_token) are signed with the data directory's secret instead, and do "
            "not verify at servers that use this one; add it to the env above if they must"
        )
    return env, warnings


def build_connection(
    request: ConfigRequest,
    credential: Credential,
    settings: Settings,
    command: Sequence[str] | None = None,
) -> tuple[Connection, list[str]]:
    if request.transport == "http":
        url = request.url or default_url(settings)
        return http_connection(request.name, url, credential), []
    server_env, warnings = stdio_server_env(settings)
    connection = stdio_connection(request.name, credential, command or scs_command(), server_env)
    return connection, warnings


# Rendering: one pure function per client -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rendered:
    text: str
    format: Literal["json", "toml", "shell"]
    where: str


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _stdio_entry(c: Connection) -> dict[str, Any]:
    return {"command": c.command, "args": list(c.args), "env": dict(c.env)}


def claude_code(c: Connection) -> Rendered:
    """``claude mcp add``: the server's name comes before the variadic -e/--header lists."""
    if c.transport == "http":
        argv = ["claude", "mcp", "add", "--transport", "http", c.name, c.url]
        for key, value in c.headers.items():
            argv += ["--header", f"{key}: {value}"]
    else:
        argv = ["claude", "mcp", "add", "--transport", "stdio", c.name]
        for key, value in c.env.items():
            argv += ["-e", f"{key}={value}"]
        argv += ["--", c.command, *c.args]
    where = (
        "run this in the project (add --scope user for every project); check with: claude mcp list"
    )
    return Rendered(shlex.join(argv), "shell", where)


def claude_desktop(c: Connection) -> Rendered:
    """Claude Desktop's file takes stdio servers only; an HTTP server is reached through
    the mcp-remote bridge (npx), which reads the credential from its environment."""
    if c.transport == "stdio":
        entry = _stdio_entry(c)
    else:
        args = ["-y", MCP_REMOTE, c.url]
        env: dict[str, str] = {}
        for key, value in c.headers.items():
            if key == "Authorization":
                # In the environment, not the arguments: Windows hosts split arguments on
                # spaces, and mcp-remote logs its arguments.
                env[MCP_REMOTE_AUTH_ENV] = value
                args += ["--header", f"{key}:${{{MCP_REMOTE_AUTH_ENV}}}"]
            else:
                args += ["--header", f"{key}:{value}"]
        host = urlsplit(c.url).hostname or ""
        if urlsplit(c.url).scheme == "http" and host not in LOOPBACK_NAMES:
            args.append("--allow-http")
        entry = {"command": "npx", "args": args, "env": env}
    where = (
        "merge into claude_desktop_config.json (macOS: ~/Library/Application Support/Claude/, "
        "Windows: %APPDATA%\\Claude\\, Linux: ~/.config/Claude/) and restart Claude Desktop"
        + ("; needs Node.js for npx" if c.transport == "http" else "")
    )
    return Rendered(_json({"mcpServers": {c.name: entry}}), "json", where)


def gemini_cli(c: Connection) -> Rendered:
    if c.transport == "http":
        entry: dict[str, Any] = {"httpUrl": c.url, "headers": dict(c.headers)}
    else:
        entry = {**_stdio_entry(c), "timeout": GEMINI_STDIO_TIMEOUT_MS}
    where = (
        "merge into ~/.gemini/settings.json (or .gemini/settings.json in a project); "
        "check with: gemini mcp list"
    )
    return Rendered(_json({"mcpServers": {c.name: entry}}), "json", where)


def codex(c: Connection) -> Rendered:
    lines = [f"[mcp_servers.{_toml_key(c.name)}]"]
    if c.transport == "http":
        lines.append(f"url = {_toml_string(c.url)}")
        lines.append(f"http_headers = {_toml_table(c.headers)}")
    else:
        lines.append(f"command = {_toml_string(c.command)}")
        lines.append(f"args = [{', '.join(_toml_string(a) for a in c.args)}]")
        lines.append(f"env = {_toml_table(c.env)}")
        lines.append(f"startup_timeout_sec = {CODEX_STDIO_STARTUP_SECONDS}")
    where = "append to ~/.codex/config.toml; check with /mcp inside codex"
    return Rendered("\n".join(lines), "toml", where)


def cursor(c: Connection) -> Rendered:
    if c.transport == "http":
        entry: dict[str, Any] = {"url": c.url, "headers": dict(c.headers)}
    else:
        entry = _stdio_entry(c)
    where = "merge into ~/.cursor/mcp.json (or .cursor/mcp.json in a project)"
    return Rendered(_json({"mcpServers": {c.name: entry}}), "json", where)


def _typed_entry(c: Connection) -> dict[str, Any]:
    if c.transport == "http":
        return {"type": "http", "url": c.url, "headers": dict(c.headers)}
    return {"type": "stdio", **_stdio_entry(c)}


def vscode(c: Connection) -> Rendered:
    where = (
        "merge into .vscode/mcp.json, or your user mcp.json (command: MCP: Open User "
        "Configuration); it holds the key, so do not commit it"
    )
    return Rendered(_json({"servers": {c.name: _typed_entry(c)}}), "json", where)


def generic(c: Connection) -> Rendered:
    where = "the common mcpServers form (also a Claude Code .mcp.json)"
    return Rendered(_json({"mcpServers": {c.name: _typed_entry(c)}}), "json", where)


RENDERERS: dict[str, Callable[[Connection], Rendered]] = {
    "claude-code": claude_code,
    "claude-desktop": claude_desktop,
    "gemini-cli": gemini_cli,
    "codex": codex,
    "cursor": cursor,
    "vscode": vscode,
    "generic": generic,
}


def render(client: str, connection: Connection) -> Rendered:
    return RENDERERS[client](connection)


# TOML without a dependency: only strings and tables of strings are written.

_TOML_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_string(value: str) -> str:
    # A JSON string is a TOML basic string, except that TOML also forbids a raw DEL.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_key(key: str) -> str:
    return key if _TOML_BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_table(values: Mapping[str, str]) -> str:
    inner = ", ".join(f"{_toml_key(k)} = {_toml_string(v)}" for k, v in values.items())
    return "{ " + inner + " }" if inner else "{}"
