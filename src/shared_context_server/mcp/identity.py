"""Who is calling: the ``auth_token`` argument, the HTTP ``Authorization`` header, or, for
stdio, the credential in the server's environment. First match wins (DESIGN.md §3)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from shared_context_server.domain.principal import Principal
from shared_context_server.errors import AuthRequiredError
from shared_context_server.services.auth import AuthService

AGENT_ID_HEADER = "x-agent-id"
AGENT_TYPE_HEADER = "x-agent-type"


def bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization", "")
    scheme, _, credential = value.partition(" ")
    return credential.strip() or None if scheme.lower() == "bearer" else None


@dataclass(frozen=True, slots=True)
class AmbientCredential:
    """A credential that comes with the connection itself (stdio launch environment)."""

    credential: str
    agent_id: str | None = None
    agent_type: str | None = None


class IdentityResolver:
    def __init__(self, auth: AuthService, ambient: AmbientCredential | None = None) -> None:
        self._auth = auth
        self._ambient = ambient

    async def resolve(self, auth_token: str | None, request: Any | None) -> Principal:
        if auth_token:
            return await self._auth.resolve(auth_token)
        if isinstance(request, Request):
            credential = bearer(request.headers)
            if credential:
                return await self._auth.resolve(
                    credential,
                    request.headers.get(AGENT_ID_HEADER),
                    request.headers.get(AGENT_TYPE_HEADER),
                )
        if self._ambient is not None:
            return await self._auth.resolve(
                self._ambient.credential, self._ambient.agent_id, self._ambient.agent_type
            )
        raise AuthRequiredError(
            "no identity: pass auth_token, send 'Authorization: Bearer <token>', "
            "or get a token with authenticate_agent"
        )
