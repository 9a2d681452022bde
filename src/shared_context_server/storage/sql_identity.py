"""API keys and revoked tokens."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from shared_context_server.domain.audit import AuditEvent
from shared_context_server.domain.models import (
    ApiKey,
    Delegation,
    Permission,
)
from shared_context_server.errors import (
    ConflictError,
)
from shared_context_server.storage import dialects
from shared_context_server.storage.sql_base import (
    SqlBase,
    api_key_of,
    threaded,
)
from shared_context_server.storage.tables import (
    api_keys,
    delegations,
    revoked_tokens,
)


class IdentityRows(SqlBase):
    @threaded
    def create_api_key(
        self,
        key_id: str,
        name: str,
        key_hash: str,
        permissions: frozenset[Permission],
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
        }
        with self._write(audit) as conn:
            inserted = conn.execute(
                dialects.insert_ignoring_conflict(self.dialect, api_keys, values, ("name",))
            )
            if inserted.first() is None:
                raise ConflictError(f"an API key named {name!r} exists", name=name)
        return ApiKey(id=key_id, name=name, permissions=permissions, created_at=now)

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
        with self._write(audit) as conn:
            result = conn.execute(
                sa.update(api_keys)
                .where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        return bool(result.rowcount)

    @threaded
    def revoke_token(
        self, jti: str, expires_at: datetime, *, audit: AuditEvent | None = None
    ) -> None:
        values = {"jti": jti, "expires_at": expires_at}
        with self._write(audit) as conn:
            conn.execute(
                dialects.insert_ignoring_conflict(self.dialect, revoked_tokens, values, ("jti",))
            )

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
        with self._write(audit) as conn:
            conn.execute(
                sa.insert(delegations).values(
                    jti=delegation.jti,
                    delegator=delegation.delegator,
                    agent_id=delegation.agent_id,
                    session_id=delegation.session_id,
                    permissions=sorted(p.value for p in delegation.permissions),
                    created_at=delegation.created_at,
                    expires_at=delegation.expires_at,
                )
            )

    @threaded
    def get_delegation(self, jti: str) -> Delegation | None:
        with self._read() as conn:
            row = conn.execute(sa.select(delegations).where(delegations.c.jti == jti)).first()
        if row is None:
            return None
        return Delegation(
            jti=row.jti,
            delegator=row.delegator,
            agent_id=row.agent_id,
            session_id=row.session_id,
            permissions=frozenset(Permission(p) for p in row.permissions),
            created_at=row.created_at,
            expires_at=row.expires_at,
        )
