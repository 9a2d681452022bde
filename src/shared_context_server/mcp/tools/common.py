"""Argument types shared by the tool families: schema limits an LLM can read."""

from __future__ import annotations

from typing import Annotated, Any

from mcp_types import ToolAnnotations
from pydantic import Field

AuthToken = Annotated[
    str | None,
    Field(
        default=None,
        max_length=8192,
        description="JWT from authenticate_agent (or an API key); optional when the "
        "connection already carries an identity (Authorization header, stdio environment).",
    ),
]
SessionId = Annotated[str, Field(min_length=1, max_length=64, description="Session id.")]
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
