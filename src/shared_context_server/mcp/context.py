"""What every tool needs: the services and a way to know who is calling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastmcp.server.dependencies import get_context, get_http_request

from shared_context_server.app import App
from shared_context_server.domain.principal import Principal
from shared_context_server.domain.rate_limit import TokenBuckets
from shared_context_server.errors import RateLimitedError
from shared_context_server.mcp.identity import IdentityResolver
from shared_context_server.mcp.live import LiveUpdates


def current_request() -> Any | None:
    try:
        return get_http_request()
    except RuntimeError:
        return None


def within_rate(calls: TokenBuckets, principal: Principal) -> Principal:
    """``principal``, if its call rate allows one more call; else ``RATE_LIMITED``."""
    wait = calls.take(principal.root_id)
    if wait:
        seconds = round(max(wait, 0.001), 3)
        raise RateLimitedError(
            f"{principal.agent_id} is calling faster than {calls.per_second:g} calls per "
            f"second; retry in {seconds} s",
            retry_after=seconds,
        )
    return principal


@dataclass(frozen=True, slots=True)
class ToolContext:
    app: App
    identity: IdentityResolver
    live: LiveUpdates
    calls: TokenBuckets

    async def caller(self, auth_token: str | None) -> Principal:
        """The calling agent, within its call rate; its connection is remembered for
        list-changed notifications."""
        principal = within_rate(
            self.calls, await self.identity.resolve(auth_token, current_request())
        )
        self.live.remember(get_context().session, principal)
        await self.app.presence.seen(principal)  # throttled: a write at most every 15 s
        return principal
