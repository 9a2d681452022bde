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

    def has(self, permission: Permission) -> bool:
        return permission in self.permissions

    @property
    def is_admin(self) -> bool:
        return Permission.ADMIN in self.permissions
