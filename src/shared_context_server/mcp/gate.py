"""The HTTP gate in front of ``/mcp``: who is asking, and whether they may open a session.

- A bearer credential is checked on every request; a bad one gets 401 and the challenge
  of the MCP authorization spec, is audited and counts against its address's failure
  budget (``auth_failures.py``); over budget, the answer is 429 without a lookup.
- A 2025-11-25 ``initialize`` (a POST without ``mcp-session-id`` on the handshake route)
  opens a stateful session that holds memory and a task until it ends, so it needs an
  identity: without one it gets 401 and the challenge. 2026-07-28 requests are stateless
  and pass, so ``authenticate_agent`` still works without an identity.
- The session is bound to the identity that opened it: ``scope["user"]`` carries the
  agent, and the SDK answers 404 to a request for the session from anyone else.
- Open sessions are capped per identity (429) and in all (503), each refusal with a
  ``Retry-After``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import anyio
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared_context_server.config import Abuse
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import (
    AuthRequiredError,
    DomainError,
    LimitExceededError,
)
from shared_context_server.mcp.identity import AGENT_ID_HEADER, AGENT_TYPE_HEADER, bearer
from shared_context_server.mcp.sessions import SessionTable
from shared_context_server.services.auth import AuthService
from shared_context_server.services.auth_failures import (
    FAILED_AUTH_CODES,
    AuthFailures,
    address_key,
    claimed,
    is_jwt,
    rate_limited,
    retry_after,
)

MCP_PATH = "/mcp"
METADATA_PATH = "/.well-known/oauth-protected-resource"
ISSUER = "shared-context-server"


def user_of(principal: Principal) -> AuthenticatedUser:
    """The agent as the SDK's authenticated user: sessions are bound to its agent id
    (``subject``) and counted against its delegator's, if any (``client_id``)."""
    permissions = sorted(p.value for p in principal.permissions)
    token = AccessToken(
        token="",  # the credential stays in the request; nothing here needs it
        client_id=principal.root_id,
        subject=principal.agent_id,
        scopes=permissions,
        claims={"iss": ISSUER},
    )
    return AuthenticatedUser(token)


def reply(status: int, error: DomainError, headers: dict[str, str] | None = None) -> Response:
    body = {"success": False, "code": error.code, "error": error.message, "details": error.details}
    return Response(json.dumps(body), status, headers, media_type="application/json")


def challenge(error: DomainError, scope: Scope, *, credential_sent: bool) -> Response:
    """401 with ``WWW-Authenticate: Bearer``; no error code when no credential was sent
    (RFC 6750 §3.1)."""
    host = Headers(scope=scope).get("host", "localhost")
    metadata = f'resource_metadata="{scope.get("scheme", "http")}://{host}{METADATA_PATH}"'
    value = f'Bearer error="invalid_token", {metadata}' if credential_sent else f"Bearer {metadata}"
    return reply(401, error, {"WWW-Authenticate": value})


def limited(status: int, error: DomainError) -> Response:
    seconds = error.details.get("retry_after", 1)
    return reply(status, error, {"Retry-After": str(int(seconds))})


def opens_session(scope: Scope, headers: Headers) -> bool:
    """Could this request open a 2025-11-25 session? (Its body decides: ``initialize``.)"""
    if scope["method"] != "POST" or scope["path"].rstrip("/") != MCP_PATH:
        return False
    if MCP_SESSION_ID_HEADER in headers:
        return False
    version = headers.get(MCP_PROTOCOL_VERSION_HEADER)
    return version is None or version in HANDSHAKE_PROTOCOL_VERSIONS


