"""What the server declares, in both protocol eras: only what it really does.

- No ``logging``: the server sends no MCP log messages (its own log goes to stderr or its
  log file). Logging is deprecated in 2026-07-28 (SEP-2577), where a log may only ride the
  response stream of a request that asked for it, so background work (sweeps, lock
  expiries, relay reconnects) could not be reported there at all. Without the handler,
  ``logging/setLevel`` is "Method not found" and neither era declares the capability.
- 2026-07-28 ``server/discover``: the SDK marks every list as changeable once
  ``subscriptions/listen`` is served, and FastMCP adds the MCP Apps UI extension. The tool
  and prompt lists of this server never change (a listen stream honours only resource
  notifications) and it has no UI resources, so discover says neither.
The handshake era derives its capabilities from ``NotificationOptions`` (set in server.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastmcp.apps import UI_EXTENSION_ID
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp_types import (
    DiscoverResult,
    PromptsCapability,
    RequestParams,
    ServerCapabilities,
    ToolsCapability,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

Discover = Callable[
    [ServerRequestContext[Any, Any], RequestParams | None], Awaitable[DiscoverResult]
]


def drop_logging(low: Server[Any]) -> None:
    # FastMCP registers logging/setLevel unconditionally and the SDK has no public remover.
    low._request_handlers.pop("logging/setLevel", None)


def modern(capabilities: ServerCapabilities) -> ServerCapabilities:
    """The SDK's 2026-era capabilities, less the notifications and extensions never sent."""
    extensions = {
        name: settings
        for name, settings in (capabilities.extensions or {}).items()
        if name != UI_EXTENSION_ID
    }
    return capabilities.model_copy(
        update={
            "tools": ToolsCapability(list_changed=False) if capabilities.tools else None,
            "prompts": PromptsCapability(list_changed=False) if capabilities.prompts else None,
            "extensions": extensions or None,
        }
    )


def discover(low: Server[Any]) -> Discover:
    """A ``server/discover`` handler: the SDK's answer with :func:`modern` capabilities."""

    async def handler(
        ctx: ServerRequestContext[Any, Any], params: RequestParams | None
    ) -> DiscoverResult:
        capabilities = low.get_capabilities(protocol_version=ctx.protocol_version)
        return DiscoverResult(
            supported_versions=list(MODERN_PROTOCOL_VERSIONS),
            capabilities=modern(capabilities),
            instructions=low.instructions,
        )

    return handler
