"""API keys with their identity bindings, the registry of agent ids, revoked tokens and
delegations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from shared_context_server.domain.access import IdentityOwner
from shared_context_server.domain.models import ApiKey, Delegation, KeyBinding, Permission
from shared_context_server.errors import ConflictError
from shared_context_server.storage.sql.repository import Repository
from shared_context_server.storage.sql.rows import api_key_of
from shared_context_server.storage.tables import (
    agent_identities,
    api_keys,
    delegations,
    revoked_tokens,
)

_k = api_keys.c
_d = delegations.c
# Built once: SQLAlchemy then skips rebuilding and re-keying them per call.
_OWNER = sa.select(agent_identities.c.key_name).where(
    agent_identities.c.agent_id == sa.bindparam("agent_id")
)
_KEY_BY_HASH = sa.select(api_keys).where(_k.key_hash == sa.bindparam("key_hash"))
_KEY_BY_NAME = sa.select(api_keys).where(_k.name == sa.bindparam("name"))
_KEYS = sa.select(api_keys).order_by(_k.created_at, _k.name)
_REVOKE_KEY = (
    sa.update(api_keys)
    .where(_k.name == sa.bindparam("key_name"), _k.revoked_at.is_(None))
    .values(revoked_at=sa.bindparam("now"))
    .returning(*api_keys.c)
)
_KEY_REVOKED = sa.select(_k.name).where(_k.name == sa.bindparam("name"), _k.revoked_at.is_not(None))
_TOKEN_REVOKED = sa.select(revoked_tokens.c.jti).where(revoked_tokens.c.jti == sa.bindparam("jti"))
_DELEGATION = sa.select(delegations).where(_d.jti == sa.bindparam("jti"))
_LIVE = (
    sa.select(sa.func.count())
    .select_from(delegations)
    .where(_d.delegator == sa.bindparam("delegator"), _d.expires_at > sa.bindparam("now"))
)
_OF_KEY = sa.select(delegations).where(
    _d.key_name == sa.bindparam("key_name"), _d.expires_at > sa.bindparam("now")
)


def _binding_values(binding: KeyBinding) -> dict[str, Any]:
    types = binding.agent_types
    return {
        "agent_id": binding.agent_id,
        "agent_pattern": binding.agent_pattern,
        "agent_types": None if types is None else sorted(types),
        "any_agent": binding.any_agent,
    }


def delegation_of(row: sa.Row[Any]) -> Delegation:
    return Delegation(
        jti=row.jti,
        delegator=row.delegator,
        agent_id=row.agent_id,
        session_id=row.session_id,
        permissions=frozenset(Permission(p) for p in row.permissions),
        created_at=row.created_at,
        expires_at=row.expires_at,
        key_name=row.key_name,
    )


class SqlIdentity(Repository):
    __slots__ = ()

    # API keys ---------------------------------------------------------------------------

    def insert_api_key(self, key: ApiKey, key_hash: str) -> dict[str, object]:
        values = {
            "id": key.id,
            "name": key.name,
            "key_hash": key_hash,
            "permissions": sorted(p.value for p in key.permissions),
            "created_at": key.created_at,
            "revoked_at": key.revoked_at,
            **_binding_values(key.binding),
        }
        statement = self.dialect.insert_ignoring_conflict(api_keys, values, ("name",))
        if self.conn.execute(statement).first() is None:
            raise ConflictError(f"an API key named {key.name!r} exists", name=key.name)
        return values

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        row = self.conn.execute(_KEY_BY_HASH, {"key_hash": key_hash}).first()
        return None if row is None else api_key_of(row)

    def get_api_key(self, name: str) -> ApiKey | None:
        row = self.conn.execute(_KEY_BY_NAME, {"name": name}).first()
        return None if row is None else api_key_of(row)

    def list_api_keys(self) -> list[ApiKey]:
        return [api_key_of(row) for row in self.conn.execute(_KEYS)]

    def revoke_api_key(self, name: str, now: datetime) -> dict[str, object] | None:
        row = self.conn.execute(_REVOKE_KEY, {"key_name": name, "now": now}).first()
        return None if row is None else dict(row._mapping)

    def is_key_revoked(self, name: str) -> bool:
        return self.conn.execute(_KEY_REVOKED, {"name": name}).first() is not None

    # the registry of agent ids ----------------------------------------------------------

    def owner(self, agent_id: str) -> IdentityOwner | None:
        row = self.conn.execute(_OWNER, {"agent_id": agent_id}).first()
        return None if row is None else IdentityOwner(row.key_name)

    def register(
        self, agent_id: str, key_name: str | None, now: datetime
    ) -> dict[str, object] | None:
        values: dict[str, object] = {"agent_id": agent_id, "key_name": key_name, "created_at": now}
        statement = self.dialect.insert_ignoring_conflict(agent_identities, values, ("agent_id",))
        return None if self.conn.execute(statement).first() is None else values

    # tokens and delegations -------------------------------------------------------------

    def revoke_token(self, jti: str, expires_at: datetime) -> dict[str, object] | None:
        values: dict[str, object] = {"jti": jti, "expires_at": expires_at}
        statement = self.dialect.insert_ignoring_conflict(revoked_tokens, values, ("jti",))
        return None if self.conn.execute(statement).first() is None else values

    def is_token_revoked(self, jti: str) -> bool:
        return self.conn.execute(_TOKEN_REVOKED, {"jti": jti}).first() is not None

    def delete_expired_revocations(self, now: datetime) -> None:
        self.conn.execute(sa.delete(revoked_tokens).where(revoked_tokens.c.expires_at <= now))

    def insert_delegation(self, delegation: Delegation) -> dict[str, object]:
        values: dict[str, object] = {
            "jti": delegation.jti,
            "delegator": delegation.delegator,
            "agent_id": delegation.agent_id,
            "session_id": delegation.session_id,
            "permissions": sorted(p.value for p in delegation.permissions),
            "created_at": delegation.created_at,
            "expires_at": delegation.expires_at,
            "key_name": delegation.key_name,
        }
        self.conn.execute(sa.insert(delegations).values(values))
        return values

    def get_delegation(self, jti: str) -> Delegation | None:
        row = self.conn.execute(_DELEGATION, {"jti": jti}).first()
        return None if row is None else delegation_of(row)

    def count_live_delegations(self, delegator: str, now: datetime) -> int:
        self.take_turn_on("delegations", delegator)
        return int(self.conn.execute(_LIVE, {"delegator": delegator, "now": now}).scalar_one())

    def delegations_of_key(self, key_name: str, now: datetime) -> list[Delegation]:
        rows = self.conn.execute(_OF_KEY, {"key_name": key_name, "now": now})
        return [delegation_of(row) for row in rows]
