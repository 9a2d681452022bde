"""Our HTTP server in the test's process, on a real loopback socket.

Built exactly as ``scs serve`` builds it (``build_http_app`` and ``http_config``, so the
slow-client protocol and connection ceiling are there), on an app the test controls: a
fake clock for the rate limits, any abuse settings, either backend, and the logs in
``caplog``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2
import uvicorn
from pydantic import SecretStr

from shared_context_server.app import App, running_app
from shared_context_server.clock import Clock
from shared_context_server.config import Settings
from shared_context_server.mcp.http import build_http_app
from shared_context_server.mcp.run import http_config
from shared_context_server.mcp.server import build_server
from tests.e2e.conftest import free_port
from tests.processes import START_TIMEOUT_S

ADMIN_KEY = "scs_abuse-admin-key-" + "a" * 32
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "abuse-test", "version": "0"},
    },
}


@dataclass
class Served:
    app: App
    base: str
    port: int

    @property
    def url(self) -> str:
        return self.base + "/mcp"


def with_abuse(settings: Settings, port: int = 0, **abuse: Any) -> Settings:
    return settings.model_copy(
        update={
            "abuse": settings.abuse.model_copy(update=abuse),
            "api_key": SecretStr(ADMIN_KEY),
            "port": port or free_port(),
        }
    )


@asynccontextmanager
async def serving(
    settings: Settings, clock: Clock | None = None, **abuse: Any
) -> AsyncIterator[Served]:
    # The socket is bound here and handed over: no other process can take the port between
    # choosing it and listening on it.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        settings = with_abuse(settings, listener.getsockname()[1], **abuse)
        async with running_app(settings, clock, background=False) as app:
            http = build_http_app(app, build_server(app))
            # No uvicorn logging set-up: its records reach the root logger (and caplog).
            config = http_config(http, settings, log_config=None)
            server = uvicorn.Server(config)
            task = asyncio.get_running_loop().create_task(server.serve(sockets=[listener]))
            try:
                with anyio.fail_after(START_TIMEOUT_S):  # a busy machine starts slowly
                    while not server.started:
                        if task.done():
                            task.result()
                        await anyio.sleep(0.01)
                yield Served(app, f"http://127.0.0.1:{settings.port}", settings.port)
            finally:
                server.should_exit = True
                with anyio.fail_after(20):
                    await task


async def initialize(served: Served, headers: dict[str, str] | None = None) -> httpx2.Response:
    """A raw 2025-11-25 initialize, as a session-opening client sends it."""
    async with httpx2.AsyncClient(timeout=30) as http:
        return await http.post(served.url, json=INITIALIZE, headers={**ACCEPT, **(headers or {})})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
