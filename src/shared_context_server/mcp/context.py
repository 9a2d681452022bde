"""What every tool needs: the services and a way to know who is calling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastmcp.server.dependencies import get_context, get_http_request

from shared_context_server.app import App
from shared_context_server.domain.principal import Principal
from shared_context_server.mcp.identity import IdentityResolver
from shared_context_server.mcp.live import LiveUpdates


def current_request() -> Any | None:
    try:
        return get_http_request()
    except RuntimeError:
        return None


@dataclass(frozen=True, slots=True)
class ToolContext:
    app: App
    identity: IdentityResolver
    live: LiveUpdates

    async def caller(self, auth_token: str | None) -> Principal:
        """The calling agent; its connection is remembered for list-changed notifications."""
        principal = await self.identity.resolve(auth_token, current_request())
        self.live.remember(get_context().session, principal)
        await self.app.presence.seen(principal)  # throttled: a write at most every 15 s
        return principal
