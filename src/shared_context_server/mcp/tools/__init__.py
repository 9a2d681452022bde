"""The tool catalogue (DESIGN.md §5), one module per family."""

from __future__ import annotations

from fastmcp import FastMCP

from shared_context_server.mcp.context import ToolContext
from shared_context_server.mcp.tools import (
    audit,
    coordination,
    identity,
    memory,
    messages,
    search,
    sessions,
)


def register_tools(mcp: FastMCP, ctx: ToolContext) -> None:
    for family in (identity, sessions, messages, search, memory, audit, coordination):
        family.register(mcp, ctx)
