"""The one table that turns domain errors into MCP shapes."""

from __future__ import annotations

import logging
from typing import Any

from fastmcp.exceptions import DisabledError, NotFoundError
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools.base import ToolResult
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS
from pydantic import ValidationError

from shared_context_server.errors import (
    DomainError,
    InternalError,
    InvalidInputError,
    LimitExceededError,
)

logger = logging.getLogger(__name__)

# JSON-RPC codes for errors outside tool results (resources, subscriptions).
AUTH_ERROR = -32001
FORBIDDEN = -32003
_RPC_CODES = {
    "AUTH_REQUIRED": AUTH_ERROR,
    "AUTH_FAILED": AUTH_ERROR,
    "TOKEN_EXPIRED": AUTH_ERROR,
    "TOKEN_REVOKED": AUTH_ERROR,
    "TOKEN_INVALID": AUTH_ERROR,
    "TOKEN_WRONG_AUDIENCE": AUTH_ERROR,
    "TOKEN_UNSUPPORTED_ALGORITHM": AUTH_ERROR,
    "PERMISSION_DENIED": FORBIDDEN,
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
    logger.error("unexpected error", exc_info=exc)
    return InternalError("the server failed to complete the request")


def error_payload(error: DomainError) -> dict[str, Any]:
    return {"success": False, "code": error.code, "error": error.message, "details": error.details}


def error_result(error: DomainError) -> ToolResult:
    payload = error_payload(error)
    return ToolResult(
        content=f"{error.code}: {error.message}", structured_content=payload, is_error=True
    )


def rpc_error(error: DomainError, **data: Any) -> MCPError:
    code = _RPC_CODES.get(error.code, INVALID_PARAMS)
    return MCPError(code, error.message, {**error_payload(error), **data})


class ToolErrors(Middleware):
    """Every failed tool call becomes a structured error result with a stable code."""

    async def on_call_tool(
        self, context: MiddlewareContext[Any], call_next: CallNext[Any, ToolResult]
    ) -> ToolResult:
        try:
            return await call_next(context)
        except (NotFoundError, DisabledError):
            # A caller's mistake, not a server fault: no INTERNAL, no error log.
            name = getattr(context.message, "name", None)
            return error_result(InvalidInputError(f"unknown tool {name!r}", tool=name))
        except Exception as exc:  # the adapter's error boundary: nothing escapes unshaped
            return error_result(as_domain_error(exc))
