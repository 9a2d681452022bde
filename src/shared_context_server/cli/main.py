"""``scs`` / ``shared-context-server``: run the server and administer it."""

from __future__ import annotations

import gc
import json
import logging
import sys
from typing import Annotated

import anyio
import typer
from pydantic import ValidationError

from shared_context_server import __version__
from shared_context_server.app import open_app, running_app
from shared_context_server.cli import client_config
from shared_context_server.cli.audit import audit_cli
from shared_context_server.config import Settings, settings_problem
from shared_context_server.domain.limits import check_agent_id
from shared_context_server.domain.models import KeyBinding
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import DomainError
from shared_context_server.services.auth import parse_permissions

cli = typer.Typer(help="Shared Context Server: shared memory for a team of AI agents.")
db = typer.Typer(help="Database maintenance.")
keys = typer.Typer(help="API keys: create, list, revoke.")
cli.add_typer(db, name="db")
cli.add_typer(keys, name="keys")
cli.add_typer(audit_cli, name="audit")


def _settings(
    transport: str | None = None,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
) -> Settings:
    given = {"transport": transport, "host": host, "port": port, "workers": workers}
    overrides = {k: v for k, v in given.items() if v}
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:  # one line, not a traceback
        typer.echo(f"error: {settings_problem(exc)}", err=True)
        raise typer.Exit(2) from None


def _fail(error: DomainError) -> None:
    typer.echo(f"error {error.code}: {error.message}", err=True)
    raise typer.Exit(2)


@cli.command()
def serve(
    transport: Annotated[
        str | None, typer.Option(help="stdio or http (default: SCS_TRANSPORT, else stdio)")
    ] = None,
    host: Annotated[str | None, typer.Option(help="HTTP bind address")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port")] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="HTTP server processes on the port (default: SCS_WORKERS, else 1)"),
    ] = None,
) -> None:
    """Run the MCP server (stdio for one client, http for many)."""
    if transport is not None and transport not in ("stdio", "http"):
        raise typer.BadParameter("transport must be stdio or http")
    settings = _settings(transport, host, port, workers)
    if settings.workers > 1 and settings.transport == "stdio":
        typer.echo(
            "error: --workers is for --transport=http (a stdio server has one client)", err=True
        )
        raise typer.Exit(2)
    if settings.transport == "stdio" and not settings.auth_token_param and not settings.auth_token:
        # No argument and no connection identity: no tool call could name its caller.
        typer.echo("error: SCS_AUTH_TOKEN_PARAM=false on stdio needs SCS_AUTH_TOKEN", err=True)
        raise typer.Exit(2)
    logging.basicConfig(level=settings.log_level, stream=sys.stderr)
    if settings.transport == "http":
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        base = f"http://{host}:{settings.port}"
        typer.echo(
            f"shared-context-server: MCP at {base}/mcp; dashboard at {base}/ui/ "
            "(sign in with an API key, such as the bootstrap key)",
            err=True,
        )
    if settings.workers > 1:
        _serve_workers(settings)
        return
    # The server's imports make a heap the cyclic GC would walk again and again: a tenth
    # of a stdio start, paid for every client session. Off until they are done (run_server
    # turns it back on).
    gc.disable()
    from shared_context_server.mcp.run import run_server

    try:
        anyio.run(run_server, settings)
    except DomainError as exc:  # e.g. a database it cannot open: one line, not a traceback
        _fail(exc)


