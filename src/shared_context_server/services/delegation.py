"""Delegated tokens: an orchestrator mints, for a sub-agent, a token limited to one session
and to permissions it holds itself, and can revoke it before it expires."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from shared_context_server.clock import Clock
from shared_context_server.domain.access import (
    delegate_id,
    require_delegable,
    require_delegate_type,
    require_may_delegate,
    require_may_revoke,
)
from shared_context_server.domain.audit import audit
from shared_context_server.domain.limits import check_agent_id
from shared_context_server.domain.models import Delegation, Permission
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import (
    InvalidInputError,
    LimitExceededError,
    TokenRevokedError,
)
from shared_context_server.services.auth import AuthService, IssuedToken, revoke_token
from shared_context_server.services.locks import LockService
from shared_context_server.services.sessions import SessionService
from shared_context_server.storage.store import Store
from shared_context_server.storage.unit_of_work import Transaction


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
        require_may_delegate(principal)
        agent_id = check_agent_id(delegate_id(principal, agent_id))
        agent_type = agent_type or principal.agent_type
        require_delegate_type(principal, agent_type)
        if not permissions:
            raise InvalidInputError("grant at least one permission", field="permissions")
        require_delegable(principal, permissions)
        if not 0 < expires_in <= self._max_ttl:
            raise LimitExceededError(
                f"expires_in must be between 1 and {self._max_ttl:g} seconds",
                field="expires_in",
                limit=self._max_ttl,
            )
        await self._sessions.get(principal, session_id)
        now = self._clock.now()
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
        delegation = Delegation(
            jti,
            principal.agent_id,
            agent_id,
            session_id,
            permissions,
            now,
            expires_at,
            key_name=principal.key_name,
        )
        event = audit(
            principal,
            "auth.token_delegated",
            now,
            session_id=session_id,
            target=agent_id,
            jti=jti,
            permissions=sorted(p.value for p in permissions),
            expires_at=expires_at.isoformat(),
        )

        def record(tx: Transaction) -> None:
            live = tx.identity.count_live_delegations(principal.agent_id, now)
            if live >= self._max_live:
                raise LimitExceededError(
                    f"{live} delegated tokens of yours are unexpired; {self._max_live} is the most",
                    quota="delegations_per_agent",
                    limit=self._max_live,
                    current=live,
                )
            row = tx.identity.insert_delegation(delegation)
            tx.audited(event.of_row("delegation", jti, row))

        await self._store.write(record)
        return DelegatedToken(IssuedToken(token, sub_agent, expires_at, frozenset()), jti)

    async def revoke(self, principal: Principal, jti: str) -> Delegation:
        """Its delegator or an admin may revoke a delegated token; it stops working at once
        in this process and within seconds in others sharing the database, and the locks
        its sub-agent held in the session are released."""
        now = self._clock.now()

        def revoke(tx: Transaction) -> Delegation:
            delegation = tx.identity.get_delegation(jti)
            if delegation is None:
                raise InvalidInputError("no delegated token with that id", field="jti")
            require_may_revoke(principal, delegation)
            if tx.identity.is_token_revoked(jti):
                raise TokenRevokedError("the token is already revoked", jti=jti)
            event = audit(
                principal,
                "auth.token_revoked",
                now,
                session_id=delegation.session_id,
                target=delegation.agent_id,
                jti=jti,
            )
            revoke_token(tx, jti, delegation.expires_at + timedelta(seconds=1), event)
            return delegation

        delegation = (await self._store.write(revoke)).value
        self._auth.forget(jti)
        await self._locks.release_revoked(delegation.session_id, delegation.agent_id)
        return delegation

    async def revoke_api_key(self, name: str) -> bool:
        """An operator revokes a key: every token and delegation obtained with it ends,
        and the locks of those sub-agents are released."""
        if not await self._auth.revoke_api_key(name):
            return False
        now = self._clock.now()
        ended = await self._store.read(lambda tx: tx.identity.delegations_of_key(name, now))
        for delegation in ended:
            await self._locks.release_revoked(delegation.session_id, delegation.agent_id)
        return True
