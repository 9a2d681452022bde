"""The SDK's table of open 2025-11-25 sessions, read for the caps the gate enforces.

FastMCP creates the SDK's ``StreamableHTTPSessionManager`` when the app starts and does not
expose its session limit, so this finds the manager behind the ``/mcp`` route, sets its
``max_sessions`` (a backstop to the gate's own check) and counts its sessions by owner.
The counts read the manager's private tables; ``tests/security/test_http_abuse.py``
proves the caps through a real server, so an SDK change that moves them shows there.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastmcp.server.http import StreamableHTTPASGIApp
from mcp.server.auth.middleware.bearer_auth import AuthorizationContext
from starlette.applications import Starlette
from starlette.routing import Route


class SessionTable:
    def __init__(self) -> None:
        self._endpoint: StreamableHTTPASGIApp | None = None

    def attach(self, app: Starlette, max_sessions: int) -> None:
        """Find the session manager of ``app`` and cap it at ``max_sessions`` on start."""
        for route in app.routes:
            if isinstance(route, Route) and isinstance(route.endpoint, StreamableHTTPASGIApp):
                self._endpoint = route.endpoint
        if self._endpoint is None:
            raise RuntimeError("no streamable HTTP endpoint in the app")
        endpoint, started = self._endpoint, app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(running: Any) -> AsyncIterator[Any]:
            async with started(running) as state:
                if endpoint.session_manager is not None:
                    endpoint.session_manager.max_sessions = max_sessions
                yield state

        app.router.lifespan_context = lifespan

    def _manager(self) -> Any:
        return None if self._endpoint is None else self._endpoint.session_manager

    def total(self) -> int:
        manager = self._manager()
        return 0 if manager is None else len(manager._server_instances)

    def owned_by(self, root_id: str) -> int:
        """Open sessions of the agent ``root_id`` and of its sub-agents."""
        manager = self._manager()
        if manager is None:
            return 0
        return sum(1 for o in manager._session_owners.values() if o["client_id"] == root_id)

    def soonest_idle_end(self, root_id: str | None, idle_seconds: float) -> float:
        """Seconds until the first of ``root_id``'s sessions (anyone's, for None) would end
        for being idle; ``idle_seconds`` if none is idle now (each is serving a request or
        holds a stream open)."""
        manager = self._manager()
        if manager is None:
            return idle_seconds
        owners = manager._session_owners
        now = anyio.current_time()
        ends = [
            transport.idle_scope.deadline - now
            for session_id, transport in list(manager._server_instances.items())
            if (root_id is None or _client(owners.get(session_id)) == root_id)
            and transport.idle_scope is not None
            and math.isfinite(transport.idle_scope.deadline)
        ]
        return max(0.0, min(ends)) if ends else idle_seconds


def _client(owner: AuthorizationContext | None) -> str | None:
    return None if owner is None else owner["client_id"]
