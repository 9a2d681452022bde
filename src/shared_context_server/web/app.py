"""The dashboard, a Starlette app mounted at ``/ui`` beside ``/mcp``.

Each page resolves its viewer from the sign-in cookie (``signin.py``) and calls the
services as that principal, so it shows exactly what the identity may see. Forms carry
the cookie's CSRF token and are refused without it; pages allow no script or style but
their own (``ui.SECURITY_HEADERS``).
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from shared_context_server.app import App
from shared_context_server.services.auth_failures import AuthFailures
from shared_context_server.web import audit_routes, monitor_routes, session_routes, signin_routes
from shared_context_server.web.ui import Ui


def build_dashboard(app: App, failures: AuthFailures) -> Starlette:
    ui = Ui.of(app)
    static = StaticFiles(directory=Path(__file__).parent / "static")
    return Starlette(
        routes=[
            *signin_routes.routes(ui, failures),
            *session_routes.routes(ui),
            *audit_routes.routes(ui),
            *monitor_routes.routes(ui),
            Mount("/static", static, name="static"),
        ]
    )
