"""Run the server on stdio or streamable HTTP, with the app's background work alongside."""

from __future__ import annotations

import uvicorn

from shared_context_server.app import running_app
from shared_context_server.config import Settings
from shared_context_server.mcp.http import build_http_app
from shared_context_server.mcp.identity import AmbientCredential
from shared_context_server.mcp.server import build_server


async def run_server(settings: Settings) -> None:
    async with running_app(settings) as app:
        if settings.transport == "stdio":
            ambient = None
            if settings.auth_token is not None:
                ambient = AmbientCredential(
                    settings.auth_token.get_secret_value(), settings.agent_id, settings.agent_type
                )
            await build_server(app, ambient).run_stdio_async(show_banner=False)
            return
        http = build_http_app(app, build_server(app))
        config = uvicorn.Config(
            http,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level.lower(),
            lifespan="on",
        )
        await uvicorn.Server(config).serve()
