"""Who is asking on a request that is not a tool call (prompts, completion)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mcp.server.context import ServerRequestContext

from shared_context_server.domain.principal import Principal
from shared_context_server.domain.rate_limit import TokenBuckets
from shared_context_server.mcp.context import within_rate
from shared_context_server.mcp.identity import IdentityResolver
from shared_context_server.mcp.live import LiveUpdates


@dataclass(frozen=True, slots=True)
class RequestCaller:
    """The identity of the connection (header or stdio environment), within its call rate,
    as for a resource read; its connection is remembered for list-changed notifications."""

    identity: IdentityResolver
    live: LiveUpdates
    calls: TokenBuckets

    async def __call__(self, ctx: ServerRequestContext[Any, Any]) -> Principal:
        principal = within_rate(self.calls, await self.identity.resolve(None, ctx.request))
        self.live.remember(ctx.session, principal)
        return principal
