"""The audit trail's records, the digests of the rows they changed, and the keyed hash
chain that makes edits, deletions and rewrites detectable.

Each record's hash is an HMAC-SHA256, with a server secret kept apart from the database,
of its own fields, its id, the digest of the data row it changed and the previous record's
hash: changing, removing or inserting a record breaks the chain there, and nobody without
the key can rehash the rest. Records written before the chain was keyed (hash version 1,
plain SHA-256) are resealed under the key on the first start that finds them intact
(``LegacyResealer``). Verification (``domain/audit_verify.py``) then compares every stored
row with the digest its latest record holds.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from shared_context_server.domain.principal import Principal

# A data row by column name: a dict of the values written, or a row read back.
Row = Mapping[Any, Any]

GENESIS_HASH = "0" * 64
SYSTEM_AGENT = "system"
# hash_version of a record: 1, plain SHA-256 (before migration 0004); 2, HMAC-SHA256.
LEGACY_HASH_VERSION = 1
HASH_VERSION = 2


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """What happened and who did it; storage adds id, time and the chain."""

    event_type: str
    agent_id: str
    agent_type: str
    at: datetime
    session_id: str | None = None
    target: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # The data row this change left behind: its kind (a key of DIGEST_FIELDS), its id,
    # and ``row_digest`` of it; ``digest`` None with an entity means the row was deleted.
    entity: str | None = None
    entity_id: str | None = None
    digest: str | None = None

    def of_row(
        self, entity: str, entity_id: str, row: Row | None, *, target: str | None = None
    ) -> AuditEvent:
        """This event, naming the row it changed (None: the row was deleted); ``target``
        replaces the event's target if given."""
        digest = None if row is None else row_digest(entity, row)
        return replace(
            self,
            entity=entity,
            entity_id=entity_id,
            digest=digest,
            target=self.target if target is None else target,
        )


# The columns of each audited table that a digest covers: what a reader relies on.
# Bookkeeping that changes without an audited act (last activity, presence) is left out.
DIGEST_FIELDS: dict[str, tuple[str, ...]] = {
    "message": (
        "id",
        "session_id",
        "sender",
        "sender_type",
        "content",
        "metadata",
        "message_type",
        "visibility",
        "parent_message_id",
        "created_at",
    ),
    "session": ("id", "purpose", "created_by", "status", "metadata", "created_at"),
    "memory": ("agent_id", "scope", "key", "value", "metadata", "expires_at", "version"),
    "api_key": (
        "id",
        "name",
        "key_hash",
        "permissions",
        "revoked_at",
        "agent_id",
        "agent_pattern",
        "agent_types",
        "any_agent",
    ),
    "identity": ("agent_id", "key_name"),
    "delegation": (
        "jti",
        "delegator",
        "agent_id",
        "session_id",
        "permissions",
        "expires_at",
        "key_name",
    ),
    "revoked_token": ("jti", "expires_at"),
}


def memory_entity_id(agent_id: str, scope: str, key: str) -> str:
    """A memory entry's entity id: ``agent_id/scope/key`` (scope "" for global memory).
    Agent and session ids hold no ``/``, so the key may."""
    return f"{agent_id}/{scope}/{key}"


# Values JSON writes as they are: most columns, so they skip the checks below.
_PLAIN = frozenset({str, int, float, bool, dict, list, type(None)})


def _canonical(value: Any) -> Any:
    if type(value) in _PLAIN:
        return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, frozenset | set):
        return sorted(_canonical(v) for v in value)
    return value


