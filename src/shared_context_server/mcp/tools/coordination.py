"""register_agent_presence, get_active_agents, coordinate_session_work."""

from __future__ import annotations

from typing import Annotated, Literal

from fastmcp import FastMCP
from pydantic import Field

from shared_context_server.domain.locks import LockType
from shared_context_server.domain.presence import PresenceStatus
from shared_context_server.mcp.context import ToolContext
from shared_context_server.mcp.schemas import (
    ActiveAgentsResult,
    AgentPresenceOut,
    CoordinationResult,
    LockOut,
    MessageOut,
    PresenceResult,
)
from shared_context_server.mcp.tools.common import (
    IDEMPOTENT_WRITE,
    READ_ONLY,
    WRITE,
    AuthToken,
    SessionId,
)

Action = Literal["lock", "unlock", "renew", "status", "notify", "force_unlock"]


def register(mcp: FastMCP, ctx: ToolContext) -> None:
    presence = ctx.app.presence
    locks = ctx.app.locks

    @mcp.tool(annotations=IDEMPOTENT_WRITE)
    async def register_agent_presence(
        status: Literal["active", "busy", "idle"] = "active", auth_token: AuthToken = None
    ) -> PresenceResult:
        """Tell the other agents what you are doing: active, busy or idle.

        Any call you make keeps you present; without calls for the presence window
        (5 minutes by default) you show as offline.
        """
        caller = await ctx.caller(auth_token)
        registered = await presence.register(caller, PresenceStatus(status))
        now = ctx.app.clock.now()
        return PresenceResult(agent=AgentPresenceOut.of(presence.view(caller, registered, now)))

    @mcp.tool(annotations=READ_ONLY)
    async def get_active_agents(
        session_id: Annotated[
            str | None,
            Field(min_length=1, max_length=64, description="Only agents active in this session."),
        ] = None,
        include_offline: Annotated[
            bool, Field(description="Also list agents not seen within the window, as offline.")
        ] = False,
        auth_token: AuthToken = None,
    ) -> ActiveAgentsResult:
        """Who is around: agents seen in the presence window with type, status and last
        seen, most recent first; with session_id, who has been active in that session.
        Permissions are shown only to admins and for your own entry."""
        caller = await ctx.caller(auth_token)
        found = await presence.active_agents(caller, session_id, include_offline=include_offline)
        agents = [AgentPresenceOut.of(seen) for seen in found]
        return ActiveAgentsResult(
            session_id=session_id,
            window_seconds=int(presence.window.total_seconds()),
            agents=agents,
            count=len(agents),
        )

    @mcp.tool(annotations=WRITE)
    async def coordinate_session_work(
        session_id: SessionId,
        action: Annotated[Action, Field(description="What to do; see the tool description.")],
        lock_type: Annotated[
            Literal["read", "write", "exclusive"],
            Field(description="For lock: read (shared), write or exclusive (one holder)."),
        ] = "write",
        message: Annotated[
            str | None,
            Field(
                max_length=100_000,
                description="notify: the text to post; lock: a note on what you are doing.",
            ),
        ] = None,
        ttl_seconds: Annotated[
            int | None,
            Field(ge=1, le=3600, description="lock/renew: lifetime in seconds (default 300)."),
        ] = None,
        holder: Annotated[
            str | None,
            Field(
                min_length=1,
                max_length=100,
                description="unlock: release this sub-agent's lock (one you delegated) "
                "instead of yours.",
            ),
        ] = None,
        auth_token: AuthToken = None,
    ) -> CoordinationResult:
        """Claim a session before conflicting work, and coordinate with the others in it.

        lock: take a lock; read locks are shared, write and exclusive have one holder and
        exclude every other lock; exclusive also makes the session read-only for others and
        may be taken only by the session's creator (or their sub-agents) and admins.
        Returns a fencing_token larger than any earlier one. Fails with SESSION_LOCKED if
        another agent's lock is in the way (details name them). A lock ends after
        ttl_seconds, or 60 s after the last lock/renew if you stop renewing: call renew
        regularly. unlock: release yours, or with holder one of your sub-agents' (NO_LOCK_HELD
        if there is none). status: the live
        locks. notify: post `message` as a coordination message. force_unlock (admin):
        remove every lock; the former holders are told.
        """
        caller = await ctx.caller(auth_token)
        result = CoordinationResult(action=action, session_id=session_id)
        match action:
            case "lock":
                lock = await locks.lock(
                    caller,
                    session_id,
                    LockType(lock_type),
                    ttl_seconds=ttl_seconds,
                    message=message,
                )
                result.lock = LockOut.of(lock)
            case "renew":
                result.lock = LockOut.of(
                    await locks.renew(caller, session_id, ttl_seconds=ttl_seconds)
                )
            case "unlock":
                result.lock = LockOut.of(await locks.unlock(caller, session_id, holder))
            case "status":
                result.locks = [LockOut.of(lock) for lock in await locks.status(caller, session_id)]
            case "notify":
                result.message = MessageOut.of(await locks.notify(caller, session_id, message))
            case "force_unlock":
                released = await locks.force_unlock(caller, session_id)
                result.locks = [LockOut.of(lock) for lock in released]
        return result
