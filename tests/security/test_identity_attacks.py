"""Security: every way of presenting a false or inflated identity is refused, precisely."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest

from shared_context_server.app import App
from shared_context_server.clock import FakeClock
from shared_context_server.domain.models import Permission
from tests.mcp.conftest import connect_client, fails, ok, token_for


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(app: App, **overrides: Any) -> dict[str, Any]:
    now = int(app.clock.now().timestamp())
    claims = {
        "sub": "mallory",
        "agent_type": "claude",
        "permissions": ["read", "write", "admin"],
        "iss": app.settings.jwt_issuer,
        "aud": app.settings.jwt_audience,
        "iat": now,
        "exp": now + 600,
        "jti": "attack",
    }
    claims.update(overrides)
    return claims


def _secret(app: App) -> str:
    assert app.settings.jwt_secret_key is not None
    return app.settings.jwt_secret_key.get_secret_value()


async def _code(app: App, token: str) -> str:
    async with connect_client(app) as client:
        return str((await fails(client, "list_sessions", auth_token=token))["code"])


async def test_no_identity_is_refused_everywhere(app: App) -> None:
    async with connect_client(app) as client:
        for tool, args in [
            ("list_sessions", {}),
            ("create_session", {"purpose": "p"}),
            ("get_memory", {"key": "k"}),
            ("search_context", {"session_id": "s", "query": "q"}),
        ]:
            assert (await fails(client, tool, **args))["code"] == "AUTH_REQUIRED", tool


async def test_a_bad_api_key_is_refused(app: App) -> None:
    assert await _code(app, "scs_not-a-real-key") == "AUTH_FAILED"
    async with connect_client(app) as client:
        error = await fails(client, "authenticate_agent", agent_id="a", api_key="nope")
    assert error["code"] == "AUTH_FAILED"


async def test_a_tampered_token_is_refused(app: App) -> None:
    token = token_for(app, "alice")
    header, _, signature = token.split(".")
    forged = _b64(_claims(app, sub="alice"))
    assert await _code(app, f"{header}.{forged}.{signature}") == "TOKEN_INVALID"


async def test_a_token_signed_with_another_secret_is_refused(app: App) -> None:
    token = jwt.encode(_claims(app), "some-other-secret-" + "z" * 40, algorithm="HS256")
    assert await _code(app, token) == "TOKEN_INVALID"


async def test_an_alg_none_token_is_refused(app: App) -> None:
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(app))}."
    assert await _code(app, token) == "TOKEN_UNSUPPORTED_ALGORITHM"


async def test_another_algorithm_is_refused(app: App) -> None:
    token = jwt.encode(_claims(app), _secret(app), algorithm="HS384")
    assert await _code(app, token) == "TOKEN_UNSUPPORTED_ALGORITHM"


async def test_a_wrong_audience_token_is_refused(app: App) -> None:
    token = jwt.encode(_claims(app, aud="another-service"), _secret(app), algorithm="HS256")
    assert await _code(app, token) == "TOKEN_WRONG_AUDIENCE"


async def test_a_token_missing_claims_is_refused(app: App) -> None:
    claims = _claims(app)
    del claims["jti"]
    assert await _code(app, jwt.encode(claims, _secret(app), algorithm="HS256")) == (
        "TOKEN_INVALID"
    )


async def test_a_token_with_a_forged_permission_name_is_refused(app: App) -> None:
    token = jwt.encode(_claims(app, permissions=["root"]), _secret(app), algorithm="HS256")
    assert await _code(app, token) == "TOKEN_INVALID"


async def test_an_expired_token_is_refused(fake_clock_app: App, clock: FakeClock) -> None:
    token = token_for(fake_clock_app, "alice")
    async with connect_client(fake_clock_app) as client:
        await ok(client, "list_sessions", auth_token=token)
        clock.advance(fake_clock_app.settings.token_ttl_seconds + 1)
        error = await fails(client, "list_sessions", auth_token=token)
    assert error["code"] == "TOKEN_EXPIRED"


async def test_asking_for_more_than_the_key_allows_grants_only_what_it_allows(app: App) -> None:
    _, key = await app.auth.create_api_key("greedy", frozenset({Permission.READ}))
    async with connect_client(app) as client:
        issued = await ok(
            client,
            "authenticate_agent",
            agent_id="greedy",
            api_key=key,
            requested_permissions=["read", "write", "admin", "debug"],
        )
        assert issued["permissions"] == ["read"]
        claims = jwt.decode(issued["token"], options={"verify_signature": False})
        assert claims["permissions"] == ["read"]
        error = await fails(
            client, "add_private_note", session_id="s", content="x", auth_token=issued["token"]
        )
        assert error["code"] == "PERMISSION_DENIED"


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("create_session", {"purpose": "p"}),
        ("add_message", {"session_id": "s", "content": "x"}),
        ("add_private_note", {"session_id": "s", "content": "x"}),
        ("set_memory", {"key": "k", "value": 1}),
        ("delete_memory", {"key": "k"}),
        ("update_session", {"session_id": "s", "status": "archived"}),
    ],
)
async def test_writing_without_write_is_refused(app: App, tool: str, args: dict[str, Any]) -> None:
    reader = token_for(app, "reader", permissions=frozenset({Permission.READ}))
    async with connect_client(app) as client:
        error = await fails(client, tool, auth_token=reader, **args)
    assert error["code"] == "PERMISSION_DENIED"


async def test_revoking_an_api_key_ends_the_tokens_obtained_with_it(app: App) -> None:
    _, key = await app.auth.create_api_key("leaked", frozenset({Permission.READ}))
    async with connect_client(app) as client:
        token = (await ok(client, "authenticate_agent", agent_id="leaked", api_key=key))["token"]
        await ok(client, "list_sessions", auth_token=token)
        await app.auth.revoke_api_key("leaked")
        assert (await fails(client, "list_sessions", auth_token=token))["code"] == "TOKEN_REVOKED"
