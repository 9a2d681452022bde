"""Streamable HTTP: ``/mcp``, ``/health``, protected-resource metadata, the dashboard at
``/ui`` (``web/``), and what guards them: exact Origin checking (``origin.py``), identity
and session caps (``gate.py``)."""

from __future__ import annotations

from typing import Any

from fastmcp import FastMCP
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount

from shared_context_server import __version__
from shared_context_server.app import App
from shared_context_server.domain.access import require_may_monitor
from shared_context_server.errors import DomainError
from shared_context_server.mcp.auth_failures import AuthAttempts
from shared_context_server.mcp.gate import MCP_PATH, METADATA_PATH, Gate, GateSettings
from shared_context_server.mcp.identity import bearer
from shared_context_server.mcp.origin import ExactOrigin
from shared_context_server.mcp.sessions import SessionTable
from shared_context_server.services.auth_failures import LOOPBACK, AuthFailures, address_key
from shared_context_server.web.app import build_dashboard
from shared_context_server.web.signin import PATH as DASHBOARD_PATH


def _failures(app: App, mcp: FastMCP) -> AuthFailures:
    """The failure budget the server's tool middleware counts into, shared with the gate."""
    for middleware in mcp.middleware:
        if isinstance(middleware, AuthAttempts):
            return middleware.failures
    return AuthFailures(app.auth.audit, app.clock, app.settings.abuse.auth_failures_per_minute)


async def _metrics_refusal(app: App, request: Request) -> Response | None:
    """None if the caller may read /metrics (``metrics_access``), else the answer."""
    access = app.settings.metrics_access
    if access == "off":
        return PlainTextResponse("metrics are off (SCS_METRICS_ACCESS)", 404)
    if access == "loopback":
        client = request.client.host if request.client else None
        if address_key(client) == LOOPBACK:
            return None
        return PlainTextResponse("metrics are served to loopback clients only", 403)
    credential = bearer(request.headers)
    if not credential:
        return PlainTextResponse("metrics need a bearer token (admin or debug)", 401)
    try:
        require_may_monitor(await app.auth.resolve(credential))
    except DomainError as exc:
        return PlainTextResponse(exc.message, 403 if exc.code == "PERMISSION_DENIED" else 401)
    return None


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

    @mcp.custom_route("/metrics", methods=["GET"])
    async def metrics(request: Request) -> Response:
        refused = await _metrics_refusal(app, request)
        if refused is not None:
            return refused
        return Response(app.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

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
    # and a 401 challenge never echoes an unchecked Host. Then the exact Origin check,
    # then the gate (identity, session caps).
    abuse = settings.abuse
    sessions = SessionTable()
    failures = _failures(app, mcp)
    gate = GateSettings(app.auth, failures, sessions, abuse)
    hosts = [settings.host, *settings.allowed_hosts]
    http = mcp.http_app(
        path=MCP_PATH,
        middleware=[
            Middleware(ExactOrigin, hosts=hosts, allowed_origins=settings.allowed_origins),
            Middleware(Gate, settings=gate),
        ],
        host_origin_protection=True,
        allowed_hosts=settings.allowed_hosts or None,
        allowed_origins=settings.allowed_origins or None,
        session_idle_timeout=abuse.mcp_session_idle_seconds,
    )
    sessions.attach(http, abuse.mcp_sessions_total)
    http.router.routes.append(Mount(DASHBOARD_PATH, app=build_dashboard(app, failures)))
    return http
