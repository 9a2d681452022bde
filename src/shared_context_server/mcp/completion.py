"""``completion/complete``: values a client can offer while a user types an argument.

Session ids (the ``session://{session_id}`` template, and every prompt argument named
``session_id``) are those of the sessions the caller may read, most recently active first,
from ``SessionService.list`` as ``list_sessions`` reads them. The memory template's
``agent_id`` completes to the caller's own id, the only memory it may read. The other
arguments of a prompt are free text, with nothing to offer. Like every read, completion
needs an identity. An unknown prompt, template or argument is ``INVALID_INPUT`` (-32602),
as the specification asks of an invalid prompt name.
"""

from __future__ import annotations

from typing import Any

from mcp.server.context import ServerRequestContext
from mcp_types import (
    CompleteRequestParams,
    CompleteResult,
    Completion,
    CompletionArgument,
    PromptReference,
    ResourceTemplateReference,
)

from shared_context_server.domain.principal import Principal
from shared_context_server.errors import DomainError, InvalidInputError
from shared_context_server.mcp.callers import RequestCaller
from shared_context_server.mcp.errors import rpc_error
from shared_context_server.mcp.prompts import Prompts
from shared_context_server.mcp.uris import (
    MEMORY_TEMPLATE,
    SESSION_TEMPLATE,
    parse_session_uri,
    session_uri,
)
from shared_context_server.services.sessions import SessionService

# The most values one response may carry (the specification's cap).
MAX_VALUES = 100
SESSION_ID = "session_id"
AGENT_ID = "agent_id"
NOTHING = Completion(values=[], total=0, has_more=False)


def _could_start_session_id(prefix: str) -> bool:
    """Only text a session id can start with is looked up (the URI's rule for ids)."""
    return prefix == "" or parse_session_uri(session_uri(prefix)) is not None


def _unknown_argument(argument: CompletionArgument, where: str) -> InvalidInputError:
    return InvalidInputError(
        f"{where} has no argument {argument.name!r}", field="argument.name", argument=argument.name
    )


class Completions:
    def __init__(self, caller: RequestCaller, sessions: SessionService, prompts: Prompts) -> None:
        self._caller = caller
        self._sessions = sessions
        self._prompts = prompts

    async def complete(
        self, ctx: ServerRequestContext[Any, Any], params: CompleteRequestParams
    ) -> CompleteResult:
        try:
            principal = await self._caller(ctx)
            completion = await self._complete(principal, params.ref, params.argument)
        except DomainError as exc:
            raise rpc_error(exc) from exc
        return CompleteResult(completion=completion)

    async def _complete(
        self,
        principal: Principal,
        ref: ResourceTemplateReference | PromptReference,
        argument: CompletionArgument,
    ) -> Completion:
        if isinstance(ref, PromptReference):
            spec = await self._prompts.find(ref.name)
            if argument.name not in spec.arguments.model_fields:
                raise _unknown_argument(argument, f"prompt {ref.name!r}")
            if argument.name == SESSION_ID:
                return await self._session_ids(principal, argument.value)
            return NOTHING
        if ref.uri == SESSION_TEMPLATE:
            if argument.name != SESSION_ID:
                raise _unknown_argument(argument, SESSION_TEMPLATE)
            return await self._session_ids(principal, argument.value)
        if ref.uri == MEMORY_TEMPLATE:
            if argument.name != AGENT_ID:
                raise _unknown_argument(argument, MEMORY_TEMPLATE)
            own = principal.agent_id
            return (
                Completion(values=[own], total=1, has_more=False)
                if own.startswith(argument.value)
                else NOTHING
            )
        raise InvalidInputError(f"no resource template {ref.uri!r}", uri=ref.uri)

    async def _session_ids(self, principal: Principal, prefix: str) -> Completion:
        if not _could_start_session_id(prefix):
            return NOTHING
        found = await self._sessions.list(principal, id_prefix=prefix or None, limit=MAX_VALUES + 1)
        ids = [session.id for session in found]
        if len(ids) > MAX_VALUES:
            # How many more would take a count of every match; the client narrows instead.
            return Completion(values=ids[:MAX_VALUES], has_more=True)
        return Completion(values=ids, total=len(ids), has_more=False)
