"""authenticate_agent, refresh_token."""

from __future__ import annotations

from typing import Annotated, Literal

from fastmcp import FastMCP
from pydantic import Field

from shared_context_server.domain.limits import check_agent_id
from shared_context_server.mcp.context import ToolContext
from shared_context_server.mcp.schemas import DelegatedTokenResult, RevokedResult, TokenResult
from shared_context_server.mcp.tools.common import DESTRUCTIVE, WRITE, AuthToken
from shared_context_server.services.auth import IssuedToken, parse_permissions

PermissionName = Literal["read", "write", "admin", "debug"]
AgentName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:@-]+$")]


def _result(issued: IssuedToken) -> TokenResult:
    principal = issued.principal
    return TokenResult(
        token=issued.token,
        agent_id=principal.agent_id,
        agent_type=principal.agent_type,
        permissions=sorted(p.value for p in principal.permissions),
        denied_permissions=sorted(p.value for p in issued.denied),
        expires_at=issued.expires_at,
    )


def register(mcp: FastMCP, ctx: ToolContext) -> None:
    auth = ctx.app.auth

    @mcp.tool(annotations=WRITE)
    async def authenticate_agent(
        agent_id: AgentName,
        api_key: Annotated[str, Field(min_length=1, max_length=512)],
        agent_type: Annotated[
            AgentName | None, Field(description="Default: the key's agent type.")
        ] = None,
        requested_permissions: Annotated[list[PermissionName] | None, Field(max_length=4)] = None,
    ) -> TokenResult:
        """Exchange an API key for a signed token naming you (agent_id, agent_type).

        The key decides who you may be: the agent id(s) and type(s) it is bound to
        (IDENTITY_NOT_ALLOWED otherwise; an id another key registered first is theirs).
        Granted permissions are those requested (default read, write) that the key allows;
        the rest are listed in denied_permissions. Pass the token as auth_token to other
        tools, or as 'Authorization: Bearer <token>'. Hand sub-agents their own tokens.
        """
        check_agent_id(agent_id)
        requested = parse_permissions(requested_permissions) if requested_permissions else None
        return _result(await auth.authenticate(agent_id, agent_type, api_key, requested))

    @mcp.tool(annotations=WRITE)
    async def refresh_token(
        auth_token: Annotated[str, Field(min_length=1, max_length=8192)],
    ) -> TokenResult:
        """Swap a valid token for a fresh one with the same identity; the old one stops working."""
        return _result(await auth.refresh(auth_token))

    delegation = ctx.app.delegation

    @mcp.tool(annotations=WRITE)
    async def delegate_token(
        agent_id: AgentName,
        session_id: Annotated[str, Field(min_length=1, max_length=64)],
        agent_type: Annotated[
            AgentName | None, Field(description="Yours (the default); no other is allowed.")
        ] = None,
        permissions: Annotated[
            list[PermissionName] | None,
            Field(min_length=1, max_length=4, description="Default: read and write."),
        ] = None,
        expires_in: Annotated[float, Field(gt=0, description="Seconds (default 1 hour).")] = 3600,
        auth_token: AuthToken = None,
    ) -> DelegatedTokenResult:
        """Mint a token for a sub-agent, named "<you>:<agent_id>", of your agent type: it
        works only in session_id, carries read/write you hold, cannot be refreshed or
        delegated further (at most 100 unexpired per delegator),
        and you (or an admin) can revoke it with revoke_token(jti)."""
        caller = await ctx.caller(auth_token)
        minted = await delegation.delegate(
            caller,
            agent_id,
            agent_type,
            session_id,
            parse_permissions(permissions or ["read", "write"]),
            expires_in,
        )
        result = _result(minted.issued)
        return DelegatedTokenResult(
            **result.model_dump(exclude={"success"}), jti=minted.jti, session_id=session_id
        )

    @mcp.tool(annotations=DESTRUCTIVE)
    async def revoke_token(
        jti: Annotated[str, Field(min_length=1, max_length=64)],
        auth_token: AuthToken = None,
    ) -> RevokedResult:
        """Revoke a token you delegated (by the jti delegate_token returned); admins may
        revoke any delegated token. It stops working at once."""
        caller = await ctx.caller(auth_token)
        revoked = await delegation.revoke(caller, jti)
        return RevokedResult(jti=jti, agent_id=revoked.agent_id, session_id=revoked.session_id)
