"""get_audit_log, verify_audit_log, get_agent_activity_summary."""

from __future__ import annotations

from typing import Annotated

from fastmcp import FastMCP
from pydantic import Field

from shared_context_server.mcp.context import ToolContext
from shared_context_server.mcp.schemas import (
    ActivitySummaryResult,
    AgentActivityOut,
    AnchorOut,
    AuditLogResult,
    AuditRecordOut,
    AuditVerifyResult,
    ChainBreakOut,
)
from shared_context_server.mcp.tools.common import (
    INT64,
    NO_NUL,
    READ_ONLY,
    AuthToken,
    Timestamp,
)
from shared_context_server.mcp.tools.messages import AgentName
from shared_context_server.services.audit import Window

EventType = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description="e.g. session.created, message.added, memory.set, auth.token_issued, "
        "auth.failed, api_key.created, audit.read.",
    ),
    NO_NUL,
]


def register(mcp: FastMCP, ctx: ToolContext) -> None:
    audit = ctx.app.audit

    @mcp.tool(annotations=READ_ONLY)
    async def get_audit_log(
        session_id: Annotated[str | None, Field(min_length=1, max_length=64), NO_NUL] = None,
        agent_id: AgentName | None = None,
        event_type: EventType | None = None,
        start_time: Timestamp | None = None,
        end_time: Timestamp | None = None,
        limit: Annotated[int, Field(ge=1, le=1_000)] = 100,
        before_id: Annotated[
            int | None, Field(ge=1, description="Page backwards: next_before_id of a page."), INT64
        ] = None,
        auth_token: AuthToken = None,
    ) -> AuditLogResult:
        """The audit trail (admin only), newest first: who did what, when, in which session.
        Every filter given must match; times are ISO 8601 with a time zone, inclusive.
        For older records pass the result's next_before_id as before_id. Reading is audited."""
        caller = await ctx.caller(auth_token)
        page = await audit.get_log(
            caller,
            session_id=session_id,
            agent_id=agent_id,
            event_type=event_type,
            since=start_time,
            until=end_time,
            limit=limit,
            before_id=before_id,
        )
        return AuditLogResult(
            records=[AuditRecordOut.of(r) for r in page.records],
            count=len(page.records),
            has_more=page.has_more,
            next_before_id=page.next_before_id,
        )

    @mcp.tool(annotations=READ_ONLY)
    async def verify_audit_log(auth_token: AuthToken = None) -> AuditVerifyResult:
        """Check the audit trail end to end (admin only): the keyed hash chain, the head
        anchored outside the database, and every message, session, memory entry, key,
        identity and delegation against the digest its latest record holds. intact is
        false when a record or a row was edited, inserted or deleted, or the trail was
        emptied or cut short; breaks (first_break first) name the record or the row and
        why. last_id/last_hash identify the newest verified record. The check is audited."""
        caller = await ctx.caller(auth_token)
        report = await audit.verify(caller)
        breaks = [ChainBreakOut.of(b) for b in report.breaks]
        return AuditVerifyResult(
            intact=report.intact,
            checked=report.checked,
            rows_checked=report.rows_checked,
            first_break=breaks[0] if breaks else None,
            breaks=breaks,
            break_count=report.break_count,
            last_id=report.last_id,
            last_hash=report.last_hash,
            anchor=AnchorOut.of(report.anchor) if report.anchor else None,
        )

    @mcp.tool(annotations=READ_ONLY)
    async def get_agent_activity_summary(
        time_window: Window = "24h",
        agent_id: Annotated[
            AgentName | None,
            Field(description="Admins: one agent (default all). Others: only themselves."),
        ] = None,
        auth_token: AuthToken = None,
    ) -> ActivitySummaryResult:
        """Per agent, over the last 1h, 24h, 7d or 30d: how many events, which event types,
        how many sessions touched and created, first and last activity. Admins see every
        agent; any other agent sees only its own summary."""
        caller = await ctx.caller(auth_token)
        summary = await audit.activity_summary(caller, time_window, agent_id)
        agents = [AgentActivityOut.of(a) for a in summary.agents]
        return ActivitySummaryResult(
            time_window=summary.window,
            since=summary.since,
            until=summary.until,
            agents=agents,
            count=len(agents),
        )
