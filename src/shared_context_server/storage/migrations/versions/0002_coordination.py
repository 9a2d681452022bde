"""Coordination: audit log, presence, session locks, counters, idempotency keys, delegated
tokens; memory versions; change-feed payloads.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared_context_server.storage.tables import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
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
    )
    op.create_index("ix_audit_session", "audit_log", ["session_id", "id"])
    op.create_index("ix_audit_agent", "audit_log", ["agent_id", "id"])
    op.create_index("ix_audit_event_type", "audit_log", ["event_type", "id"])
    op.create_index("ix_audit_created", "audit_log", ["created_at"])
    op.create_table(
        "agents",
        sa.Column("agent_id", sa.String(100), primary_key=True),
        sa.Column("agent_type", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("last_seen", UtcDateTime, nullable=False),
        sa.Column("first_seen", UtcDateTime, nullable=False),
        sa.Column("permissions", sa.JSON, nullable=False),
    )
    op.create_index("ix_agents_last_seen", "agents", ["last_seen"])
    op.create_table(
        "session_presence",
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("agent_id", sa.String(100), primary_key=True),
        sa.Column("agent_type", sa.String(100), nullable=False),
        sa.Column("last_seen", UtcDateTime, nullable=False),
    )
    op.create_index("ix_session_presence_agent", "session_presence", ["agent_id", "last_seen"])
    op.create_table(
        "session_locks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(64), sa.ForeignKey("sessions.id"), nullable=False),
        sa.Column("holder", sa.String(100), nullable=False),
        sa.Column("holder_type", sa.String(100), nullable=False),
        sa.Column("lock_type", sa.String(16), nullable=False),
        sa.Column("fencing_token", sa.BigInteger, nullable=False),
        sa.Column("acquired_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
        sa.Column("heartbeat_deadline", UtcDateTime, nullable=False),
        sa.Column("ttl_seconds", sa.Integer, nullable=False),
        sa.Column("message", sa.Text, nullable=True),
        sa.UniqueConstraint("session_id", "holder", name="uq_session_locks_holder"),
    )
    op.create_index("ix_session_locks_session", "session_locks", ["session_id"])
    op.create_table(
        "counters",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("agent_id", sa.String(100), primary_key=True),
        sa.Column("operation", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("result", sa.JSON, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "delegations",
        sa.Column("jti", sa.String(64), primary_key=True),
        sa.Column("delegator", sa.String(100), nullable=False),
        sa.Column("agent_id", sa.String(100), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("permissions", sa.JSON, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_delegations_delegator", "delegations", ["delegator"])
    with op.batch_alter_table("agent_memory") as batch:
        batch.add_column(sa.Column("version", sa.Integer, nullable=False, server_default="1"))
    with op.batch_alter_table("change_feed") as batch:
        batch.add_column(sa.Column("payload", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("change_feed") as batch:
        batch.drop_column("payload")
    with op.batch_alter_table("agent_memory") as batch:
        batch.drop_column("version")
    for table in (
        "delegations",
        "idempotency_keys",
        "counters",
        "session_locks",
        "session_presence",
        "agents",
        "audit_log",
    ):
        op.drop_table(table)
