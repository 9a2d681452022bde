"""Run the server on stdio or streamable HTTP, with the app's background work alongside.

The HTTP stack (uvicorn, our Starlette app) is imported only to serve HTTP: a stdio server
is launched by its client for every session, and a client's start check is short.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from shared_context_server.app import running_app
from shared_context_server.config import Settings
from shared_context_server.mcp.identity import AmbientCredential
from shared_context_server.mcp.server import build_server

if TYPE_CHECKING:
    from shared_context_server.mcp.slow_clients import BoundedConfig


def http_config(http: Any, settings: Settings, **options: Any) -> BoundedConfig:
    """uvicorn for ``http`` (an ASGI app, or the import string of a factory of one):
    deadlines for slow clients, a connection ceiling, and proxy headers believed only from
    the proxies the settings name (``options``: more of ``uvicorn.Config``'s)."""
    from shared_context_server.mcp.slow_clients import BoundedConfig

    abuse = settings.abuse
    options.setdefault("lifespan", "on")
    return BoundedConfig(
        http,
        header_timeout=abuse.header_timeout_seconds,
        body_timeout=abuse.body_timeout_seconds,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        limit_concurrency=abuse.max_connections,
        proxy_headers=bool(abuse.trusted_proxies),
        forwarded_allow_ips=abuse.trusted_proxies or None,
        **options,
    )


def quiet_fastmcp(level: str) -> None:
    """FastMCP logs through its own handler at its own level (INFO, unless FASTMCP_LOG_LEVEL
    says otherwise), so its "Starting MCP server" line reached a stdio client's stderr
    whatever SCS_LOG_LEVEL said. Ours decides."""
    logging.getLogger("fastmcp").setLevel(level.upper())


# A call allocates thousands of objects: at the default 700 the youngest generation was
# collected several times per call, 8% of a busy server's CPU (3% at these thresholds).
# Garbage cycles wait a little longer; a few MB at most.
GC_THRESHOLDS = (10_000, 20, 100)


def gc_back_on() -> None:
    """End of a start-up phase run without the cyclic GC (``scs serve`` turns it off before
    the server's imports): it is on again, at thresholds for a server, and what start-up
    made (modules, tools, schemas, alive until exit) is frozen out of its scans, so the
    first collection does not walk it all. The few cycles start-up left behind (about
    1.5 MB) are never collected."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    gc.enable()


@contextmanager
def without_gc() -> Iterator[None]:
    """Building the server (its ~30 tools and their schemas) without the cyclic GC."""
    gc.disable()
    try:
        yield
    finally:
        gc_back_on()


async def run_server(settings: Settings) -> None:
    quiet_fastmcp(settings.log_level)
    gc_back_on()  # the imports are done; opening the app may migrate a large database
    async with running_app(settings) as app:
        if settings.transport == "stdio":
            ambient = None
            if settings.auth_token is not None:
                ambient = AmbientCredential(
                    settings.auth_token.get_secret_value(), settings.agent_id, settings.agent_type
                )
            with without_gc():
                server = build_server(app, ambient)
            await server.run_stdio_async(show_banner=False)
            return
        import uvicorn

        from shared_context_server.mcp.http import build_http_app

        with without_gc():
            http = build_http_app(app, build_server(app))
        await uvicorn.Server(http_config(http, settings)).serve()
