"""wait_for_updates: news for agents whose client ignores resource notifications.

No ``from __future__ import annotations``: the timeout's bound is the setting, so the
argument's annotation is built when the tool is registered.
"""

from typing import Annotated, Any

from fastmcp import FastMCP
from fastmcp.server.dependencies import get_context
from pydantic import BaseModel, Field

from shared_context_server.mcp.context import ToolContext
from shared_context_server.mcp.schemas import MessageOut, Ok
from shared_context_server.mcp.tools.common import INT64, READ_ONLY, AuthToken
from shared_context_server.services.updates import Update


class UpdateOut(BaseModel):
    cursor: int
    kind: str
    session_id: str
    agent_id: str
    message_id: int | None
    details: dict[str, Any]
    message: MessageOut | None

    @classmethod
    def of(cls, update: Update) -> "UpdateOut":
        event = update.event
        return cls(
            cursor=event.id,
            kind=event.kind.value,
            session_id=event.session_id,
            agent_id=event.agent_id,
            message_id=event.message_id,
            details=dict(event.payload),
            message=MessageOut.of(update.message) if update.message else None,
        )


class UpdatesResult(Ok):
    updates: list[UpdateOut]
    count: int
    next_cursor: int
    timed_out: bool
    # The call stopped at its scan budget: more of the feed follows next_cursor.
    has_more: bool


def register(mcp: FastMCP, ctx: ToolContext) -> None:
    updates = ctx.app.updates
    # The schema's maximum is SCS_WAIT_MAX_SECONDS, so a client reads the real bound.
    longest = updates.max_wait_seconds
    usual = min(20.0, longest)
    Timeout = Annotated[
        float,
        Field(ge=0, le=longest, description=f"Seconds to wait, at most {longest:g}."),
    ]

    @mcp.tool(annotations=READ_ONLY)
    async def wait_for_updates(
        session_id: Annotated[
            str | None, Field(max_length=64, description="One session, or all you may read.")
        ] = None,
        cursor: Annotated[
            int | None,
            Field(ge=0, description="next_cursor (or feed_cursor) from an earlier call."),
            INT64,
        ] = None,
        timeout_s: Timeout = usual,
        auth_token: AuthToken = None,
    ) -> UpdatesResult:
        """Wait for news: returns at once with every change you may see after cursor
        (messages, visibility changes, locks, presence), or blocks until one arrives or
        timeout_s passes, sending progress notifications while it waits. Call again with
        cursor=next_cursor to continue exactly where you left off. One call reads at most
        2,000 changes of the feed: far behind (an old cursor), it returns has_more=true,
        maybe with no updates; call again at once to read on."""
        caller = await ctx.caller(auth_token)
        context = get_context()

        async def progress(done: float, total: float) -> None:
            await context.report_progress(done, total, "waiting for updates")

        batch = await updates.wait(
            caller,
            session_id=session_id,
            cursor=cursor,
            timeout_seconds=timeout_s,
            progress=progress,
        )
        out = [UpdateOut.of(u) for u in batch.updates]
        return UpdatesResult(
            updates=out,
            count=len(out),
            next_cursor=batch.next_cursor,
            timed_out=batch.timed_out,
            has_more=batch.has_more,
        )
