"""API keys with their identity bindings, the registry of agent ids, revoked tokens and
delegations."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from shared_context_server.domain.access import IdentityOwner
from shared_context_server.domain.models import ApiKey, Delegation


class IdentityRepository(Protocol):
    # API keys ---------------------------------------------------------------------------

    def insert_api_key(self, key: ApiKey, key_hash: str) -> dict[str, object]:
        """The row written (for its audit digest); a key of that name existing already is
        a ConflictError (and nothing is written)."""
        ...

    def find_api_key(self, key_hash: str) -> ApiKey | None: ...
    def get_api_key(self, name: str) -> ApiKey | None: ...
    def list_api_keys(self) -> list[ApiKey]:
        """Oldest first."""
        ...

    def revoke_api_key(self, name: str, now: datetime) -> dict[str, object] | None:
        """Mark the key revoked at ``now``: the row after (for its audit digest); None if
        there is no unrevoked key of that name."""
        ...

    def is_key_revoked(self, name: str) -> bool: ...

    # the registry of agent ids ----------------------------------------------------------

    def owner(self, agent_id: str) -> IdentityOwner | None:
        """Who registered ``agent_id`` (None: nobody yet)."""
        ...

    def register(
        self, agent_id: str, key_name: str | None, now: datetime
    ) -> dict[str, object] | None:
        """Register ``agent_id`` to ``key_name`` (None: an operator): the row written, or
        None if someone registered it first (nothing written)."""
        ...

    # tokens and delegations -------------------------------------------------------------

    def revoke_token(self, jti: str, expires_at: datetime) -> dict[str, object] | None:
        """Remember the token ``jti`` revoked until ``expires_at``: the row written, or
        None if it was revoked before (nothing written)."""
        ...

    def is_token_revoked(self, jti: str) -> bool: ...
    def delete_expired_revocations(self, now: datetime) -> None:
        """Forget revocations of tokens expired by ``now`` (they are refused anyway)."""
        ...

    def insert_delegation(self, delegation: Delegation) -> dict[str, object]:
        """The row written (for its audit digest)."""
        ...

    def get_delegation(self, jti: str) -> Delegation | None: ...

    def count_live_delegations(self, delegator: str, now: datetime) -> int:
        """How many unexpired delegations ``delegator`` has made (revoked ones included);
        the delegator's turn on that count is held to commit, so a quota checked on it
        holds."""
        ...

    def delegations_of_key(self, key_name: str, now: datetime) -> list[Delegation]:
        """Unexpired delegations made by identities obtained with the key ``key_name``."""
        ...
