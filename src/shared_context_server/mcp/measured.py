"""Every tool call counted and timed (``services/metrics.py``), by tool and outcome code."""

from __future__ import annotations

import time
from typing import Any

from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools.base import ToolResult
from mcp.shared.exceptions import MCPError

from shared_context_server.services.metrics import OK, OTHER_TOOL, Metrics


class Measured(Middleware):
    """Outermost, so it sees each call's final outcome. A result comes only from a tool the
    server has (an unknown name is raised as a protocol error), so only those names
    become labels."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def on_call_tool(
        self, context: MiddlewareContext[Any], call_next: CallNext[Any, ToolResult]
    ) -> ToolResult:
        started = time.perf_counter()
        try:
            result = await call_next(context)
        except MCPError as exc:
            code = exc.data.get("code") if isinstance(exc.data, dict) else None
            self._metrics.record_call(OTHER_TOOL, time.perf_counter() - started, code or "PROTOCOL")
            raise
        code = (result.structured_content or {}).get("code", OK) if result.is_error else OK
        name = str(getattr(context.message, "name", OTHER_TOOL))
        self._metrics.record_call(name, time.perf_counter() - started, str(code))
        return result
