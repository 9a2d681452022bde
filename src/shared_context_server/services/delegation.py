"""Delegated tokens: an orchestrator mints, for a sub-agent, a token limited to one session
and to permissions it holds itself, and can revoke it before it expires."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from shared_context_server.clock import Clock
from shared_context_server.domain.access import require, require_may_revoke
from shared_context_server.domain.audit import audit
from shared_context_server.domain.limits import check_agent_id
from shared_context_server.domain.models import Delegation, Permission
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import (
    IdentityNotAllowedError,
    InvalidInputError,
    LimitExceededError,
    PermissionDeniedError,
    TokenRevokedError,
)
from shared_context_server.services.auth import AuthService, IssuedToken
from shared_context_server.services.locks import LockService
from shared_context_server.services.sessions import SessionService
from shared_context_server.storage.store import Store

DELEGABLE = frozenset({Permission.READ, Permission.WRITE})


@dataclass(frozen=True, slots=True)
class DelegatedToken:
    issued: IssuedToken
    jti: str


class DelegationService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        auth: AuthService,
        sessions: SessionService,
        locks: LockService,
        *,
        max_ttl_seconds: float,
        max_live: int = 100,
    ) -> None:
        self._store = store
        self._clock = clock
        self._auth = auth
        self._sessions = sessions
        self._locks = locks
        self._max_ttl = max_ttl_seconds
        self._max_live = max_live

    async def delegate(
        self,
        principal: Principal,
        agent_id: str,
        agent_type: str | None,
        session_id: str,
        permissions: frozenset[Permission],
        expires_in: float,
    ) -> DelegatedToken:
        """A token for ``<caller>:<agent_id>`` of the caller's own agent type (a key vouches
        for the types its agents may have; a sub-agent cannot widen that)."""
        require(principal, Permission.WRITE)
        if principal.session_id is not None:
            raise PermissionDeniedError("a delegated token cannot delegate further")
        # A sub-agent is named under its delegator, so no delegator can pose as another agent.
        prefix = f"{principal.agent_id}:"
        agent_id = check_agent_id(agent_id if agent_id.startswith(prefix) else prefix + agent_id)
        agent_type = agent_type or principal.agent_type
        if agent_type != principal.agent_type:
            raise IdentityNotAllowedError(
                f"a sub-agent has its delegator's agent type ({principal.agent_type})",
                agent_type=agent_type,
                reason="agent_type",
            )
        if not permissions:
            raise InvalidInputError("grant at least one permission", field="permissions")
        if permissions - DELEGABLE:
            raise PermissionDeniedError(
                "delegated tokens carry read and write only",
                not_delegable=sorted(p.value for p in permissions - DELEGABLE),
            )
        beyond = permissions - principal.permissions
        if beyond:
            raise PermissionDeniedError(
                "a delegated token can carry only permissions you hold",
                not_held=sorted(p.value for p in beyond),
            )
        if not 0 < expires_in <= self._max_ttl:
            raise LimitExceededError(
                f"expires_in must be between 1 and {self._max_ttl:g} seconds",
                field="expires_in",
                limit=self._max_ttl,
            )
        await self._sessions.get(principal, session_id)
        now = self._clock.now()
        live = await self._store.live_delegations(principal.agent_id, now)
        if live >= self._max_live:
            raise LimitExceededError(
                f"{live} delegated tokens of yours are unexpired; {self._max_live} is the most",
                quota="delegations_per_agent",
                limit=self._max_live,
                current=live,
            )
        jti = uuid.uuid4().hex
        sub_agent = Principal(
            agent_id,
            agent_type,
            permissions,
            session_id=session_id,
            delegated_by=principal.agent_id,
            key_name=principal.key_name,
        )
        token, expires_at = self._auth.issue_token(sub_agent, ttl_seconds=expires_in, jti=jti)
        await self._store.record_delegation(
            Delegation(
                jti,
                principal.agent_id,
                agent_id,
                session_id,
                permissions,
                now,
                expires_at,
                key_name=principal.key_name,
            ),
            audit=audit(
                principal,
                "auth.token_delegated",
                now,
                session_id=session_id,
                target=agent_id,
                jti=jti,
                permissions=sorted(p.value for p in permissions),
                expires_at=expires_at.isoformat(),
            ),
        )
        return DelegatedToken(IssuedToken(token, sub_agent, expires_at, frozenset()), jti)

    async def revoke(self, principal: Principal, jti: str) -> Delegation:
        """Its delegator or an admin may revoke a delegated token; it stops working at once
        in this process and within seconds in others sharing the database, and the locks
        its sub-agent held in the session are released."""
        delegation = await self._store.get_delegation(jti)
        if delegation is None:
            raise InvalidInputError("no delegated token with that id", field="jti")
        require_may_revoke(principal, delegation)
        if await self._store.is_token_revoked(jti):
            raise TokenRevokedError("the token is already revoked", jti=jti)
        now = self._clock.now()
        await self._store.revoke_token(
            jti,
            delegation.expires_at + timedelta(seconds=1),
            audit=audit(
                principal,
                "auth.token_revoked",
                now,
                session_id=delegation.session_id,
                target=delegation.agent_id,
                jti=jti,
            ),
        )
        self._auth.forget(jti)
        await self._locks.release_revoked(delegation.session_id, delegation.agent_id)
        return delegation

    async def revoke_api_key(self, name: str) -> bool:
        """An operator revokes a key: every token and delegation obtained with it ends,
        and the locks of those sub-agents are released."""
        if not await self._auth.revoke_api_key(name):
            return False
        for delegation in await self._store.delegations_of_key(name, self._clock.now()):
            await self._locks.release_revoked(delegation.session_id, delegation.agent_id)
        return True
