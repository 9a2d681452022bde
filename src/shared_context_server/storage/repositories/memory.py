"""Agent memory: entries under (agent, scope, key), and each agent's totals."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from shared_context_server.domain.models import MemoryEntry
from shared_context_server.domain.quotas import MemoryTotals


@dataclass(frozen=True, slots=True)
class MemoryWrite:
    agent_id: str
    scope: str
    key: str
    value: Any
    metadata: dict[str, Any] = field(default_factory=dict)
    expires_at: datetime | None = None
    overwrite: bool = True
    # Write only if the stored version is this one (0: only if there is none).
    expected_version: int | None = None
    idempotency_key: str | None = None
    # Bytes of the value's JSON, kept with the entry for the per-agent memory quota.
    value_bytes: int = 0


@dataclass(frozen=True, slots=True)
class MemoryQuery:
    """An agent's unexpired entries in ``scopes`` (None: every scope) whose key starts
    with ``prefix`` and, if given, matches ``glob`` (``*`` any run of characters, ``?``
    one); by scope (global first), then key."""

    agent_id: str
    scopes: tuple[str, ...] | None = None
    prefix: str = ""
    glob: str | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """What a write over an entry needs of it: its version and its value's bytes."""

    version: int
    value_bytes: int


class MemoryRepository(Protocol):
    def get(self, agent_id: str, scope: str, key: str, now: datetime) -> MemoryEntry | None:
        """The entry, unless it has expired by ``now``."""
        ...

    def stored(self, agent_id: str, scope: str, key: str) -> StoredEntry | None:
        """The stored entry's version and size, expired or not."""
        ...

    def delete_if_expired(self, agent_id: str, scope: str, key: str, now: datetime) -> int | None:
        """Delete the entry if it has expired by ``now``: its bytes (None: none deleted)."""
        ...

    def upsert(self, write: MemoryWrite, now: datetime) -> tuple[MemoryEntry, dict[str, Any]]:
        """Insert the entry, or overwrite the stored one (its version + 1, its creation time
        kept); the entry and the row written (for its audit digest)."""
        ...

    def insert(
        self, write: MemoryWrite, now: datetime
    ) -> tuple[MemoryEntry, dict[str, Any]] | None:
        """Insert the entry unless its key is taken (None)."""
        ...

    def delete(self, agent_id: str, scope: str, key: str) -> int | None:
        """Delete the entry: its bytes (None: there was none)."""
        ...

    def delete_expired(self, now: datetime) -> list[tuple[str, int]]:
        """Delete every entry expired by ``now``: their (agent_id, bytes)."""
        ...

    def list(self, query: MemoryQuery, now: datetime) -> list[MemoryEntry]: ...

    # The agent's totals (``agent_usage``).

    def add_to_totals(self, agent_id: str, change: MemoryTotals) -> MemoryTotals:
        """Add ``change`` (either part may be negative) to the agent's totals and return
        them after it. The row stays locked to the end of the transaction, so one agent's
        memory writes take turns and its quotas hold under concurrent writes."""
        ...

    def count_live(self, agent_id: str, now: datetime) -> MemoryTotals:
        """The agent's entries unexpired at ``now`` and their bytes, counted exactly."""
        ...
