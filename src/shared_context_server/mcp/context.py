"""What every tool needs: the services and a way to know who is calling."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from fastmcp.server.dependencies import get_context, get_http_request
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools.base import ToolResult

from shared_context_server.app import App
from shared_context_server.domain.principal import Principal
from shared_context_server.domain.rate_limit import TokenBuckets
from shared_context_server.errors import RateLimitedError
from shared_context_server.mcp.identity import IdentityResolver
from shared_context_server.mcp.live import LiveUpdates

# The session the tool call in progress names (its ``session_id`` argument), if any.
_named_session: ContextVar[str | None] = ContextVar("named_session", default=None)


def current_request() -> Any | None:
    try:
        return get_http_request()
    except RuntimeError:
        return None


class NamedSession(Middleware):
    """Notes the session a tool call names, so that ``ToolContext.caller`` records the
    caller's presence there: one place for every tool, whatever its family."""

    async def on_call_tool(
        self, context: MiddlewareContext[Any], call_next: CallNext[Any, ToolResult]
    ) -> ToolResult:
        arguments = getattr(context.message, "arguments", None) or {}
        named = arguments.get("session_id")
        # Unvalidated here; the tool validates it before it resolves its caller.
        token = _named_session.set(named if isinstance(named, str) and named else None)
        try:
            return await call_next(context)
        finally:
            _named_session.reset(token)


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
        list-changed notifications, and its presence (in the session the call names)
        recorded: throttled, never failing the call, only in a session it may read."""
        principal = within_rate(
            self.calls, await self.identity.resolve(auth_token, current_request())
        )
        self.live.remember(get_context().session, principal)
        await self.app.presence.seen(principal, _named_session.get())
        return principal
