"""Who is asking: an authenticated agent and what it may do."""

from __future__ import annotations

from dataclasses import dataclass

from shared_context_server.domain.models import Permission


@dataclass(frozen=True, slots=True)
class Principal:
    agent_id: str
    agent_type: str
    permissions: frozenset[Permission]
    # Where the identity came from ("jwt", "api_key"), for audit and debugging.
    source: str = "jwt"
    # A delegated token works in this one session only.
    session_id: str | None = None
    delegated_by: str | None = None
    # The API key the identity was obtained with: revoking the key ends its tokens.
    key_name: str | None = None

    def has(self, permission: Permission) -> bool:
        return permission in self.permissions

    def may_access(self, session_id: str) -> bool:
        return self.session_id is None or self.session_id == session_id

    @property
    def root_id(self) -> str:
        """Whose budget the caller spends: a sub-agent its delegator's, so minting
        sub-agents multiplies no cap, quota or rate."""
        return self.delegated_by or self.agent_id

    @property
    def is_admin(self) -> bool:
        return Permission.ADMIN in self.permissions
