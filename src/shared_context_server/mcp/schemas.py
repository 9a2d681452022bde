"""Output shapes of the tools: each becomes a tool's output schema and structured content."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, WithJsonSchema

from shared_context_server.services.messages import MessagePage

# Nullable scalars as {"type": [T, "null"]} rather than pydantic's anyOf of two schemas:
# the same meaning, and clients that validate results (the Python SDK does, per item) check
# a type list much faster than they try one schema after another.
OptionalInt = Annotated[int | None, WithJsonSchema({"type": ["integer", "null"]})]
OptionalStr = Annotated[str | None, WithJsonSchema({"type": ["string", "null"]})]
OptionalTime = Annotated[
    datetime | None, WithJsonSchema({"type": ["string", "null"], "format": "date-time"})
]


# A failed call's structured content (docs/errors.md). Every tool's output schema offers it
# beside the success shape: clients that validate structured content even when isError is
# set (TypeScript SDK 1.x, MCP Inspector) would otherwise refuse the result and lose its code.
ERROR_RESULT: dict[str, Any] = {
    "properties": {
        "success": {"const": False},
        "code": {"type": "string"},
        "error": {"type": "string"},
        "details": {"type": "object"},
    },
    "required": ["success", "code", "error", "details"],
}


def with_error_result(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (a tool's success shape) or :data:`ERROR_RESULT`.

    The success fields stay at the root, so clients that read only the root's properties
    (fastmcp's typed ``data``, schema viewers) see the same shape as before; what each
    outcome requires moves into ``anyOf``, success first, so a validator stops at its first
    branch and checks a success result at the cost it did before."""
    properties = {**schema.get("properties", {}), "success": {"type": "boolean"}}
    succeeded = {"properties": {"success": {"const": True}}, "required": schema.get("required", [])}
    rest = {k: v for k, v in schema.items() if k not in ("properties", "required")}
    return {**rest, "properties": properties, "anyOf": [succeeded, ERROR_RESULT]}


class Out(BaseModel):
    """An output shape read straight from a domain record's attributes."""

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def of(cls, record: object) -> Self:
        return cls.model_validate(record)


class SessionOut(Out):
    id: str
    purpose: str
    created_by: str
    status: str
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    last_activity_at: datetime


class MessageOut(Out):
    id: int
    session_id: str
    sender: str
    sender_type: str
    content: str
    metadata: dict[str, Any]
    message_type: str
    visibility: str
    parent_message_id: OptionalInt
    created_at: datetime


class MemoryOut(Out):
    key: str
    value: Any
    session_id: OptionalStr
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    expires_at: OptionalTime
    version: int


class Ok(BaseModel):
    success: Literal[True] = True


class TokenResult(Ok):
    token: str
    token_type: Literal["Bearer"] = "Bearer"
    agent_id: str
    agent_type: str
    permissions: list[str]
    denied_permissions: list[str]
    expires_at: datetime


class DelegatedTokenResult(TokenResult):
    jti: str
    session_id: str


class RevokedResult(Ok):
    jti: str
    agent_id: str
    session_id: str
    revoked: Literal[True] = True


class SessionResult(Ok):
    session: SessionOut


class SessionListResult(Ok):
    sessions: list[SessionOut]
    count: int
    has_more: bool


class MessageResult(Ok):
    message: MessageOut


class MessagePageResult(Ok):
    session_id: str
    messages: list[MessageOut]
    count: int
    next_cursor: OptionalInt
    has_more: bool
    feed_cursor: int

    @classmethod
    def of(cls, session_id: str, page: MessagePage) -> MessagePageResult:
        return cls(
            session_id=session_id,
            messages=[MessageOut.of(m) for m in page.messages],
            count=len(page.messages),
            next_cursor=page.next_cursor,
            has_more=page.has_more,
            feed_cursor=page.feed_cursor,
        )


class ContextResult(Ok):
    session: SessionOut
    messages: list[MessageOut]
    count: int
    feed_cursor: int


class SearchHitOut(BaseModel):
    score: float
    message: MessageOut


class SearchResult(Ok):
    session_id: str
    query: str
    hits: list[SearchHitOut]
    count: int
    feed_cursor: int


class MemoryResult(Ok):
    entry: MemoryOut


class MemoryListResult(Ok):
    entries: list[MemoryOut]
    count: int


class DeletedResult(Ok):
    key: str
    deleted: Literal[True] = True


# --- audit -------------------------------------------------------------------------------


class AuditRecordOut(Out):
    id: int
    event_type: str
    agent_id: str
    agent_type: str
    session_id: OptionalStr
    target: OptionalStr
    metadata: dict[str, Any]
    created_at: datetime
    # The data row the record changed (kind, id, digest of the row after it; a null
    # digest with an entity: the row was deleted), and the hash's version (2: keyed).
    entity: OptionalStr = None
    entity_id: OptionalStr = None
    digest: OptionalStr = None
    hash_version: int = 2
    prev_hash: str
    hash: str


class AuditLogResult(Ok):
    records: list[AuditRecordOut]
    count: int
    has_more: bool
    # Pass as before_id for the next (older) page; null when there is none.
    next_before_id: OptionalInt


class ChainBreakOut(Out):
    # The record of the chain, or the data row (entity kind and id), that is wrong.
    record_id: OptionalInt = None
    reason: str
    entity: OptionalStr = None
    entity_id: OptionalStr = None


class AnchorOut(Out):
    id: int
    hash: str
    at: datetime


class AuditVerifyResult(Ok):
    intact: bool
    # Records verified (all when intact) and audited rows compared with their records.
    checked: int
    rows_checked: int = 0
    first_break: ChainBreakOut | None = None
    # What is wrong, at most 50 of break_count.
    breaks: list[ChainBreakOut] = []
    break_count: int = 0
    last_id: OptionalInt = None
    last_hash: OptionalStr = None
    # The head anchored outside the database that the chain was checked against.
    anchor: AnchorOut | None = None


class AgentActivityOut(Out):
    agent_id: str
    agent_types: list[str]
    event_count: int
    event_types: dict[str, int]
    sessions_touched: int
    sessions_created: int
    first_activity: datetime
    last_activity: datetime


class ActivitySummaryResult(Ok):
    time_window: str
    since: datetime
    until: datetime
    agents: list[AgentActivityOut]
    count: int


# --- coordination: presence and locks ---------------------------------------------------


class AgentPresenceOut(Out):
    agent_id: str
    agent_type: str
    status: str
    last_seen: datetime
    # For get_active_agents(session_id): the agent's last activity in that session.
    last_seen_in_session: OptionalTime = None
    # Only for admins and the agent itself; null for everyone else.
    permissions: list[str] | None = None


class PresenceResult(Ok):
    agent: AgentPresenceOut


class ActiveAgentsResult(Ok):
    session_id: OptionalStr
    window_seconds: int
    agents: list[AgentPresenceOut]
    count: int


class LockOut(Out):
    session_id: str
    holder: str
    holder_type: str
    lock_type: str
    fencing_token: int
    acquired_at: datetime
    expires_at: datetime
    heartbeat_deadline: datetime
    ttl_seconds: int
    message: OptionalStr


class CoordinationResult(Ok):
    action: str
    session_id: str
    # lock, renew: the caller's lock now; unlock: the lock released.
    lock: LockOut | None = None
    # status: the live locks; force_unlock: the locks removed.
    locks: list[LockOut] = []
    # notify: the coordination message posted.
    message: MessageOut | None = None
