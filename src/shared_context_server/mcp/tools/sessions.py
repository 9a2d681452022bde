"""create_session, get_session, list_sessions, update_session."""

from __future__ import annotations

from typing import Annotated, Literal

from fastmcp import FastMCP
from pydantic import Field

from shared_context_server.domain.models import SessionStatus
from shared_context_server.mcp.context import ToolContext
from shared_context_server.mcp.schemas import SessionListResult, SessionOut, SessionResult
from shared_context_server.mcp.tools.common import (
    IDEMPOTENT_WRITE,
    INT64,
    READ_ONLY,
    WRITE,
    AuthToken,
    Metadata,
    SessionId,
)

Status = Literal["active", "completed", "archived"]
Purpose = Annotated[str, Field(min_length=1, max_length=1_000)]


def register(mcp: FastMCP, ctx: ToolContext) -> None:
    sessions = ctx.app.sessions

    @mcp.tool(annotations=WRITE)
    async def create_session(
        purpose: Purpose, metadata: Metadata = None, auth_token: AuthToken = None
    ) -> SessionResult:
        """Start a shared session for one piece of work; returns its id for the other agents."""
        caller = await ctx.caller(auth_token)
        return SessionResult(
            session=SessionOut.of(await sessions.create(caller, purpose, metadata))
        )

    @mcp.tool(annotations=READ_ONLY)
    async def get_session(session_id: SessionId, auth_token: AuthToken = None) -> SessionResult:
        """A session's purpose, status, creator, metadata and timestamps."""
        caller = await ctx.caller(auth_token)
        return SessionResult(session=SessionOut.of(await sessions.get(caller, session_id)))

    @mcp.tool(annotations=READ_ONLY)
    async def list_sessions(
        status: Status | None = None,
        mine: Annotated[bool, Field(description="Only sessions you created or posted in.")] = False,
        limit: Annotated[int, Field(ge=1, le=1_000)] = 50,
        offset: Annotated[int, Field(ge=0), INT64] = 0,
        auth_token: AuthToken = None,
    ) -> SessionListResult:
        """Sessions, most recently active first, optionally by status or only your own."""
        caller = await ctx.caller(auth_token)
        found = await sessions.list(
            caller,
            status=SessionStatus(status) if status else None,
            mine=mine,
            limit=limit + 1,
            offset=offset,
        )
        page = [SessionOut.of(s) for s in found[:limit]]
        return SessionListResult(sessions=page, count=len(page), has_more=len(found) > limit)

    @mcp.tool(annotations=IDEMPOTENT_WRITE)
    async def update_session(
        session_id: SessionId,
        status: Status | None = None,
        purpose: Annotated[str | None, Field(min_length=1, max_length=1_000)] = None,
        metadata: Metadata = None,
        auth_token: AuthToken = None,
    ) -> SessionResult:
        """Change a session's status (active, completed, archived), purpose or metadata.

        Only its creator or an admin may. An archived session refuses new messages.
        """
        caller = await ctx.caller(auth_token)
        updated = await sessions.update(
            caller,
            session_id,
            status=SessionStatus(status) if status else None,
            purpose=purpose,
            metadata=metadata,
        )
        return SessionResult(session=SessionOut.of(updated))
