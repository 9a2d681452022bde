"""SQLAlchemy Core tables, shared by the SQLite and PostgreSQL backends."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

metadata = sa.MetaData()


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        # SQLite's DATETIME keeps the digits and drops the zone: UTC digits on every backend.
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("purpose", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("last_activity_at", UtcDateTime, nullable=False),
    sa.Index("ix_sessions_status_activity", "status", "last_activity_at"),
    sa.Index("ix_sessions_created_by", "created_by"),
    # Counts an agent's open sessions for its quota (migration 0005).
    sa.Index("ix_sessions_creator_status", "created_by", "status"),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("session_id", sa.String(64), sa.ForeignKey("sessions.id"), nullable=False),
    sa.Column("sender", sa.String(100), nullable=False),
    sa.Column("sender_type", sa.String(100), nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("message_type", sa.String(64), nullable=False),
    sa.Column("visibility", sa.String(16), nullable=False),
    sa.Column("parent_message_id", sa.Integer, sa.ForeignKey("messages.id"), nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Index("ix_messages_session_id", "session_id", "id"),
    sa.Index("ix_messages_session_sender", "session_id", "sender"),
    sa.Index("ix_messages_session_created", "session_id", "created_at"),
)

agent_memory = sa.Table(
    "agent_memory",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("agent_id", sa.String(100), nullable=False),
    sa.Column("scope", sa.String(64), nullable=False),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("value", sa.JSON, nullable=False),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=True),
    # Bumped on every write, for optimistic concurrency (set_memory's expected_version).
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    # Bytes of the value's JSON, for the per-agent memory quota (migration 0004).
    sa.Column("value_bytes", sa.Integer, nullable=False, server_default="0"),
    sa.UniqueConstraint("agent_id", "scope", "key", name="uq_agent_memory_key"),
    sa.Index("ix_agent_memory_expires", "expires_at"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("permissions", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
    # The identities the key may act as (migration 0004): one agent id, or a pattern
    # (``worker-*``), or any agent (an operator key); and the agent types allowed
    # (NULL: any type, operator keys only).
    sa.Column("agent_id", sa.String(100), nullable=True),
    sa.Column("agent_pattern", sa.String(100), nullable=True),
    sa.Column("agent_types", sa.JSON, nullable=True),
    sa.Column("any_agent", sa.Boolean, nullable=False, server_default=sa.false()),
)

# Who registered each agent id first: the key (by name) or, NULL, an operator. A key that
# is not an operator key may act only as ids it registered or is bound to by name.
agent_identities = sa.Table(
    "agent_identities",
    metadata,
    sa.Column("agent_id", sa.String(100), primary_key=True),
    sa.Column("key_name", sa.String(100), nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

revoked_tokens = sa.Table(
    "revoked_tokens",
    metadata,
    sa.Column("jti", sa.String(64), primary_key=True),
    sa.Column("expires_at", UtcDateTime, nullable=False),
)

# The change feed: one row per visible change, read by id across processes.
change_feed = sa.Table(
    "change_feed",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("session_id", sa.String(64), nullable=False),
    sa.Column("agent_id", sa.String(100), nullable=False),
    sa.Column("message_id", sa.Integer, nullable=True),
    sa.Column("sender_type", sa.String(100), nullable=True),
    sa.Column("visibility", sa.String(16), nullable=True),
    sa.Column("origin", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    # Details of the change (old visibility, lock type, presence status...).
    sa.Column("payload", sa.JSON, nullable=True),
)

# --- coordination (migration 0002) ---------------------------------------------------------

# Append-only, hash-chained: each record carries the hash of the one before it.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("agent_id", sa.String(100), nullable=False),
    sa.Column("agent_type", sa.String(100), nullable=False),
    sa.Column("session_id", sa.String(64), nullable=True),
    sa.Column("target", sa.String(255), nullable=True),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    # The data row the record changed and a digest of it after the change (migration 0004):
    # verification compares every stored row with the digest its latest record holds.
    sa.Column("entity", sa.String(32), nullable=True),
    sa.Column("entity_id", sa.String(512), nullable=True),
    sa.Column("digest", sa.String(64), nullable=True),
    # 1: unkeyed SHA-256 (before 0004); 2: HMAC-SHA256 with the audit key.
    sa.Column("hash_version", sa.SmallInteger, nullable=False, server_default="1"),
    sa.Index("ix_audit_session", "session_id", "id"),
    sa.Index("ix_audit_agent", "agent_id", "id"),
    sa.Index("ix_audit_event_type", "event_type", "id"),
    sa.Index("ix_audit_created", "created_at"),
)

# Presence: one row per agent, and one per agent and session it was active in.
agents = sa.Table(
    "agents",
    metadata,
    sa.Column("agent_id", sa.String(100), primary_key=True),
    sa.Column("agent_type", sa.String(100), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("last_seen", UtcDateTime, nullable=False),
    sa.Column("first_seen", UtcDateTime, nullable=False),
    # The permissions of the last recorded call, shown only to admins and the agent itself.
    sa.Column("permissions", sa.JSON, nullable=False),
    sa.Index("ix_agents_last_seen", "last_seen"),
)

session_presence = sa.Table(
    "session_presence",
    metadata,
    sa.Column("session_id", sa.String(64), primary_key=True),
    sa.Column("agent_id", sa.String(100), primary_key=True),
    sa.Column("agent_type", sa.String(100), nullable=False),
    sa.Column("last_seen", UtcDateTime, nullable=False),
    sa.Index("ix_session_presence_agent", "agent_id", "last_seen"),
)

# Session locks: several rows for shared read locks, one for write/exclusive.
session_locks = sa.Table(
    "session_locks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("session_id", sa.String(64), sa.ForeignKey("sessions.id"), nullable=False),
    sa.Column("holder", sa.String(100), nullable=False),
    sa.Column("holder_type", sa.String(100), nullable=False),
    sa.Column("lock_type", sa.String(16), nullable=False),
    sa.Column("fencing_token", sa.BigInteger, nullable=False),
    sa.Column("acquired_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("heartbeat_deadline", UtcDateTime, nullable=False),
    # The TTL asked for at grant; renew extends by it again unless given another.
    sa.Column("ttl_seconds", sa.Integer, nullable=False),
    sa.Column("message", sa.Text, nullable=True),
    # An agent holds at most one lock per session: a new request replaces it.
    sa.UniqueConstraint("session_id", "holder", name="uq_session_locks_holder"),
    sa.Index("ix_session_locks_session", "session_id"),
)

# Named monotonic counters (the lock fencing token), bumped inside the granting transaction.
counters = sa.Table(
    "counters",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

# Background work one process of the database does at a time (the maintenance sweep):
# its holder renews the lease while it lives; when it lapses another process takes it.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(64), nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
)

# A retried write with the same key returns the first result instead of writing twice.
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("agent_id", sa.String(100), primary_key=True),
    sa.Column("operation", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("result", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
)

# Tokens an orchestrator minted for its sub-agents, so it (or an admin) can revoke them.
delegations = sa.Table(
    "delegations",
    metadata,
    sa.Column("jti", sa.String(64), primary_key=True),
    sa.Column("delegator", sa.String(100), nullable=False),
    sa.Column("agent_id", sa.String(100), nullable=False),
    sa.Column("session_id", sa.String(64), nullable=False),
    sa.Column("permissions", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    # The API key the delegator's identity came from: revoking it ends the delegation.
    sa.Column("key_name", sa.String(100), nullable=True),
    sa.Index("ix_delegations_delegator", "delegator"),
    sa.Index("ix_delegations_key", "key_name"),
)

# Each agent's stored memory in one row, kept by every memory write (migration 0005), so
# the memory quotas are checked without counting the agent's entries. Entries that expired
# and are not yet purged still count here: over a quota, the check counts exactly.
agent_usage = sa.Table(
    "agent_usage",
    metadata,
    sa.Column("agent_id", sa.String(100), primary_key=True),
    sa.Column("memory_keys", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("memory_bytes", sa.BigInteger, nullable=False, server_default="0"),
)
