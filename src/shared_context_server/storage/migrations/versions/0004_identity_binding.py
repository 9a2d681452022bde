"""Identities bound to keys, per-agent quotas, and an audit trail that covers the data.

API keys carry the identities they may act as; agent ids remember the key that registered
them; delegations remember their key; audit records carry the changed row's digest and a
keyed-hash version; memory entries their size.

Existing keys: the bootstrap and environment admin keys become operator keys (any agent);
every other key is bound to the agent named like the key, of any type it declared so far
("generic"). Existing agent ids are registered to operators, so no key can claim them;
the id of a key bound by name is registered to that key.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared_context_server.storage.tables import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

OPERATOR_KEYS = ("bootstrap-admin",)
OPERATOR_PREFIX = "env-admin"


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("agent_id", sa.String(100), nullable=True))
        batch.add_column(sa.Column("agent_pattern", sa.String(100), nullable=True))
        batch.add_column(sa.Column("agent_types", sa.JSON, nullable=True))
        batch.add_column(
            sa.Column("any_agent", sa.Boolean, nullable=False, server_default=sa.false())
        )
    keys = sa.table(
        "api_keys",
        sa.column("name", sa.String),
        sa.column("agent_id", sa.String),
        sa.column("agent_types", sa.JSON),
        sa.column("any_agent", sa.Boolean),
    )
    operator = sa.or_(keys.c.name.in_(OPERATOR_KEYS), keys.c.name.like(OPERATOR_PREFIX + "-%"))
    op.execute(sa.update(keys).where(operator).values(any_agent=True))
    op.execute(
        sa.update(keys)
        .where(sa.not_(operator))
        .values(agent_id=keys.c.name, agent_types=sa.literal(["generic"], sa.JSON))
    )

    op.create_table(
        "agent_identities",
        sa.Column("agent_id", sa.String(100), primary_key=True),
        sa.Column("key_name", sa.String(100), nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    # Every agent id the database already knows belongs to the operators.
    op.execute(
        """INSERT INTO agent_identities (agent_id, key_name, created_at)
        SELECT agent_id, NULL, MIN(at) FROM (
            SELECT sender AS agent_id, created_at AS at FROM messages
            UNION ALL SELECT agent_id, created_at FROM agent_memory
            UNION ALL SELECT created_by, created_at FROM sessions
            UNION ALL SELECT agent_id, first_seen FROM agents
        ) AS known GROUP BY agent_id"""
    )
    # An id a key is bound to by name is that key's, used yet or not.
    op.execute(
        """INSERT INTO agent_identities (agent_id, key_name, created_at)
        SELECT agent_id, name, created_at FROM api_keys
        WHERE agent_id IS NOT NULL
          AND agent_id NOT IN (SELECT agent_id FROM agent_identities)"""
    )

    with op.batch_alter_table("delegations") as batch:
        batch.add_column(sa.Column("key_name", sa.String(100), nullable=True))
    op.create_index("ix_delegations_key", "delegations", ["key_name"])

    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("entity", sa.String(32), nullable=True))
        batch.add_column(sa.Column("entity_id", sa.String(512), nullable=True))
        batch.add_column(sa.Column("digest", sa.String(64), nullable=True))
        batch.add_column(
            sa.Column("hash_version", sa.SmallInteger, nullable=False, server_default="1")
        )

    with op.batch_alter_table("agent_memory") as batch:
        batch.add_column(sa.Column("value_bytes", sa.Integer, nullable=False, server_default="0"))
    memory = sa.table("agent_memory", sa.column("value_bytes"), sa.column("value"))
    op.execute(
        sa.update(memory).values(value_bytes=sa.func.length(sa.cast(memory.c.value, sa.Text)))
    )


def downgrade() -> None:
    with op.batch_alter_table("agent_memory") as batch:
        batch.drop_column("value_bytes")
    with op.batch_alter_table("audit_log") as batch:
        for name in ("hash_version", "digest", "entity_id", "entity"):
            batch.drop_column(name)
    op.drop_index("ix_delegations_key", "delegations")
    with op.batch_alter_table("delegations") as batch:
        batch.drop_column("key_name")
    op.drop_table("agent_identities")
    with op.batch_alter_table("api_keys") as batch:
        for name in ("any_agent", "agent_types", "agent_pattern", "agent_id"):
            batch.drop_column(name)
