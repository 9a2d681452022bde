"""``scs serve --workers N``: N HTTP server processes on one port, sharing the database.

uvicorn's supervisor binds the port, starts each worker as a fresh interpreter that calls
``worker_app`` (by its import path) for its ASGI app, and replaces a worker that dies. Each
worker opens its own app (store, bus, background work) when its lifespan starts, from the
same environment as the parent: what one process changes reaches the others through the
change feed, and the sweep runs in one of them at a time (its lease). Each worker also
listens on a unix socket of its own, where the others relay the requests of the
2025-11-25 sessions it holds (``worker_routes``).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from starlette.routing import Router

from shared_context_server.app import open_app, running_app
from shared_context_server.config import Settings

WORKER_APP = "shared_context_server.mcp.workers:worker_app"


async def prepare(settings: Settings) -> None:
    """Once, before the workers start: migrate the database and make the bootstrap key
    (printed here, not by whichever worker would get there first)."""
    app = await open_app(settings)
    await app.store.close()


def serve_workers(settings: Settings) -> None:
    """Run the supervisor until it is told to stop (SIGINT, SIGTERM)."""
    from uvicorn.supervisors import Multiprocess

    from shared_context_server.mcp.run import http_config

    sockets = Path(tempfile.mkdtemp(prefix="scs-workers-"))  # 0700: this user only
    # The workers read their settings from the environment: what the command line gave
    # reaches them there.
    os.environ.update(
        SCS_TRANSPORT="http",
        SCS_HOST=settings.host,
        SCS_PORT=str(settings.port),
        SCS_WORKER_SOCKETS=str(sockets),
    )
    try:
        config = http_config(WORKER_APP, settings, factory=True, workers=settings.workers)
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    finally:
        shutil.rmtree(sockets, ignore_errors=True)


def worker_app() -> Router:
    """One worker's ASGI app: the MCP HTTP app, built and served once the app is open,
    and on the worker's own socket the requests other workers relay to it."""
    import uvicorn

    from shared_context_server.mcp.http import build_http_app
    from shared_context_server.mcp.run import http_config, quiet_fastmcp, without_gc
    from shared_context_server.mcp.server import build_server
    from shared_context_server.mcp.worker_routes import WorkerRoutes, socket_path

    settings = Settings()
    assert settings.worker_sockets is not None, "started by serve_workers"
    sockets = settings.worker_sockets
    logging.basicConfig(level=settings.log_level, stream=sys.stderr)
    quiet_fastmcp(settings.log_level)
    served: list[WorkerRoutes] = []

    @asynccontextmanager
    async def lifespan(_: object) -> AsyncIterator[None]:
        async with running_app(settings) as app, anyio.create_task_group() as tg:
            with without_gc():
                http = build_http_app(app, build_server(app))
            routes = WorkerRoutes(http, sockets)
            own = socket_path(sockets, os.getpid())
            relayed = uvicorn.Server(
                http_config(routes.relayed(), settings, uds=str(own), lifespan="off")
            )
            async with http.router.lifespan_context(http):
                tg.start_soon(relayed.serve)
                served.append(routes)
                yield
                relayed.should_exit = True
            await routes.aclose()

    async def forward(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        await served[0](scope, receive, send)

    return Router(lifespan=lifespan, default=forward)
