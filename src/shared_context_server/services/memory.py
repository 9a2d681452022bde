"""Agent memory: a private key-value store per agent, global or per session, with expiry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from shared_context_server.clock import Clock
from shared_context_server.domain.access import require, require_session
from shared_context_server.domain.audit import audit
from shared_context_server.domain.limits import (
    Limits,
    check_int,
    check_key,
    check_metadata,
    check_page,
    check_text,
    json_bytes,
)
from shared_context_server.domain.models import MemoryEntry, Permission
from shared_context_server.domain.principal import Principal
from shared_context_server.domain.quotas import MemoryQuota, Quota, Quotas
from shared_context_server.errors import InvalidInputError, LimitExceededError, MemoryNotFoundError
from shared_context_server.storage.store import MemoryWrite, Store
from shared_context_server.storage.tables import GLOBAL_SCOPE

GLOB_CHARACTERS = "*?"


def _scope(session_id: str | None, principal: Principal) -> str:
    if session_id is not None:
        require_session(principal, session_id)
    return session_id or GLOBAL_SCOPE


class MemoryService:
    """The owner is always the caller: there is no way to name another agent's memory."""

    def __init__(
        self, store: Store, clock: Clock, limits: Limits, quotas: Quotas | None = None
    ) -> None:
        self._store = store
        self._clock = clock
        self._limits = limits
        self._quotas = quotas or Quotas()

    def _quota(self, agent_id: str) -> MemoryQuota:
        quotas = self._quotas
        return MemoryQuota(
            keys=Quota("memory_keys_per_agent", agent_id, quotas.memory_keys_per_agent),
            bytes=Quota("memory_bytes_per_agent", agent_id, quotas.memory_bytes_per_agent),
        )

    async def set(
        self,
        principal: Principal,
        key: str,
        value: Any,
        *,
        session_id: str | None = None,
        expires_in: float | None = None,
        metadata: dict[str, Any] | None = None,
        overwrite: bool = True,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> MemoryEntry:
        """Write a value. ``expected_version``: only if the stored version is that one (0:
        only if there is none), else CONFLICT. ``idempotency_key``: a retry returns the
        first result."""
        require(principal, Permission.WRITE)
        check_key(self._limits, key)
        if idempotency_key is not None:
            check_key(self._limits, idempotency_key, "idempotency_key")
        if expected_version is not None and expected_version < 0:
            raise InvalidInputError(
                "expected_version must not be negative", field="expected_version"
            )
        if expected_version is not None:
            check_int(expected_version, "expected_version")
        value_bytes = json_bytes(
            value,
            field="value",
            max_bytes=self._limits.memory_value_bytes,
            max_depth=self._limits.metadata_depth,
        )
        now = self._clock.now()
        expires_at = None
        if expires_in is not None:
            if not expires_in > 0:  # NaN too
                raise InvalidInputError("expires_in must be positive", field="expires_in")
            if expires_in > self._limits.ttl_seconds:
                raise LimitExceededError(
                    f"expires_in may be at most {self._limits.ttl_seconds} seconds",
                    field="expires_in",
                    limit=self._limits.ttl_seconds,
                )
            expires_at = now + timedelta(seconds=expires_in)
        write = MemoryWrite(
            agent_id=principal.agent_id,
            scope=_scope(session_id, principal),
            key=key,
            value=value,
            metadata=check_metadata(self._limits, metadata),
            expires_at=expires_at,
            overwrite=overwrite,
            expected_version=expected_version,
            idempotency_key=idempotency_key,
            value_bytes=value_bytes,
        )
        return await self._store.set_memory(
            write,
            now,
            audit=audit(
                principal,
                "memory.set",
                now,
                session_id=session_id,
                target=key,
                expires_at=expires_at.isoformat() if expires_at else None,
            ),
            quota=self._quota(principal.agent_id),
        )

    async def get(
        self, principal: Principal, key: str, *, session_id: str | None = None
    ) -> MemoryEntry:
        require(principal, Permission.READ)
        check_key(self._limits, key)
        entry = await self._store.get_memory(
            principal.agent_id, _scope(session_id, principal), key, self._clock.now()
        )
        if entry is None:
            raise MemoryNotFoundError(f"no memory under {key!r}", key=key, session_id=session_id)
        return entry

    async def list(
        self,
        principal: Principal,
        *,
        session_id: str | None = None,
        all_scopes: bool = False,
        pattern: str | None = None,
        limit: int = 100,
    ) -> list[MemoryEntry]:
        """Entries whose key starts with ``pattern``, or matches it as a glob (``*``, ``?``)."""
        require(principal, Permission.READ)
        check_page(self._limits, limit, cap=self._limits.memory_list)
        pattern = check_text(pattern or "", "pattern")
        if len(pattern) > self._limits.key_chars:
            raise LimitExceededError("pattern is longer than a key may be", field="pattern")
        if "[" in pattern:
            raise InvalidInputError("patterns support the wildcards * and ? only", field="pattern")
        is_glob = any(c in pattern for c in GLOB_CHARACTERS)
        entries = await self._store.list_memory(
            principal.agent_id,
            None if all_scopes else _scope(session_id, principal),
            "" if is_glob else pattern,
            self._clock.now(),
            limit,
            glob=pattern if is_glob else None,
        )
        # A token limited to one session sees its global memory and that session's only.
        return [e for e in entries if e.session_id is None or principal.may_access(e.session_id)]

    async def delete(
        self, principal: Principal, key: str, *, session_id: str | None = None
    ) -> None:
        require(principal, Permission.WRITE)
        check_key(self._limits, key)
        now = self._clock.now()
        deleted = await self._store.delete_memory(
            principal.agent_id,
            _scope(session_id, principal),
            key,
            now,
            audit=audit(principal, "memory.deleted", now, session_id=session_id, target=key),
        )
        if not deleted:
            raise MemoryNotFoundError(f"no memory under {key!r}", key=key, session_id=session_id)
