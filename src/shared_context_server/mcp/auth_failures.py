"""Authentication attempts in tool calls, counted against their address's failure budget
(``services/auth_failures.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools.base import ToolResult

from shared_context_server.mcp.context import current_request
from shared_context_server.mcp.errors import error_result
from shared_context_server.services.auth_failures import (
    FAILED_AUTH_CODES,
    AuthFailures,
    address_key,
    claimed,
    is_jwt,
    rate_limited,
)


def client_address() -> str | None:
    """The HTTP client's address key; None outside HTTP (stdio, in-memory clients)."""
    request = current_request()
    client = getattr(request, "client", None)
    return None if client is None else address_key(str(client.host))


class AuthAttempts(Middleware):
    """``authenticate_agent``, ``refresh_token`` and any call with an ``auth_token`` are
    authentication attempts: refused while their address is over its failure budget, and
    counted when their credential fails. ``known`` is ``AuthService.known_key``."""

    def __init__(self, failures: AuthFailures, known: Callable[[str], bool]) -> None:
        self.failures = failures
        self._known = known

    async def on_call_tool(
        self, context: MiddlewareContext[Any], call_next: CallNext[Any, ToolResult]
    ) -> ToolResult:
        name = getattr(context.message, "name", "")
        arguments = getattr(context.message, "arguments", None) or {}
        token = arguments.get("auth_token")
        key_attempt = name == "authenticate_agent"
        if not key_attempt and not (isinstance(token, str) and token):
            return await call_next(context)
        address = client_address()
        credential = arguments.get("api_key") if key_attempt else token
        # A key lookup spends its failure up front (a known key is let through the budget).
        reserved = (key_attempt or not is_jwt(str(token))) and not (
            isinstance(credential, str) and self._known(credential)
        )
        if reserved:
            wait = self.failures.reserve(address)
            if wait:
                return error_result(rate_limited(wait))
        counted = False
        try:
            result = await call_next(context)
            code = (result.structured_content or {}).get("code") if result.is_error else None
            if code not in FAILED_AUTH_CODES:
                return result
            counted = True
            # authenticate_agent audits its own failures (services/auth.py).
            wait = await self.failures.failed(
                address,
                str(code),
                name if key_attempt else "auth_token",
                claimed(arguments.get("agent_id")),
                audit=not key_attempt,
                reserved=reserved,
            )
            return error_result(rate_limited(wait)) if wait else result
        finally:
            if reserved and not counted:
                self.failures.refund(address)
