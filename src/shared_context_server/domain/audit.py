"""The audit trail's records and the hash chain that makes edits and deletions detectable.

Each record's hash covers its own fields, its id and the previous record's hash, so
changing or removing any record breaks the chain at the next one (and ids must be
consecutive, so removing the last records of a run shows as a gap when more follow).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from shared_context_server.domain.principal import Principal

GENESIS_HASH = "0" * 64
SYSTEM_AGENT = "system"


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

    def of_row(self, entity: str, entity_id: str, row: Mapping[str, Any] | None) -> AuditEvent:
        """This event, naming the row it changed (None: the row was deleted)."""
        digest = None if row is None else row_digest(entity, row)
        return replace(self, entity=entity, entity_id=entity_id, digest=digest)


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
}


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, frozenset | set):
        return sorted(_canonical(v) for v in value)
    return value


def row_digest(entity: str, row: Mapping[str, Any]) -> str:
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


def record_hash(record_id: int, event: AuditEvent, prev_hash: str) -> str:
    body = json.dumps(
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
        ],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainBreak:
    record_id: int
    reason: str


class ChainVerifier:
    """Checks records one at a time, in id order, so a long chain can be read in batches."""

    def __init__(self) -> None:
        self.checked = 0
        self.last: AuditRecord | None = None

    def check(self, record: AuditRecord) -> ChainBreak | None:
        """The break ``record`` reveals, if any; a verified record is counted and kept."""
        prev_hash = self.last.hash if self.last else GENESIS_HASH
        if self.last is not None and record.id != self.last.id + 1:
            expected = self.last.id + 1
            return ChainBreak(expected, f"records {expected}..{record.id - 1} are missing")
        if record.prev_hash != prev_hash:
            return ChainBreak(record.id, "does not link to the record before it")
        event = AuditEvent(
            record.event_type,
            record.agent_id,
            record.agent_type,
            record.created_at,
            record.session_id,
            record.target,
            record.metadata,
        )
        if record_hash(record.id, event, prev_hash) != record.hash:
            return ChainBreak(record.id, "its content was changed")
        self.checked += 1
        self.last = record
        return None


def first_break(records: Iterable[AuditRecord]) -> ChainBreak | None:
    """The first record (in id order) whose link or content does not verify, if any."""
    verifier = ChainVerifier()
    for record in records:
        if (broken := verifier.check(record)) is not None:
            return broken
    return None


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The outcome of verifying the whole chain. ``checked`` counts the records that
    verified before the break (all of them when intact); the last verified record's id
    and hash let an operator notice later truncation of the tail, which no chain can."""

    checked: int
    broken: ChainBreak | None
    last_id: int | None
    last_hash: str | None

    @property
    def intact(self) -> bool:
        return self.broken is None


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