def row_digest(entity: str, row: Row) -> str:
    """SHA-256 of the audited columns of a row, as written or as read back."""
    body = json.dumps(
        [entity, *(_canonical(row[name]) for name in DIGEST_FIELDS[entity])],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    event_type: str
    agent_id: str
    agent_type: str
    session_id: str | None
    target: str | None
    metadata: dict[str, Any]
    created_at: datetime
    prev_hash: str
    hash: str
    entity: str | None = None
    entity_id: str | None = None
    digest: str | None = None
    hash_version: int = HASH_VERSION

    def event(self) -> AuditEvent:
        """The event this record holds, as it was hashed."""
        return AuditEvent(
            self.event_type,
            self.agent_id,
            self.agent_type,
            self.created_at,
            self.session_id,
            self.target,
            self.metadata,
            self.entity,
            self.entity_id,
            self.digest,
        )


def audit(
    principal: Principal,
    event_type: str,
    at: datetime,
    *,
    session_id: str | None = None,
    target: str | int | None = None,
    **metadata: Any,
) -> AuditEvent:
    return AuditEvent(
        event_type=event_type,
        agent_id=principal.agent_id,
        agent_type=principal.agent_type,
        at=at,
        session_id=session_id,
        target=None if target is None else str(target),
        metadata=metadata,
    )


def system_audit(
    event_type: str,
    at: datetime,
    *,
    session_id: str | None = None,
    target: str | None = None,
    **metadata: Any,
) -> AuditEvent:
    """An event done by the server itself or an operator at the command line."""
    return AuditEvent(event_type, SYSTEM_AGENT, SYSTEM_AGENT, at, session_id, target, metadata)


def _body(fields: list[Any]) -> bytes:
    return json.dumps(
        fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode()


def record_hash(key: bytes, record_id: int, event: AuditEvent, prev_hash: str) -> str:
    """The keyed hash (version 2) of a record: HMAC-SHA256 with the audit key over the
    version, id, every field of the event (the changed row's entity, id and digest too)
    and the previous record's hash."""
    body = _body(
        [
            HASH_VERSION,
            record_id,
            event.event_type,
            event.agent_id,
            event.agent_type,
            event.session_id,
            event.target,
            event.metadata,
            _canonical(event.at),
            event.entity,
            event.entity_id,
            event.digest,
            prev_hash,
        ]
    )
    mac = _keyed(key).copy()
    mac.update(body)
    return mac.hexdigest()


@functools.lru_cache(maxsize=4)
def _keyed(key: bytes) -> hmac.HMAC:
    """An HMAC-SHA256 with the key already absorbed: each record copies it."""
    return hmac.new(key, digestmod=hashlib.sha256)


def seals(key: bytes, record: AuditRecord) -> bool:
    """Whether ``record`` is sealed with ``key`` (its own hash, not its link)."""
    if record.hash_version != HASH_VERSION:
        return False
    expected = record_hash(key, record.id, record.event(), record.prev_hash)
    return hmac.compare_digest(expected, record.hash)


def legacy_record_hash(record_id: int, event: AuditEvent, prev_hash: str) -> str:
    """The unkeyed hash (version 1) of records written before migration 0004: anyone
    with the database can recompute it, so it is only read, to reseal an old chain."""
    body = _body(
        [
            record_id,
            event.event_type,
            event.agent_id,
            event.agent_type,
            event.session_id,
            event.target,
            event.metadata,
            event.at.isoformat(),
            prev_hash,
        ]
    )
    return hashlib.sha256(body).hexdigest()


class LegacyResealer:
    """Reseals a version-1 chain under the key, record by record in id order, as long as
    it verifies with the old unkeyed hash from the first record on."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._old_hash = GENESIS_HASH
        self._new_hash = GENESIS_HASH
        self._next_id = 1

    def reseal(self, record: AuditRecord) -> AuditRecord | None:
        """``record`` sealed under the key and linked to the resealed one before it; None
        if it does not verify as the next record of an intact version-1 chain."""
        event = record.event()
        if (
            record.hash_version != LEGACY_HASH_VERSION
            or record.id != self._next_id
            or record.prev_hash != self._old_hash
            or legacy_record_hash(record.id, event, record.prev_hash) != record.hash
        ):
            return None
        sealed = record_hash(self._key, record.id, event, self._new_hash)
        resealed = replace(record, prev_hash=self._new_hash, hash=sealed, hash_version=HASH_VERSION)
        self._old_hash, self._new_hash, self._next_id = record.hash, sealed, record.id + 1
        return resealed


@dataclass(frozen=True, slots=True)
class Reseal:
    """What resealing an unkeyed chain did: records resealed under the key, and records
    appended for the rows that existed then (``audit.baselined``: no old record names a
    row, so without them every row would look written behind the server's back)."""

    resealed: int
    baselined: int


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters for reading the audit trail, newest first; ``before_id`` pages backwards."""

    session_id: str | None = None
    agent_id: str | None = None
    event_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class AgentActivity:
    """What one agent did in a time window, according to the audit trail."""

    agent_id: str
    agent_types: tuple[str, ...]
    event_count: int
    event_types: dict[str, int]
    sessions_touched: int
    sessions_created: int
    first_activity: datetime
    last_activity: datetime
