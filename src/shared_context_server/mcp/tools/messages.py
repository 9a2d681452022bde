"""add_message, add_private_note, get_message, get_messages, get_context."""

from __future__ import annotations

from typing import Annotated, Literal

from fastmcp import FastMCP
from pydantic import Field

from shared_context_server.domain.models import Visibility
from shared_context_server.mcp.context import ToolContext
from shared_context_server.mcp.schemas import (
    ContextResult,
    MessageOut,
    MessagePageResult,
    MessageResult,
    SessionOut,
)
from shared_context_server.mcp.tools.common import (
    IDEMPOTENT_WRITE,
    INT64,
    READ_ONLY,
    WRITE,
    AuthToken,
    IdempotencyKey,
    Metadata,
    SessionId,
)

VisibilityName = Literal["public", "private", "agent_only", "admin_only"]
Content = Annotated[str, Field(min_length=1, max_length=100_000)]
MessageId = Annotated[int, Field(ge=1), INT64]
Limit = Annotated[int, Field(ge=1, le=1_000)]
Offset = Annotated[int, Field(ge=0), INT64]
MessageType = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
AgentName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:@-]+$")]


def register(mcp: FastMCP, ctx: ToolContext) -> None:
    messages = ctx.app.messages

    @mcp.tool(annotations=WRITE)
    async def add_message(
        session_id: SessionId,
        content: Content,
        visibility: VisibilityName = "public",
        metadata: Metadata = None,
        parent_message_id: MessageId | None = None,
        message_type: MessageType = "message",
        idempotency_key: IdempotencyKey = None,
        auth_token: AuthToken = None,
    ) -> MessageResult:
        """Post to a session. Visibility: public (everyone), private (only you),
        agent_only (agents of your type), admin_only (admins). Reply in a thread
        with parent_message_id."""
        caller = await ctx.caller(auth_token)
        message = await messages.add(
            caller,
            session_id,
            content,
            visibility=Visibility(visibility),
            metadata=metadata,
            parent_message_id=parent_message_id,
            message_type=message_type,
            idempotency_key=idempotency_key,
        )
        return MessageResult(message=MessageOut.of(message))

    @mcp.tool(annotations=WRITE)
    async def add_private_note(
        session_id: SessionId,
        content: Content,
        metadata: Metadata = None,
        auth_token: AuthToken = None,
    ) -> MessageResult:
        """Keep a note in a session that only you can read."""
        caller = await ctx.caller(auth_token)
        message = await messages.add(
            caller,
            session_id,
            content,
            visibility=Visibility.PRIVATE,
            metadata=metadata,
            message_type="note",
        )
        return MessageResult(message=MessageOut.of(message))

    @mcp.tool(annotations=READ_ONLY)
    async def get_message(message_id: MessageId, auth_token: AuthToken = None) -> MessageResult:
        """One message by id, if you may see it."""
        caller = await ctx.caller(auth_token)
        return MessageResult(message=MessageOut.of(await messages.get(caller, message_id)))

    @mcp.tool(annotations=READ_ONLY)
    async def get_messages(
        session_id: SessionId,
        limit: Limit = 50,
        offset: Offset = 0,
        cursor: Annotated[
            int | None,
            Field(ge=0, description="next_cursor of an earlier page: only newer messages."),
            INT64,
        ] = None,
        visibility: VisibilityName | None = None,
        sender: AgentName | None = None,
        message_type: MessageType | None = None,
        auth_token: AuthToken = None,
    ) -> MessagePageResult:
        """Messages of a session you may see, oldest first. Resume with cursor=next_cursor."""
        caller = await ctx.caller(auth_token)
        page = await messages.page(
            caller,
            session_id,
            limit=limit,
            offset=offset,
            cursor=cursor,
            visibilities=(Visibility(visibility),) if visibility else (),
            senders=[sender] if sender else None,
            message_type=message_type,
        )
        return MessagePageResult.of(session_id, page)

    @mcp.tool(annotations=READ_ONLY)
    async def get_context(
        session_id: SessionId,
        limit: Limit = 50,
        offset: Annotated[
            int, Field(ge=0, description="Skip this many newest messages."), INT64
        ] = 0,
        include_private: bool = True,
        auth_token: AuthToken = None,
    ) -> ContextResult:
        """Catch up on a session: the session and its newest messages you may see."""
        caller = await ctx.caller(auth_token)
        found = await messages.context(
            caller, session_id, limit=limit, offset=offset, include_private=include_private
        )
        out = [MessageOut.of(m) for m in found.messages]
        return ContextResult(
            session=SessionOut.of(found.session),
            messages=out,
            count=len(out),
            feed_cursor=found.feed_cursor,
        )

    @mcp.tool(annotations=IDEMPOTENT_WRITE)
    async def set_message_visibility(
        message_id: MessageId,
        new_visibility: VisibilityName,
        reason: Annotated[str, Field(min_length=1, max_length=500)],
        auth_token: AuthToken = None,
    ) -> MessageResult:
        """Change who may see a message. You may change your own messages; changing
        another agent's, or making one admin_only, needs admin. Subscribers are told;
        the change and its reason are audited."""
        caller = await ctx.caller(auth_token)
        changed = await messages.set_visibility(
            caller, message_id, Visibility(new_visibility), reason
        )
        return MessageResult(message=MessageOut.of(changed))

    @mcp.tool(annotations=READ_ONLY)
    async def get_messages_advanced(
        session_id: SessionId,
        visibility_filter: Annotated[
            list[VisibilityName] | None,
            Field(max_length=4, description="Only these visibilities."),
        ] = None,
        agent_type_filter: Annotated[
            AgentName | None, Field(description="Only messages from agents of this type.")
        ] = None,
        include_admin_only: Annotated[
            bool, Field(description="Admins only: include admin_only messages.")
        ] = False,
        limit: Limit = 50,
        offset: Offset = 0,
        cursor: Annotated[int | None, Field(ge=0), INT64] = None,
        auth_token: AuthToken = None,
    ) -> MessagePageResult:
        """Messages you may see, filtered by visibility and by the sender's agent type,
        oldest first. admin_only messages appear only for admins who set
        include_admin_only."""
        caller = await ctx.caller(auth_token)
        page = await messages.advanced(
            caller,
            session_id,
            visibilities=[Visibility(v) for v in visibility_filter or ()],
            agent_type=agent_type_filter,
            include_admin_only=include_admin_only,
            limit=limit,
            offset=offset,
            cursor=cursor,
        )
        return MessagePageResult.of(session_id, page)
