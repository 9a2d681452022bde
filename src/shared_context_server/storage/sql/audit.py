"""The audit trail."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from shared_context_server.domain.audit import GENESIS_HASH, HASH_VERSION, AuditEvent, record_hash
from shared_context_server.storage.sql.dialect import AUDIT_LOCK_ID, Dialect
from shared_context_server.storage.sql.repository import Repository
from shared_context_server.storage.tables import audit_log

_LAST = sa.select(audit_log.c.id, audit_log.c.hash).order_by(audit_log.c.id.desc()).limit(1)
_INSERT = sa.insert(audit_log)


class SqlAudit(Repository):
    __slots__ = ("key",)

    def __init__(self, conn: sa.Connection, dialect: Dialect, key: bytes | None) -> None:
        super().__init__(conn, dialect)
        # The chain's HMAC key (kept apart from the database); without one the store can
        # read but not append audit records.
        self.key = key

    def append(self, event: AuditEvent) -> None:
        """Chain ``event`` onto the trail. Appends take turns, so each record links to the
        one before it."""
        self.dialect.take_turn(self.conn, AUDIT_LOCK_ID)
        last = self.conn.execute(_LAST).first()
        prev_hash = last.hash if last else GENESIS_HASH
        record_id = last.id + 1 if last else 1
        self.conn.execute(_INSERT, self.sealed(record_id, event, prev_hash))

    def sealed(self, record_id: int, event: AuditEvent, prev_hash: str) -> dict[str, Any]:
        """The audit_log row of ``event`` as record ``record_id``, sealed with the key."""
        if self.key is None:
            raise RuntimeError("this store has no audit key: it cannot append audit records")
        return {
            "id": record_id,
            "event_type": event.event_type,
            "agent_id": event.agent_id,
            "agent_type": event.agent_type,
            "session_id": event.session_id,
            "target": event.target,
            "metadata": event.metadata,
            "created_at": event.at,
            "entity": event.entity,
            "entity_id": event.entity_id,
            "digest": event.digest,
            "hash_version": HASH_VERSION,
            "prev_hash": prev_hash,
            "hash": record_hash(self.key, record_id, event, prev_hash),
        }
