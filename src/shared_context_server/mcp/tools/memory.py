"""set_memory, get_memory, list_memory, delete_memory."""

from __future__ import annotations

from typing import Annotated, Any

from fastmcp import FastMCP
from pydantic import Field

from shared_context_server.mcp.context import ToolContext
from shared_context_server.mcp.schemas import (
    DeletedResult,
    MemoryListResult,
    MemoryOut,
    MemoryResult,
)
from shared_context_server.mcp.tools.common import (
    DESTRUCTIVE,
    IDEMPOTENT_WRITE,
    INT64,
    READ_ONLY,
    AuthToken,
    IdempotencyKey,
    Metadata,
)

Key = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^\S+$")]
ScopeSession = Annotated[
    str | None,
    Field(default=None, max_length=64, description="A session id; omit for global memory."),
]


def register(mcp: FastMCP, ctx: ToolContext) -> None:
    memory = ctx.app.memory

    @mcp.tool(annotations=IDEMPOTENT_WRITE)
    async def set_memory(
        key: Key,
        value: Annotated[Any, Field(description="Any JSON value (≤ 1 MiB).")],
        session_id: ScopeSession = None,
        expires_in: Annotated[
            float | None, Field(gt=0, le=365 * 24 * 3600, description="Seconds until it expires.")
        ] = None,
        metadata: Metadata = None,
        overwrite: Annotated[
            bool, Field(description="False: fail with KEY_EXISTS if the key is taken.")
        ] = True,
        expected_version: Annotated[
            int | None,
            Field(
                ge=0,
                description="Write only if the stored version is this (0: only if unset); "
                "else CONFLICT. Versions come back with every entry.",
            ),
            INT64,
        ] = None,
        idempotency_key: IdempotencyKey = None,
        auth_token: AuthToken = None,
    ) -> MemoryResult:
        """Remember a value under a key: your own memory, global or tied to one session."""
        caller = await ctx.caller(auth_token)
        entry = await memory.set(
            caller,
            key,
            value,
            session_id=session_id,
            expires_in=expires_in,
            metadata=metadata,
            overwrite=overwrite,
            expected_version=expected_version,
            idempotency_key=idempotency_key,
        )
        return MemoryResult(entry=MemoryOut.of(entry))

    @mcp.tool(annotations=READ_ONLY)
    async def get_memory(
        key: Key, session_id: ScopeSession = None, auth_token: AuthToken = None
    ) -> MemoryResult:
        """Read a value you remembered (expired values are gone)."""
        caller = await ctx.caller(auth_token)
        return MemoryResult(
            entry=MemoryOut.of(await memory.get(caller, key, session_id=session_id))
        )

    @mcp.tool(annotations=READ_ONLY)
    async def list_memory(
        session_id: ScopeSession = None,
        all_scopes: Annotated[
            bool, Field(description="List global and every session's memory.")
        ] = False,
        pattern: Annotated[
            str | None,
            Field(max_length=255, description="Key prefix, or a glob such as 'task.*'."),
        ] = None,
        limit: Annotated[int, Field(ge=1, le=1_000)] = 100,
        auth_token: AuthToken = None,
    ) -> MemoryListResult:
        """Your remembered entries, by key."""
        caller = await ctx.caller(auth_token)
        entries = await memory.list(
            caller, session_id=session_id, all_scopes=all_scopes, pattern=pattern, limit=limit
        )
        out = [MemoryOut.of(e) for e in entries]
        return MemoryListResult(entries=out, count=len(out))

    @mcp.tool(annotations=DESTRUCTIVE)
    async def delete_memory(
        key: Key, session_id: ScopeSession = None, auth_token: AuthToken = None
    ) -> DeletedResult:
        """Forget a remembered value."""
        caller = await ctx.caller(auth_token)
        await memory.delete(caller, key, session_id=session_id)
        return DeletedResult(key=key)
