"""The tool catalogue (DESIGN.md §5), one module per family, trimmed to a profile."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastmcp import FastMCP
from mcp_types import ToolAnnotations

from shared_context_server.mcp.context import ToolContext
from shared_context_server.mcp.errors import quiet
from shared_context_server.mcp.tools import (
    audit,
    coordination,
    identity,
    memory,
    messages,
    search,
    sessions,
    updates,
)
from shared_context_server.mcp.tools.common import without_auth_token

FAMILIES = (identity, sessions, messages, search, memory, updates, audit, coordination)

# What an agent needs day to day, for clients that pay for every tool in their context.
CORE = frozenset(
    {
        "authenticate_agent",
        "create_session",
        "get_session",
        "list_sessions",
        "add_message",
        "get_messages",
        "get_context",
        "search_context",
        "set_memory",
        "get_memory",
        "list_memory",
        "wait_for_updates",
        "coordinate_session_work",
    }
)
IDENTITY = frozenset({"authenticate_agent", "refresh_token"})


class _Profiled:
    """Stands in for FastMCP while the families register: passes on only the tools the
    profile keeps, so the others are never registered (and never listed)."""

    def __init__(self, mcp: FastMCP, profile: str) -> None:
        self._mcp = mcp
        self._profile = profile

    def _keeps(self, name: str, annotations: ToolAnnotations | None) -> bool:
        if self._profile == "core":
            return name in CORE
        if self._profile == "readonly":
            return name in IDENTITY or bool(annotations and annotations.read_only_hint)
        return True

    def tool(self, **options: Any) -> Callable[[Callable[..., Any]], Any]:
        register = self._mcp.tool(**options)

        def decorate(fn: Callable[..., Any]) -> Any:
            if self._keeps(fn.__name__, options.get("annotations")):
                return register(fn)
            return fn

        return decorate


class _Wrapped:
    """Stands in for FastMCP while the families register: each tool is registered as
    ``wrap`` makes it."""

    def __init__(self, target: Any, wrap: Callable[[Callable[..., Any]], Any]) -> None:
        self._target = target
        self._wrap = wrap

    def tool(self, **options: Any) -> Callable[[Callable[..., Any]], Any]:
        register = self._target.tool(**options)
        return lambda fn: register(self._wrap(fn))


def register_tools(mcp: FastMCP, ctx: ToolContext, profile: str = "all") -> None:
    """Register the tools of ``profile``: ``all``, ``core`` (an agent's everyday set) or
    ``readonly`` (tools that change nothing, plus authentication)."""
    # Domain errors reach FastMCP as expected ones (quiet); without the auth_token
    # parameter (SCS_AUTH_TOKEN_PARAM=false) no tool lists it.
    target: Any = _Wrapped(mcp if profile == "all" else _Profiled(mcp, profile), quiet)
    if not ctx.app.settings.auth_token_param:
        target = _Wrapped(target, without_auth_token)
    for family in FAMILIES:
        family.register(target, ctx)
