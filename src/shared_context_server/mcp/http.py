"""Streamable HTTP: ``/mcp``, ``/health``, protected-resource metadata and the 401 challenge."""

from __future__ import annotations

import json
from typing import Any

from fastmcp import FastMCP
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from shared_context_server import __version__
from shared_context_server.app import App
from shared_context_server.errors import DomainError
from shared_context_server.mcp.identity import AGENT_ID_HEADER, AGENT_TYPE_HEADER, bearer
from shared_context_server.services.auth import AuthService

MCP_PATH = "/mcp"
METADATA_PATH = "/.well-known/oauth-protected-resource"


class BearerChallenge:
    """A request that presents a bad credential is refused with 401 and a challenge.

    Requests without one pass: tools may carry ``auth_token`` and ``authenticate_agent``
    needs no identity; each handler still requires one.
    """

    def __init__(self, app: ASGIApp, auth: AuthService) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            credential = bearer(headers)
            if credential:
                try:
                    await self.auth.resolve(
                        credential, headers.get(AGENT_ID_HEADER), headers.get(AGENT_TYPE_HEADER)
                    )
                except DomainError as exc:
                    await _challenge(exc, headers)(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def _challenge(error: DomainError, headers: Headers) -> Response:
    metadata = f"http://{headers.get('host', 'localhost')}{METADATA_PATH}"
    body = {"success": False, "code": error.code, "error": error.message}
    return Response(
        json.dumps(body),
        status_code=401,
        media_type="application/json",
        headers={
            "WWW-Authenticate": f'Bearer error="invalid_token", resource_metadata="{metadata}"'
        },
    )


def build_http_app(app: App, mcp: FastMCP) -> Any:
    settings = app.settings

    @mcp.custom_route("/health", methods=["GET"])
    async def health(_: Request) -> Response:
        # The latest write's outcome, or a tiny write probe at most every couple of seconds.
        database = await app.health.database()
        if database.writable:
            return JSONResponse({"status": "ok", "database": "writable", "version": __version__})
        body = {"status": "degraded", "database": "not writable", "reason": database.reason}
        return JSONResponse({**body, "version": __version__}, status_code=503)

    @mcp.custom_route(METADATA_PATH, methods=["GET"])
    async def protected_resource(request: Request) -> Response:
        base = f"{request.url.scheme}://{request.headers.get('host', 'localhost')}"
        return JSONResponse(
            {
                "resource": base + MCP_PATH,
                "authorization_servers": [],
                "bearer_methods_supported": ["header"],
                "resource_name": "Shared Context Server",
            }
        )

    # FastMCP puts its Host/Origin guard outside the middleware passed here, so a request
    # with a foreign Host (DNS rebinding) is refused before any credential is looked at,
    # and a 401 challenge never echoes an unchecked Host.
    return mcp.http_app(
        path=MCP_PATH,
        middleware=[Middleware(BearerChallenge, auth=app.auth)],
        host_origin_protection=True,
        allowed_hosts=settings.allowed_hosts or None,
        allowed_origins=settings.allowed_origins or None,
    )
