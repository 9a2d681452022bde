"""``session://{session_id}`` and ``agent://{agent_id}/memory``: identity-aware resources.

Served by low-level handlers because what a resource lists and holds depends on who asks.
"""

from __future__ import annotations

import json
from typing import Any

from mcp.server.context import ServerRequestContext
from mcp_types import (
    ListResourcesResult,
    ListResourceTemplatesResult,
    PaginatedRequestParams,
    ReadResourceRequestParams,
    ReadResourceResult,
    Resource,
    ResourceTemplate,
    TextResourceContents,
)

from shared_context_server.domain.principal import Principal
from shared_context_server.errors import (
    DomainError,
    InvalidInputError,
    ResourceNotFoundError,
)
from shared_context_server.mcp.callers import RequestCaller
from shared_context_server.mcp.errors import rpc_error
from shared_context_server.mcp.schemas import MemoryOut, MessageOut, SessionOut
from shared_context_server.mcp.uris import (
    MEMORY_TEMPLATE,
    SESSION_TEMPLATE,
    memory_uri,
    parse_memory_uri,
    parse_session_uri,
    session_uri,
)
from shared_context_server.services.memory import MemoryService
from shared_context_server.services.messages import MessageService
from shared_context_server.services.presence import PresenceService
from shared_context_server.services.sessions import SessionService

JSON = "application/json"
PAGE = 100
# Newest messages included when a session resource is read.
SESSION_MESSAGES = 1_000
TEMPLATES = [
    ResourceTemplate(
        name="session",
        uri_template=SESSION_TEMPLATE,
        description="A session and the messages you may see in it (newest 1,000).",
        mime_type=JSON,
    ),
    ResourceTemplate(
        name="agent-memory",
        uri_template=MEMORY_TEMPLATE,
        description="Your own memory entries (only your agent_id can be read).",
        mime_type=JSON,
    ),
]


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit():
        raise InvalidInputError("invalid cursor", field="cursor")
    return int(cursor)


class Resources:
    def __init__(
        self,
        caller: RequestCaller,
        sessions: SessionService,
        messages: MessageService,
        memory: MemoryService,
        presence: PresenceService,
    ) -> None:
        self._caller = caller
        self._presence = presence
        self._sessions = sessions
        self._messages = messages
        self._memory = memory

    async def list(
        self, ctx: ServerRequestContext[Any, Any], params: PaginatedRequestParams | None
    ) -> ListResourcesResult:
        try:
            principal = await self._caller(ctx)
            offset = _offset(params.cursor if params else None)
            found = await self._sessions.list(principal, limit=PAGE + 1, offset=offset)
        except DomainError as exc:
            raise rpc_error(exc) from exc
        resources = (
            []
            if offset
            else [
                Resource(
                    name="my-memory",
                    uri=memory_uri(principal.agent_id),
                    description="Your own memory entries.",
                    mime_type=JSON,
                )
            ]
        )
        resources += [
            Resource(
                name=s.id,
                title=s.purpose[:200],
                uri=session_uri(s.id),
                description=f"{s.status.value} session by {s.created_by}",
                mime_type=JSON,
            )
            for s in found[:PAGE]
        ]
        next_cursor = str(offset + PAGE) if len(found) > PAGE else None
        return ListResourcesResult(
            resources=resources, next_cursor=next_cursor, ttl_ms=0, cache_scope="private"
        )

    async def templates(
        self, ctx: ServerRequestContext[Any, Any], params: PaginatedRequestParams | None
    ) -> ListResourceTemplatesResult:
        return ListResourceTemplatesResult(
            resource_templates=TEMPLATES, ttl_ms=0, cache_scope="private"
        )

    async def read(
        self, ctx: ServerRequestContext[Any, Any], params: ReadResourceRequestParams
    ) -> ReadResourceResult:
        uri = str(params.uri)
        try:
            principal = await self._caller(ctx)
            body = await self._body(principal, uri)
        except DomainError as exc:
            raise rpc_error(exc, uri=uri) from exc
        text = json.dumps(body, ensure_ascii=False, default=str)
        return ReadResourceResult(
            contents=[TextResourceContents(uri=uri, mime_type=JSON, text=text)],
            ttl_ms=0,
            cache_scope="private",
        )

    async def _body(self, principal: Principal, uri: str) -> dict[str, Any]:
        session_id = parse_session_uri(uri)
        if session_id is not None:
            found = await self._messages.context(principal, session_id, limit=SESSION_MESSAGES)
            # Read, so it exists and the reader may see it: the reader is active there.
            await self._presence.seen(principal, session_id)
            return {
                "session": SessionOut.of(found.session).model_dump(mode="json"),
                "messages": [MessageOut.of(m).model_dump(mode="json") for m in found.messages],
            }
        owner = parse_memory_uri(uri)
        if owner is not None:
            entries = await self._memory.list(principal, all_scopes=True, limit=1_000, owner=owner)
            return {
                "agent_id": owner,
                "entries": [MemoryOut.of(e).model_dump(mode="json") for e in entries],
            }
        raise ResourceNotFoundError(f"no resource {uri!r}", uri=uri)
