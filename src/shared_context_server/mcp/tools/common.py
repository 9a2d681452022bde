"""Argument types shared by the tool families: schema limits an LLM can read."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, get_type_hints

from mcp_types import ToolAnnotations
from pydantic import AfterValidator, AwareDatetime, Field

from shared_context_server.domain.limits import INT64_MAX, INT64_MIN, NUL


def _int64(value: int) -> int:
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError("must be a 64-bit integer (at most 2^63-1)")
    return value


def _no_nul(value: str) -> str:
    if NUL in value:
        raise ValueError("must not contain NUL characters")
    return value


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the years 1-9999 once converted to UTC") from None


# Marks an integer argument as stored in 64 bits: beyond them INVALID_INPUT, not a
# database error. Use as Annotated[int, Field(...), INT64].
INT64 = AfterValidator(_int64)
# A string argument that must not hold NUL (PostgreSQL cannot take it): INVALID_INPUT.
NO_NUL = AfterValidator(_no_nul)
# An ISO 8601 timestamp with a time zone, as UTC.
Timestamp = Annotated[
    AwareDatetime,
    AfterValidator(_utc),
    Field(description="ISO 8601 with a time zone, e.g. 2026-01-31T12:00:00Z."),
]

AuthToken = Annotated[
    str | None,
    Field(
        default=None,
        max_length=8192,
        description="JWT from authenticate_agent (or an API key); optional when the "
        "connection already carries an identity (Authorization header, stdio environment).",
    ),
]
AUTH_TOKEN = "auth_token"


def without_auth_token(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """``fn`` as a tool without its optional ``auth_token`` argument: not in its schema, so
    passing it is an unexpected argument (INVALID_INPUT) like any other, and ``fn`` gets
    None, so the caller is the connection's identity. A required ``auth_token`` (the
    token refresh_token swaps) is no identity argument and stays."""
    signature = inspect.signature(fn)
    parameter = signature.parameters.get(AUTH_TOKEN)
    if parameter is None or parameter.default is not None:
        return fn
    hints = get_type_hints(fn, include_extras=True)

    @functools.wraps(fn)
    async def tool(*args: Any, **kwargs: Any) -> Any:
        return await fn(*args, **kwargs)

    kept = [p for name, p in signature.parameters.items() if name != AUTH_TOKEN]
    tool.__signature__ = signature.replace(parameters=kept)  # type: ignore[attr-defined]
    tool.__annotations__ = {name: hint for name, hint in hints.items() if name != AUTH_TOKEN}
    return tool


SessionId = Annotated[str, Field(min_length=1, max_length=64, description="Session id."), NO_NUL]
Metadata = Annotated[
    dict[str, Any] | None, Field(default=None, description="Any JSON object (≤ 64 KiB).")
]

IdempotencyKey = Annotated[
    str | None,
    Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=r"^\S+$",
        description="Any unique string: a retry with the same key returns the first result "
        "instead of writing twice (kept 24 hours).",
    ),
]

READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)
IDEMPOTENT_WRITE = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
DESTRUCTIVE = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
)
