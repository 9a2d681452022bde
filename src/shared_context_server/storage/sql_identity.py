"""API keys with their identity bindings, the registry of agent ids, revoked tokens and
delegations."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from shared_context_server.domain.access import IdentityOwner
from shared_context_server.domain.audit import AuditEvent, system_audit
from shared_context_server.domain.models import ApiKey, Delegation, KeyBinding, Permission
from shared_context_server.errors import ConflictError
from shared_context_server.storage import dialects
from shared_context_server.storage.sql_base import SqlBase, api_key_of, threaded
from shared_context_server.storage.tables import (
    agent_identities,
    api_keys,
    delegations,
    revoked_tokens,
)

_OWNER = sa.select(agent_identities.c.key_name).where(
    agent_identities.c.agent_id == sa.bindparam("agent_id")
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


class IdentityRows(SqlBase):
    @threaded
    def create_api_key(
        self,
        key_id: str,
        name: str,
        key_hash: str,
        permissions: frozenset[Permission],
        binding: KeyBinding,
        now: datetime,
        *,
        audit: AuditEvent | None = None,
    ) -> ApiKey:
        values = {
            "id": key_id,
            "name": name,
            "key_hash": key_hash,
            "permissions": sorted(p.value for p in permissions),
            "created_at": now,
            "revoked_at": None,
            **_binding_values(binding),
        }
        if audit is not None:
            audit = audit.of_row("api_key", name, values)
        with self._write(audit) as conn:
            inserted = conn.execute(
                dialects.insert_ignoring_conflict(self.dialect.name, api_keys, values, ("name",))
            )
            if inserted.first() is None:
                raise ConflictError(f"an API key named {name!r} exists", name=name)
        return ApiKey(key_id, name, permissions, now, binding)

    @threaded
    def find_api_key(self, key_hash: str) -> ApiKey | None:
        with self._read() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == key_hash)).first()
        return api_key_of(row) if row else None

    @threaded
    def list_api_keys(self) -> list[ApiKey]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.name)
            )
            return [api_key_of(row) for row in rows]

    @threaded
    def revoke_api_key(self, name: str, now: datetime, *, audit: AuditEvent | None = None) -> bool:
        with self._write() as conn:
            row = conn.execute(
                sa.update(api_keys)
                .where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
                .returning(*api_keys.c)
            ).first()
            if row is not None and audit is not None:
                self._append_audit(conn, audit.of_row("api_key", name, dict(row._mapping)))
        return row is not None

    # the registry of agent ids ----------------------------------------------------------

    @threaded
    def identity_owner(self, agent_id: str) -> IdentityOwner | None:
        """Who registered ``agent_id`` (None: nobody yet)."""
        with self._read() as conn:
            row = conn.execute(_OWNER, {"agent_id": agent_id}).first()
        return None if row is None else IdentityOwner(row.key_name)

    @threaded
    def register_identity(
        self, agent_id: str, key_name: str | None, now: datetime, *, audit: AuditEvent
    ) -> IdentityOwner:
        """Register ``agent_id`` to ``key_name`` (None: an operator) unless someone did
        first; returns whoever holds it now."""
        values = {"agent_id": agent_id, "key_name": key_name, "created_at": now}
        with self._write() as conn:
            inserted = conn.execute(
                dialects.insert_ignoring_conflict(
                    self.dialect.name, agent_identities, values, ("agent_id",)
                )
            ).first()
            if inserted is None:
                return IdentityOwner(conn.execute(_OWNER, {"agent_id": agent_id}).scalar_one())
            self._append_audit(conn, audit.of_row("identity", agent_id, values))
        return IdentityOwner(key_name)

    # tokens and delegations -------------------------------------------------------------

    @threaded
    def revoke_token(
        self, jti: str, expires_at: datetime, *, audit: AuditEvent | None = None
    ) -> None:
        """Revoke the token ``jti`` until ``expires_at``, audited as a ``revoked_token`` row
        (without ``audit``, as the server's ``auth.token_revoked``). The record holds the
        expiry, so the sweep may remove the row once it has passed; a token revoked before
        leaves the event recorded without a digest (this call wrote no row)."""
        if audit is None:
            audit = system_audit("auth.token_revoked", datetime.now(UTC), target=jti)
        values = {"jti": jti, "expires_at": expires_at}
        with self._write() as conn:
            inserted = conn.execute(
                dialects.insert_ignoring_conflict(
                    self.dialect.name, revoked_tokens, values, ("jti",)
                )
            ).first()
            if inserted is not None:
                metadata = {**audit.metadata, "expires_at": expires_at.isoformat()}
                audit = replace(audit, metadata=metadata).of_row("revoked_token", jti, values)
            self._append_audit(conn, audit)

    @threaded
    def is_token_revoked(self, jti: str, key_name: str | None = None) -> bool:
        """Whether the token, or the API key it was obtained with, has been revoked."""
        statement = sa.select(revoked_tokens.c.jti).where(revoked_tokens.c.jti == jti)
        with self._read() as conn:
            if conn.execute(statement).first() is not None:
                return True
            if key_name is None:
                return False
            key_revoked = sa.select(api_keys.c.name).where(
                api_keys.c.name == key_name, api_keys.c.revoked_at.is_not(None)
            )
            return conn.execute(key_revoked).first() is not None

    @threaded
    def record_delegation(self, delegation: Delegation, *, audit: AuditEvent | None = None) -> None:
        values = {
            "jti": delegation.jti,
            "delegator": delegation.delegator,
            "agent_id": delegation.agent_id,
            "session_id": delegation.session_id,
            "permissions": sorted(p.value for p in delegation.permissions),
            "created_at": delegation.created_at,
            "expires_at": delegation.expires_at,
            "key_name": delegation.key_name,
        }
        if audit is not None:
            audit = audit.of_row("delegation", delegation.jti, values)
        with self._write(audit) as conn:
            conn.execute(sa.insert(delegations).values(values))

    @threaded
    def get_delegation(self, jti: str) -> Delegation | None:
        with self._read() as conn:
            row = conn.execute(sa.select(delegations).where(delegations.c.jti == jti)).first()
        return None if row is None else delegation_of(row)

    @threaded
    def live_delegations(self, delegator: str, now: datetime) -> int:
        """How many unexpired delegations ``delegator`` has made (revoked ones included:
        they expire like the rest, so the count cannot be reset by revoking)."""
        col = delegations.c
        statement = (
            sa.select(sa.func.count())
            .select_from(delegations)
            .where(col.delegator == delegator, col.expires_at > now)
        )
        with self._read() as conn:
            return int(conn.execute(statement).scalar_one())

    @threaded
    def delegations_of_key(self, key_name: str, now: datetime) -> list[Delegation]:
        """Unexpired delegations made by identities obtained with the key ``key_name``."""
        col = delegations.c
        statement = sa.select(delegations).where(col.key_name == key_name, col.expires_at > now)
        with self._read() as conn:
            return [delegation_of(row) for row in conn.execute(statement)]
