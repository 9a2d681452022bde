"""Agent memory: a private key-value store per agent, global or per session, with expiry."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import datetime, timedelta
from typing import Any

from shared_context_server.clock import Clock
from shared_context_server.domain.access import (
    memory_scopes,
    require,
    require_memory_owner,
    require_session,
)
from shared_context_server.domain.audit import AuditEvent, audit, memory_entity_id, system_audit
from shared_context_server.domain.idempotency import Remembered, fingerprint, replay
from shared_context_server.domain.limits import (
    Limits,
    check_int,
    check_key,
    check_metadata,
    check_page,
    check_text,
    json_bytes,
)
from shared_context_server.domain.memory import GLOBAL_SCOPE, require_version
from shared_context_server.domain.models import MemoryEntry, Permission
from shared_context_server.domain.principal import Principal
from shared_context_server.domain.quotas import MemoryCharge, MemoryQuota, Quota, Quotas, released
from shared_context_server.errors import (
    InvalidInputError,
    KeyExistsError,
    LimitExceededError,
    MemoryNotFoundError,
    SessionNotFoundError,
)
from shared_context_server.storage.repositories.memory import MemoryQuery, MemoryWrite
from shared_context_server.storage.store import Store
from shared_context_server.storage.unit_of_work import Transaction

GLOB_CHARACTERS = "*?"
# The operation idempotency keys of memory writes are remembered under.
_SET = "set_memory"


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
        event = audit(principal, "memory.set", now, session_id=session_id, target=key)
        quota = self._quota(principal.agent_id)
        written = await self._store.write(
            lambda tx: set_entry(tx, write, now, audit=event, quota=quota)
        )
        return written.value

    async def get(
        self, principal: Principal, key: str, *, session_id: str | None = None
    ) -> MemoryEntry:
        require(principal, Permission.READ)
        check_key(self._limits, key)
        scope = _scope(session_id, principal)
        now = self._clock.now()
        entry = await self._store.read(
            lambda tx: tx.memory.get(principal.agent_id, scope, key, now)
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
        owner: str | None = None,
    ) -> list[MemoryEntry]:
        """Entries whose key starts with ``pattern``, or matches it as a glob (``*``, ``?``).
        ``owner``: the agent whose memory the caller asked for (it must be the caller)."""
        if owner is not None:
            require_memory_owner(principal, owner)
        require(principal, Permission.READ)
        check_page(self._limits, limit, cap=self._limits.memory_list)
        pattern = check_text(pattern or "", "pattern")
        if len(pattern) > self._limits.key_chars:
            raise LimitExceededError("pattern is longer than a key may be", field="pattern")
        if "[" in pattern:
            raise InvalidInputError("patterns support the wildcards * and ? only", field="pattern")
        is_glob = any(c in pattern for c in GLOB_CHARACTERS)
        query = MemoryQuery(
            agent_id=principal.agent_id,
            scopes=memory_scopes(principal) if all_scopes else (_scope(session_id, principal),),
            prefix="" if is_glob else pattern,
            glob=pattern if is_glob else None,
            limit=limit,
        )
        now = self._clock.now()
        return await self._store.read(lambda tx: tx.memory.list(query, now))

    async def delete(
        self, principal: Principal, key: str, *, session_id: str | None = None
    ) -> None:
        require(principal, Permission.WRITE)
        check_key(self._limits, key)
        now = self._clock.now()
        agent_id, scope = principal.agent_id, _scope(session_id, principal)
        event = audit(principal, "memory.deleted", now, session_id=session_id, target=key)
        deleted = await self._store.write(
            lambda tx: delete_entry(tx, agent_id, scope, key, audit=event)
        )
        if not deleted.value:
            raise MemoryNotFoundError(f"no memory under {key!r}", key=key, session_id=session_id)


# The units of work (run in store.write), for the service above and the maintenance sweep.


def set_entry(
    tx: Transaction,
    w: MemoryWrite,
    now: datetime,
    *,
    audit: AuditEvent | None = None,
    quota: MemoryQuota | None = None,
) -> MemoryEntry:
    """One write: a replay of an earlier call with its idempotency key, or the entry
    written, counted into the agent's totals (within ``quota``) and ``audit``ed."""
    request = _request(w)
    if w.idempotency_key is not None:
        found = tx.idempotency.find(w.agent_id, _SET, w.idempotency_key, now)
        replayed = replay(found, request, w.idempotency_key)
        if replayed is not None:
            return _entry_from_json(replayed)
    if w.scope and tx.sessions.get(w.scope) is None:
        raise SessionNotFoundError(f"no session {w.scope!r}", session_id=w.scope)
    # An expired entry is gone already, whatever the sweep has not yet removed.
    expired = tx.memory.delete_if_expired(w.agent_id, w.scope, w.key, now)
    stored = tx.memory.stored(w.agent_id, w.scope, w.key)
    require_version(w.key, stored.version if stored else 0, w.expected_version)
    charge = MemoryCharge(w.value_bytes, stored.value_bytes if stored else None, expired)
    totals = tx.memory.add_to_totals(w.agent_id, charge.change())
    if quota is not None:
        try:
            quota.check(charge.before(totals), w.value_bytes)
        except LimitExceededError:
            # Totals that say over may hold expired entries the sweep has not removed:
            # count exactly. A refusal rolls the whole transaction back, totals included.
            quota.check(charge.over(tx.memory.count_live(w.agent_id, now)), w.value_bytes)
    written = tx.memory.upsert(w, now) if w.overwrite else tx.memory.insert(w, now)
    if written is None:
        raise KeyExistsError(f"memory key {w.key!r} exists", key=w.key)
    entry, row = written
    if w.idempotency_key is not None:
        remembered = Remembered(fingerprint(request), _entry_to_json(entry))
        tx.idempotency.remember(w.agent_id, _SET, w.idempotency_key, remembered, now)
    if audit is not None:
        # The event names the entry it left and, for verifying a row the expiry sweep
        # removed without a record, the expiry it was given.
        expires_at = None if entry.expires_at is None else entry.expires_at.isoformat()
        sealed = replace(audit, metadata={**audit.metadata, "expires_at": expires_at})
        tx.audited(sealed.of_row("memory", memory_entity_id(w.agent_id, w.scope, w.key), row))
    return entry


