"""The one table that turns domain errors into MCP shapes."""

from __future__ import annotations

import functools
import logging
import traceback
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ParamSpec, TypeVar

from fastmcp.exceptions import DisabledError, NotFoundError, ToolError
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools.base import Tool, ToolResult
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS
from pydantic import ValidationError
from pydantic_core import to_json

from shared_context_server.errors import (
    DomainError,
    InternalError,
    InvalidInputError,
    LimitExceededError,
)
from shared_context_server.mcp.schemas import with_error_result

logger = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

# JSON-RPC codes for errors outside tool results (resources, subscriptions).
AUTH_ERROR = -32001
FORBIDDEN = -32003
TOO_MANY = -32029
_RPC_CODES = {
    "AUTH_REQUIRED": AUTH_ERROR,
    "AUTH_FAILED": AUTH_ERROR,
    "TOKEN_EXPIRED": AUTH_ERROR,
    "TOKEN_REVOKED": AUTH_ERROR,
    "TOKEN_INVALID": AUTH_ERROR,
    "TOKEN_WRONG_AUDIENCE": AUTH_ERROR,
    "TOKEN_UNSUPPORTED_ALGORITHM": AUTH_ERROR,
    "PERMISSION_DENIED": FORBIDDEN,
    "RATE_LIMITED": TOO_MANY,
    "INTERNAL": INTERNAL_ERROR,
}
_LIMIT_ERROR_TYPES = {"string_too_long", "too_long", "less_than_equal", "less_than"}


def from_validation(error: ValidationError) -> DomainError:
    problems = [
        {"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"], "type": e["type"]}
        for e in error.errors(include_url=False, include_input=False)
    ]
    fields = ", ".join(p["field"] for p in problems)
    if all(p["type"] in _LIMIT_ERROR_TYPES for p in problems):
        return LimitExceededError(f"over a limit: {fields}", problems=problems)
    return InvalidInputError(f"invalid arguments: {fields}", problems=problems)


def as_domain_error(exc: BaseException) -> DomainError:
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    if isinstance(cause, DomainError):
        return cause
    if isinstance(cause, ValidationError):
        return from_validation(cause)
    logger.error("unexpected error: %s", describe(cause))
    return InternalError("the server failed to complete the request")


def describe(exc: BaseException) -> str:
    """An exception's types and the frames it came through, but not its message: a
    message may quote what was stored (a database error its statement's values)."""
    chain: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(f"{type(current).__module__}.{type(current).__qualname__}")
        current = current.__cause__ or current.__context__
    frames = traceback.extract_tb(exc.__traceback__)[-12:]
    where = "; ".join(f"{f.filename}:{f.lineno} in {f.name}" for f in frames)
    return f"{' <- '.join(chain)} at {where or 'unknown'}"


class _RefusedArguments(logging.Filter):
    """FastMCP warns of every call whose arguments fail validation; the caller is answered
    INVALID_INPUT or LIMIT_EXCEEDED naming the fields, so the log need not hear of it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Invalid arguments for tool")


REFUSED_ARGUMENTS = _RefusedArguments()


def quiet_refused_arguments() -> None:
    # addFilter ignores a filter it already has: calling this per server is harmless.
    logging.getLogger("fastmcp.server.server").addFilter(REFUSED_ARGUMENTS)


class ExpectedToolError(ToolError):
    """A domain error on its way through FastMCP, which logs an unknown exception from a
    tool with its traceback at ERROR but one of its own at the level it carries."""

    def __init__(self, error: DomainError) -> None:
        super().__init__(f"{error.code}: {error.message}", log_level=logging.DEBUG)


def quiet(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """``fn`` (a tool), raising every failure as an :class:`ExpectedToolError`: a refused
    call is answered, not logged as a fault, and an unexpected one is logged here by
    :func:`describe`, never with its message. ``ToolErrors`` shapes it from the cause."""

    @functools.wraps(fn)
    async def tool(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except DomainError as exc:
            raise ExpectedToolError(exc) from exc
        except Exception as exc:
            error = as_domain_error(exc)
            raise ExpectedToolError(error) from error

    return tool


def quiet_handler(
    fn: Callable[[Any, Any], Awaitable[R]],
) -> Callable[[Any, Any], Awaitable[R]]:
    """A low-level request handler (resources, subscriptions) whose failures are JSON-RPC
    errors: the SDK logs a traceback for anything else it receives."""

    @functools.wraps(fn)
    async def handler(ctx: Any, params: Any) -> R:
        try:
            return await fn(ctx, params)
        except MCPError:
            raise
        except Exception as exc:
            raise rpc_error(as_domain_error(exc)) from None

    return handler


def error_payload(error: DomainError) -> dict[str, Any]:
    return {"success": False, "code": error.code, "error": error.message, "details": error.details}


def error_result(error: DomainError) -> ToolResult:
    """An error result valid against every tool's output schema (``with_error_result``). Its
    text is the same object as JSON, as for a success: clients that show a model only the
    text (most hosts) still hand it the code and the details."""
    payload = error_payload(error)
    return ToolResult(content=to_json(payload).decode(), structured_content=payload, is_error=True)


def rpc_error(error: DomainError, **data: Any) -> MCPError:
    code = _RPC_CODES.get(error.code, INVALID_PARAMS)
    return MCPError(code, error.message, {**error_payload(error), **data})


class ToolErrors(Middleware):
    """Every failed tool call becomes a structured error result with a stable code, and every
    tool's output schema says so; an unknown tool is a protocol error (JSON-RPC -32602)."""

    def __init__(self) -> None:
        # Listed tool -> the same tool with the error branch; tools are fixed after startup.
        self._listed: dict[str, tuple[Tool, Tool]] = {}

    async def on_list_tools(
        self, context: MiddlewareContext[Any], call_next: CallNext[Any, Sequence[Tool]]
    ) -> Sequence[Tool]:
        return [self._with_error_result(tool) for tool in await call_next(context)]

    def _with_error_result(self, tool: Tool) -> Tool:
        cached = self._listed.get(tool.key)
        if cached is not None and cached[0] is tool:
            return cached[1]
        listed = tool
        if tool.output_schema is not None:
            schema = with_error_result(tool.output_schema)
            listed = tool.model_copy(update={"output_schema": schema})
        self._listed[tool.key] = (tool, listed)
        return listed

    async def on_call_tool(
        self, context: MiddlewareContext[Any], call_next: CallNext[Any, ToolResult]
    ) -> ToolResult:
        try:
            return await call_next(context)
        except (NotFoundError, DisabledError):
            # MCP: an unknown tool is a protocol error, not a tool's result. A caller's
            # mistake all the same: INVALID_INPUT, no error log.
            name = getattr(context.message, "name", None)
            raise rpc_error(InvalidInputError(f"unknown tool {name!r}", tool=name)) from None
        except Exception as exc:  # the adapter's error boundary: nothing escapes unshaped
            return error_result(as_domain_error(exc))