def _serve_workers(settings: Settings) -> None:
    from shared_context_server.mcp.workers import prepare, serve_workers

    try:
        anyio.run(prepare, settings)
    except DomainError as exc:
        _fail(exc)
    serve_workers(settings)


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (the server also does this on start)."""

    async def main() -> None:
        app = await open_app(_settings())
        await app.store.close()

    anyio.run(main)
    typer.echo("database is up to date")


def _names(text: str | None) -> frozenset[str] | None:
    return None if text is None else frozenset(n.strip() for n in text.split(",") if n.strip())


@keys.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="A name for the key's holder")],
    permissions: Annotated[
        str, typer.Option(help="Maximum permissions, comma-separated")
    ] = "read,write",
    agent_id: Annotated[
        str | None, typer.Option(help="The one agent the key acts as (default: NAME)")
    ] = None,
    agent_pattern: Annotated[
        str | None, typer.Option(help="Or: the agents it may act as, e.g. 'worker-*'")
    ] = None,
    any_agent: Annotated[
        bool, typer.Option("--any-agent", help="Or: an operator key, which may act as anyone")
    ] = False,
    agent_type: Annotated[
        str | None,
        typer.Option(help="Agent types it may declare, comma-separated (default: generic)"),
    ] = None,
) -> None:
    """Create an API key bound to the identities it may act as; the key is printed once."""

    async def main() -> None:
        async with running_app(_settings(), background=False) as app:
            try:
                perms = parse_permissions(p.strip() for p in permissions.split(",") if p.strip())
                types = _names(agent_type)
                binding = KeyBinding(
                    agent_id=agent_id if agent_id or agent_pattern or any_agent else name,
                    agent_pattern=agent_pattern,
                    agent_types=types if types is not None or any_agent else frozenset({"generic"}),
                    any_agent=any_agent,
                )
                record, plain = await app.auth.create_api_key(name, perms, binding)
            except DomainError as exc:
                _fail(exc)
                return
            perms_text = ",".join(sorted(p.value for p in record.permissions))
            typer.echo(
                f"created key {record.name!r} with permissions {perms_text}, "
                f"acting as {record.binding.describe()}"
            )
            typer.echo(plain)

    anyio.run(main)


@keys.command("list")
def keys_list() -> None:
    """List API keys (never the keys themselves)."""

    async def main() -> None:
        async with running_app(_settings(), background=False) as app:
            for key in await app.auth.list_api_keys():
                binding = key.binding
                types = binding.agent_types
                row = {
                    "name": key.name,
                    "permissions": sorted(p.value for p in key.permissions),
                    "agent_id": binding.agent_id,
                    "agent_pattern": binding.agent_pattern,
                    "any_agent": binding.any_agent,
                    "agent_types": None if types is None else sorted(types),
                    "created_at": key.created_at.isoformat(),
                    "revoked": key.revoked_at is not None,
                }
                typer.echo(json.dumps(row))

    anyio.run(main)


@keys.command("revoke")
def keys_revoke(name: str) -> None:
    """Revoke an API key: it, its tokens and their delegations stop working at once."""

    async def main() -> None:
        async with running_app(_settings(), background=False) as app:
            if not await app.delegation.revoke_api_key(name):
                typer.echo(f"no active key named {name!r}", err=True)
                raise typer.Exit(1)
            typer.echo(f"revoked {name!r}")

    anyio.run(main)


@cli.command()
def token(
    agent_id: Annotated[str, typer.Argument(help="The agent the token names")],
    agent_type: Annotated[str, typer.Option(help="The agent's type")] = "generic",
    permissions: Annotated[str, typer.Option(help="Comma-separated")] = "read,write",
) -> None:
    """Issue a token for an agent directly (operator use; no API key needed)."""

    async def main() -> None:
        async with running_app(_settings(), background=False) as app:
            try:
                perms = parse_permissions(p.strip() for p in permissions.split(",") if p.strip())
                principal = Principal(
                    check_agent_id(agent_id), check_agent_id(agent_type, "agent_type"), perms
                )
                issued = await app.auth.operator_token(principal)
            except DomainError as exc:
                _fail(exc)
                return
            typer.echo(issued)

    anyio.run(main)


@cli.command("client-config")
def client_config_command(
    client: Annotated[str, typer.Argument(help=", ".join(client_config.CLIENTS))],
    transport: Annotated[
        str, typer.Option(help="http: connect to a running server; stdio: launch one")
    ] = "http",
    url: Annotated[
        str | None, typer.Option(help="The server's MCP URL (default: from SCS_HOST/SCS_PORT)")
    ] = None,
    agent_id: Annotated[
        str | None, typer.Option(help="The agent the client acts as (default: the client)")
    ] = None,
    agent_type: Annotated[str | None, typer.Option(help="Its agent type")] = None,
    permissions: Annotated[
        str | None, typer.Option(help="Comma-separated (default: read,write)")
    ] = None,
    name: Annotated[
        str, typer.Option(help="The server's name in the client")
    ] = client_config.DEFAULT_NAME,
    key_name: Annotated[
        str | None, typer.Option(help="Name of the new key (default: the agent id)")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(help="Use this API key instead of creating one ('-': read it from stdin)"),
    ] = None,
    token_days: Annotated[
        int | None,
        typer.Option(help="Or: a JWT of this many days (within SCS_TOKEN_TTL_SECONDS)"),
    ] = None,
) -> None:
    """Print a client's configuration for this server, with a lasting credential: by
    default a new API key bound to the agent (shown once, in the output)."""
    if api_key == "-":
        api_key = sys.stdin.readline().strip()
    settings = _settings()
    request = client_config.ConfigRequest(
        client,
        transport,
        url,
        agent_id,
        agent_type,
        permissions,
        name,
        key_name,
        api_key,
        token_days,
    )

    async def main() -> None:
        try:
            request.check(settings)
            async with running_app(request.token_settings(settings), background=False) as app:
                credential = await client_config.obtain_credential(app, request)
        except DomainError as exc:
            _fail(exc)
            return
        connection, warnings = client_config.build_connection(request, credential, settings)
        rendered = client_config.render(request.client, connection)
        for note in (*credential.notes, *warnings, rendered.where):
            typer.echo(note, err=True)
        typer.echo(rendered.text)  # stdout: the configuration alone, ready to use

    anyio.run(main)


@cli.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    cli()
