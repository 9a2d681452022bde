"""The records the server keeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Visibility(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"
    AGENT_ONLY = "agent_only"
    ADMIN_ONLY = "admin_only"


class SessionStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    ARCHIVED = "archived"


class Permission(StrEnum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"
    DEBUG = "debug"


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    purpose: str
    created_by: str
    status: SessionStatus
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    last_activity_at: datetime


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    session_id: str
    sender: str
    sender_type: str
    content: str
    metadata: dict[str, Any]
    message_type: str
    visibility: Visibility
    parent_message_id: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class MemoryEntry:
    agent_id: str
    session_id: str | None
    key: str
    value: Any
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    # 1 when first written, +1 on every overwrite: set_memory(expected_version=...) checks it.
    version: int = 1


@dataclass(frozen=True, slots=True)
class KeyBinding:
    """The identities an API key may act as: one agent id, the ids matching a pattern
    (``worker-*``, shell-style), or any agent (an operator key); and the agent types it may
    declare (``None``: any, operator keys only)."""

    agent_id: str | None = None
    agent_pattern: str | None = None
    agent_types: frozenset[str] | None = frozenset({"generic"})
    any_agent: bool = False

    @property
    def default_type(self) -> str:
        return min(self.agent_types) if self.agent_types else "generic"

    def describe(self) -> str:
        who = "any agent" if self.any_agent else self.agent_id or f"ids like {self.agent_pattern}"
        types = "any type" if self.agent_types is None else ",".join(sorted(self.agent_types))
        return f"{who} ({types})"


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    permissions: frozenset[Permission]
    created_at: datetime
    binding: KeyBinding
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NewMessage:
    session_id: str
    sender: str
    sender_type: str
    content: str
    visibility: Visibility
    message_type: str = "message"
    metadata: dict[str, Any] = field(default_factory=dict)
    parent_message_id: int | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class Delegation:
    """A token an agent minted for a sub-agent: one session, a subset of its permissions."""

    jti: str
    delegator: str
    agent_id: str
    session_id: str
    permissions: frozenset[Permission]
    created_at: datetime
    expires_at: datetime
    # The API key the delegator's identity came from (revoking it ends the delegation).
    key_name: str | None = None
