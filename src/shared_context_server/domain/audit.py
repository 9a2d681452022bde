"""The audit trail's records and the hash chain that makes edits and deletions detectable.

Each record's hash covers its own fields, its id and the previous record's hash, so
changing or removing any record breaks the chain at the next one (and ids must be
consecutive, so removing the last records of a run shows as a gap when more follow).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
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


def first_break(records: Iterable[AuditRecord]) -> ChainBreak | None:
    """The first record (in id order) whose link or content does not verify, if any."""
    prev_hash = GENESIS_HASH
    expected_id: int | None = None
    for record in records:
        if expected_id is not None and record.id != expected_id:
            return ChainBreak(expected_id, f"records {expected_id}..{record.id - 1} are missing")
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
        prev_hash = record.hash
        expected_id = record.id + 1
    return None
