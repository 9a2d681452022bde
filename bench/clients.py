"""The official ``mcp`` client, connected the way an agent connects, plus small helpers."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.session import MessageHandlerFnT
from mcp.client.stdio import stdio_client as sdk_stdio_client
from mcp.client.streamable_http import streamable_http_client

LEGACY = "legacy"  # the 2025-11-25 initialize handshake
MODERN = "2026-07-28"


class ToolError(RuntimeError):
    """A tool call that returned an error result where success was needed."""


@asynccontextmanager
async def http_client(
    url: str,
    token: str | None = None,
    *,
    mode: str = LEGACY,
    message_handler: MessageHandlerFnT | None = None,
) -> AsyncIterator[Client]:
    """One connection with its own identity (``Authorization: Bearer``), no response cache."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(
            transport,
            mode=mode,
            cache=None,
            message_handler=message_handler,
        ) as client:
            yield client


@asynccontextmanager
async def stdio_client(
    params: StdioServerParameters, log: Path, *, mode: str = LEGACY
) -> AsyncIterator[Client]:
    """Launches the server as its stdio client would; its stderr goes to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as errlog:
        transport = sdk_stdio_client(params, errlog=errlog)
        async with Client(transport, mode=mode, cache=None) as client:
            yield client


async def call(
    client: Client, tool: str, arguments: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Calls a tool that must succeed; returns its structured content."""
    result = await client.call_tool(tool, arguments or {})
    if result.is_error:
        raise ToolError(f"{tool}: {result.structured_content or result.content}")
    return result.structured_content or {}


async def subscribe(client: Client, uri: str) -> None:
    """resources/subscribe: deprecated by the SDK for 2026-07-28 but the 2025 way to listen."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        await client.subscribe_resource(uri)


async def issue_tokens(
    url: str,
    admin_key: str,
    agent_ids: list[str],
    *,
    agent_type: str = "claude",
    permissions: list[str] | None = None,
) -> dict[str, str]:
    """A token per agent from ``authenticate_agent``, as an orchestrator would get them
    (on a 2026-07-28 connection: a 2025 session cannot be opened without an identity)."""
    tokens: dict[str, str] = {}
    async with http_client(url, mode=MODERN) as client:
        for agent_id in agent_ids:
            arguments: dict[str, Any] = {
                "agent_id": agent_id,
                "agent_type": agent_type,
                "api_key": admin_key,
            }
            if permissions:
                arguments["requested_permissions"] = permissions
            tokens[agent_id] = str((await call(client, "authenticate_agent", arguments))["token"])
    return tokens