def delete_entry(
    tx: Transaction, agent_id: str, scope: str, key: str, *, audit: AuditEvent | None = None
) -> bool:
    """Delete the entry (off the agent's totals); False if there was none."""
    size = tx.memory.delete(agent_id, scope, key)
    if size is None:
        return False
    tx.memory.add_to_totals(agent_id, released([(agent_id, size)])[agent_id])
    if audit is not None:
        tx.audited(audit.of_row("memory", memory_entity_id(agent_id, scope, key), None))
    return True


def purge_expired(tx: Transaction, now: datetime) -> int:
    """The maintenance sweep's: remove memory expired by ``now`` (off its agents' totals),
    and the revocations and idempotency keys that have expired; how many entries went."""
    removed = tx.memory.delete_expired(now)
    for agent_id, change in released(removed).items():
        tx.memory.add_to_totals(agent_id, change)
    tx.identity.delete_expired_revocations(now)
    tx.idempotency.delete_expired(now)
    if removed:
        tx.audited(system_audit("memory.purged", now, count=len(removed)))
    return len(removed)


def _request(w: MemoryWrite) -> dict[str, Any]:
    """What a retry must repeat to be a replay of the first write."""
    return {
        "scope": w.scope,
        "key": w.key,
        "value": w.value,
        "metadata": w.metadata,
        "expires_at": w.expires_at,
        "overwrite": w.overwrite,
        "expected_version": w.expected_version,
    }


def _entry_to_json(entry: MemoryEntry) -> dict[str, Any]:
    return {
        **{f.name: getattr(entry, f.name) for f in fields(entry)},
        "created_at": entry.created_at.isoformat(),
        "updated_at": entry.updated_at.isoformat(),
        "expires_at": entry.expires_at.isoformat() if entry.expires_at else None,
    }


def _entry_from_json(data: dict[str, Any]) -> MemoryEntry:
    expires_at = data["expires_at"]
    return MemoryEntry(
        **{
            **data,
            "created_at": datetime.fromisoformat(data["created_at"]),
            "updated_at": datetime.fromisoformat(data["updated_at"]),
            "expires_at": datetime.fromisoformat(expires_at) if expires_at else None,
        }
    )