def is_initialize(body: bytes) -> bool:
    try:
        message = json.loads(body)
    except ValueError:
        return False
    messages = message if isinstance(message, list) else [message]
    return any(isinstance(m, dict) and m.get("method") == "initialize" for m in messages)


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, read once (at most ``limit`` + 1 bytes); None if the client left."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False) or size > limit:
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app ``body`` first, then whatever the client sends."""
    pending = True

    async def again() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


class _Turns:
    """One session-opening request at a time per identity, so a burst cannot overshoot
    the cap: the turn ends when the response starts (the session is registered by then)."""

    def __init__(self) -> None:
        # Semaphores, not locks: the response may start in another task than the request.
        self._locks: dict[str, tuple[anyio.Semaphore, int]] = {}

    async def take(self, key: str) -> Callable[[], None]:
        lock, users = self._locks.get(key, (anyio.Semaphore(1), 0))
        self._locks[key] = (lock, users + 1)
        await lock.acquire()
        done = False

        def release() -> None:
            nonlocal done
            if done:
                return
            done = True
            lock.release()
            held, count = self._locks[key]
            if count <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (held, count - 1)

        return release


@dataclass(frozen=True, slots=True)
class GateSettings:
    auth: AuthService
    failures: AuthFailures
    sessions: SessionTable
    abuse: Abuse


class Gate:
    def __init__(self, app: ASGIApp, settings: GateSettings) -> None:
        self.app = app
        self._auth = settings.auth
        self._failures = settings.failures
        self._sessions = settings.sessions
        self._abuse = settings.abuse
        self._turns = _Turns()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        opening = opens_session(scope, headers)
        if opening:
            body = await read_body(receive, DEFAULT_MAX_REQUEST_BODY_SIZE)
            if body is None:
                return
            receive = replay(body, receive)
            opening = is_initialize(body)
        credential = bearer(headers)
        if credential:
            found = await self._authenticate(scope, headers, credential)
            if isinstance(found, Response):
                await found(scope, receive, send)
                return
            scope["user"] = user_of(found)
            if opening:
                await self._open(found, scope, receive, send)
                return
        elif opening:
            error = AuthRequiredError(
                "opening a 2025-11-25 session needs an identity: send 'Authorization: "
                "Bearer <token or API key>' (2026-07-28 requests, and authenticate_agent "
                "in them, need none)"
            )
            await challenge(error, scope, credential_sent=False)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _authenticate(
        self, scope: Scope, headers: Headers, credential: str
    ) -> Principal | Response:
        client = scope.get("client")
        address = address_key(str(client[0])) if client else None
        # An API key lookup spends its failure up front, so concurrent bad keys cannot
        # outrun the budget; a key verified lately is let through a spent one.
        reserved = not is_jwt(credential) and not self._auth.known_key(credential)
        if reserved:
            wait = self._failures.reserve(address)
            if wait:
                return limited(429, rate_limited(wait))
        counted = False
        try:
            return await self._auth.resolve(
                credential, headers.get(AGENT_ID_HEADER), headers.get(AGENT_TYPE_HEADER)
            )
        except DomainError as exc:
            if exc.code in FAILED_AUTH_CODES:
                counted = True
                agent_id = claimed(headers.get(AGENT_ID_HEADER))
                wait = await self._failures.failed(
                    address, exc.code, "bearer", agent_id, reserved=reserved
                )
                if wait:
                    return limited(429, rate_limited(wait))
            return challenge(exc, scope, credential_sent=True)
        finally:
            if reserved and not counted:
                self._failures.refund(address)

    async def _open(self, principal: Principal, scope: Scope, receive: Receive, send: Send) -> None:
        release = await self._turns.take(principal.agent_id)
        try:
            refusal = self._refusal(principal)
            if refusal is not None:
                await refusal(scope, receive, send)
                return

            async def started(message: Message) -> None:
                if message["type"] == "http.response.start":
                    release()
                await send(message)

            await self.app(scope, receive, started)
        finally:
            release()

    def _refusal(self, principal: Principal) -> Response | None:
        table, abuse = self._sessions, self._abuse
        if table.total() >= abuse.mcp_sessions_total:
            wait = table.soonest_idle_end(None, abuse.mcp_session_idle_seconds)
            error = LimitExceededError(
                "the server has as many open sessions as it takes; retry later, or use "
                "the 2026-07-28 protocol (no sessions)",
                limit=abuse.mcp_sessions_total,
                retry_after=retry_after(wait),
            )
            return limited(503, error)
        if table.owned_by(principal.root_id) >= abuse.mcp_sessions_per_agent:
            wait = table.soonest_idle_end(principal.root_id, abuse.mcp_session_idle_seconds)
            error = LimitExceededError(
                f"{principal.agent_id} has {abuse.mcp_sessions_per_agent} open sessions, "
                "the most one agent may; close one (DELETE) or let one go idle",
                limit=abuse.mcp_sessions_per_agent,
                retry_after=retry_after(wait),
            )
            return limited(429, error)
        return None
