"""search_context, search_by_sender, search_by_timerange."""

from __future__ import annotations

from typing import Annotated

from fastmcp import FastMCP
from pydantic import Field

from shared_context_server.mcp.context import ToolContext
from shared_context_server.mcp.schemas import (
    MessageOut,
    MessagePageResult,
    SearchHitOut,
    SearchResult,
)
from shared_context_server.mcp.tools.common import READ_ONLY, AuthToken, SessionId, Timestamp
from shared_context_server.mcp.tools.messages import AgentName, Limit, Offset
from shared_context_server.services.search import DEFAULT_THRESHOLD


def register(mcp: FastMCP, ctx: ToolContext) -> None:
    search = ctx.app.search
    messages = ctx.app.messages

    @mcp.tool(annotations=READ_ONLY)
    async def search_context(
        session_id: SessionId,
        query: Annotated[str, Field(min_length=1, max_length=1_000)],
        fuzzy_threshold: Annotated[float, Field(ge=0, le=100)] = DEFAULT_THRESHOLD,
        limit: Annotated[int, Field(ge=1, le=200)] = 10,
        search_metadata: bool = True,
        auth_token: AuthToken = None,
    ) -> SearchResult:
        """Fuzzy-search everything you may see in a session (content, sender and, optionally,
        metadata); typos match. Hits are best first with a 0-100 score (100: every query
        word present as written); raise fuzzy_threshold for stricter matches."""
        caller = await ctx.caller(auth_token)
        feed_cursor = await ctx.app.updates.cursor()
        hits = await search.fuzzy(
            caller,
            session_id,
            query,
            threshold=fuzzy_threshold,
            limit=limit,
            include_metadata=search_metadata,
        )
        out = [SearchHitOut(score=h.score, message=MessageOut.of(h.message)) for h in hits]
        return SearchResult(
            session_id=session_id,
            query=query,
            hits=out,
            count=len(out),
            feed_cursor=feed_cursor,
        )

    @mcp.tool(annotations=READ_ONLY)
    async def search_by_sender(
        session_id: SessionId,
        sender: AgentName,
        limit: Limit = 50,
        offset: Offset = 0,
        auth_token: AuthToken = None,
    ) -> MessagePageResult:
        """Messages one agent posted in a session that you may see, oldest first."""
        caller = await ctx.caller(auth_token)
        page = await messages.page(caller, session_id, limit=limit, offset=offset, senders=[sender])
        return MessagePageResult.of(session_id, page)

    @mcp.tool(annotations=READ_ONLY)
    async def search_by_timerange(
        session_id: SessionId,
        start_time: Timestamp | None = None,
        end_time: Timestamp | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
        auth_token: AuthToken = None,
    ) -> MessagePageResult:
        """Messages posted between start_time and end_time (ISO 8601 with a time zone),
        inclusive, that you may see, oldest first."""
        caller = await ctx.caller(auth_token)
        page = await messages.page(
            caller,
            session_id,
            limit=limit,
            offset=offset,
            since=start_time,
            until=end_time,
        )
        return MessagePageResult.of(session_id, page)
