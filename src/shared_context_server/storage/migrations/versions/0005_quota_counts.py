"""Per-agent quotas cheap to check: each agent's memory totals in one row, and an index
that counts an agent's open sessions without reading its archived ones.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_usage",
        sa.Column("agent_id", sa.String(100), primary_key=True),
        sa.Column("memory_keys", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("memory_bytes", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.execute(
        "INSERT INTO agent_usage (agent_id, memory_keys, memory_bytes) "
        "SELECT agent_id, COUNT(*), COALESCE(SUM(value_bytes), 0) FROM agent_memory "
        "GROUP BY agent_id"
    )
    op.create_index("ix_sessions_creator_status", "sessions", ["created_by", "status"])


def downgrade() -> None:
    op.drop_index("ix_sessions_creator_status", "sessions")
    op.drop_table("agent_usage")
