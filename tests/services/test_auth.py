"""Identity: API keys, tokens (issue, verify, expire, refresh, revoke) and credential resolution."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from shared_context_server.app import App
from shared_context_server.clock import FakeClock
from shared_context_server.domain.models import KeyBinding, Permission
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import (
    AuthFailedError,
    InvalidInputError,
    PermissionDeniedError,
    TokenAlgorithmError,
    TokenAudienceError,
    TokenExpiredError,
    TokenInvalidError,
    TokenRevokedError,
)
from shared_context_server.services.auth import (
    API_KEY_PREFIX,
    AuthService,
    TokenSettings,
    hash_api_key,
)
from tests.conftest import dump_rows

READ = frozenset({Permission.READ})
READ_WRITE = frozenset({Permission.READ, Permission.WRITE})
ALL = frozenset(Permission)
# A key for a team of claude agents, each named freely (the first to use a name keeps it).
TEAM = KeyBinding(agent_pattern="*", agent_types=frozenset({"claude"}))


def _claims(app: App, **overrides: Any) -> dict[str, Any]:
    now = int(app.clock.now().timestamp())
    claims: dict[str, Any] = {
        "sub": "alice",
        "agent_type": "claude",
        "permissions": ["read", "write"],
        "iss": app.settings.jwt_issuer,
        "aud": app.settings.jwt_audience,
        "iat": now,
        "exp": now + 3600,
        "jti": "jti-1",
    }
    claims.update(overrides)
    return claims


def _secret(app: App) -> str:
    assert app.settings.jwt_secret_key is not None
    return app.settings.jwt_secret_key.get_secret_value()


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# API keys -------------------------------------------------------------------------------


async def test_an_api_key_is_shown_once_and_stored_only_as_a_hash(app: App) -> None:
    record, plain = await app.auth.create_api_key("ci-bot", READ_WRITE)
    assert plain.startswith(API_KEY_PREFIX)
    assert (record.name, record.permissions) == ("ci-bot", READ_WRITE)
    key_hash = hash_api_key(plain)
    assert await app.store.read(lambda tx: tx.identity.find_api_key(key_hash)) == record
    dump = dump_rows(app.store.engine)
    assert "ci-bot" in dump
    assert plain not in dump
    assert await app.auth.verify_api_key(plain) == record
    assert "ci-bot" in [k.name for k in await app.auth.list_api_keys()]


async def test_a_revoked_or_unknown_api_key_is_refused(app: App) -> None:
    _, plain = await app.auth.create_api_key("temp", READ)
    assert await app.auth.revoke_api_key("temp") is True
    assert await app.auth.revoke_api_key("temp") is False
    for key in (plain, "scs_not-a-key"):
        with pytest.raises(AuthFailedError):
            await app.auth.verify_api_key(key)


async def test_an_api_key_needs_a_valid_name_and_a_permission(app: App) -> None:
    with pytest.raises(InvalidInputError):
        await app.auth.create_api_key("bad name", READ)
    with pytest.raises(InvalidInputError):
        await app.auth.create_api_key("empty", frozenset())


# authenticate ---------------------------------------------------------------------------


async def test_authenticating_grants_at_most_the_keys_permissions_and_reports_the_rest(
    app: App,
) -> None:
    _, key = await app.auth.create_api_key("agents", READ_WRITE, TEAM)
    issued = await app.auth.authenticate("alice", "claude", key, ALL)
    assert issued.principal == Principal("alice", "claude", READ_WRITE, key_name="agents")
    assert issued.denied == frozenset({Permission.ADMIN, Permission.DEBUG})
    assert await app.auth.verify_token(issued.token) == issued.principal


async def test_authenticating_without_asking_grants_read_and_write(app: App) -> None:
    _, key = await app.auth.create_api_key("agents", ALL, TEAM)
    issued = await app.auth.authenticate("alice", "claude", key)
    assert issued.principal.permissions == READ_WRITE
    assert issued.denied == frozenset()


async def test_authenticating_for_nothing_the_key_allows_is_refused(app: App) -> None:
    _, key = await app.auth.create_api_key("readers", READ, TEAM)
    with pytest.raises(PermissionDeniedError):
        await app.auth.authenticate("alice", "claude", key, frozenset({Permission.WRITE}))


async def test_authenticating_with_a_bad_key_or_agent_id_is_refused(app: App) -> None:
    _, key = await app.auth.create_api_key("agents", READ, TEAM)
    with pytest.raises(AuthFailedError):
        await app.auth.authenticate("alice", "claude", "scs_wrong")
    with pytest.raises(InvalidInputError):
        await app.auth.authenticate("not valid", "claude", key)


async def test_a_token_carries_the_documented_claims(app: App) -> None:
    _, key = await app.auth.create_api_key("agents", READ_WRITE, TEAM)
    issued = await app.auth.authenticate("alice", "claude", key, READ)
    claims = jwt.decode(
        issued.token, _secret(app), algorithms=["HS256"], audience=app.settings.jwt_audience
    )
    assert jwt.get_unverified_header(issued.token)["alg"] == "HS256"
    assert claims["sub"] == "alice"
    assert claims["agent_type"] == "claude"
    assert claims["permissions"] == ["read"]
    assert claims["iss"] == app.settings.jwt_issuer
    assert claims["exp"] - claims["iat"] == app.settings.token_ttl_seconds
    assert claims["jti"]


# token rejection ------------------------------------------------------------------------


async def test_a_token_expires_by_the_servers_clock(
    fake_clock_app: App, clock: FakeClock, alice: Principal
) -> None:
    app = fake_clock_app
    token, expires_at = app.auth.issue_token(alice)
    assert expires_at == clock.now() + timedelta(seconds=app.settings.token_ttl_seconds)
    assert await app.auth.verify_token(token) == alice
    clock.advance(app.settings.token_ttl_seconds - 1)
    assert await app.auth.verify_token(token) == alice
    clock.advance(1)
    with pytest.raises(TokenExpiredError):
        await app.auth.verify_token(token)
    with pytest.raises(TokenExpiredError):
        await app.auth.refresh(token)


async def test_a_token_issued_while_the_clock_is_ahead_of_the_wall_clock_is_valid(
    app: App, alice: Principal
) -> None:
    ahead = FakeClock(datetime.now(UTC) + timedelta(days=400))
    tokens = TokenSettings(_secret(app), app.settings.jwt_issuer, app.settings.jwt_audience, 60)
    auth = AuthService(app.store, ahead, tokens)
    token, _ = auth.issue_token(alice)
    assert await auth.verify_token(token) == alice


async def test_a_token_signed_with_another_secret_is_invalid(app: App) -> None:
    token = jwt.encode(_claims(app), "another-secret-" + "y" * 40, algorithm="HS256")
    with pytest.raises(TokenInvalidError):
        await app.auth.verify_token(token)


async def test_a_token_whose_claims_were_changed_is_invalid(app: App, alice: Principal) -> None:
    token, _ = app.auth.issue_token(alice)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["permissions"] = ["read", "write", "admin"]
    with pytest.raises(TokenInvalidError):
        await app.auth.verify_token(f"{header}.{_b64(claims)}.{signature}")


@pytest.mark.parametrize("token", ["garbage", "a.b.c", ""])
async def test_a_malformed_token_is_invalid(app: App, token: str) -> None:
    with pytest.raises(TokenInvalidError):
        await app.auth.verify_token(token)


async def test_a_token_without_required_claims_is_invalid(app: App) -> None:
    claims = _claims(app)
    del claims["jti"]
    with pytest.raises(TokenInvalidError):
        await app.auth.verify_token(jwt.encode(claims, _secret(app), algorithm="HS256"))


async def test_a_token_for_another_audience_is_refused(app: App) -> None:
    token = jwt.encode(_claims(app, aud="someone-else"), _secret(app), algorithm="HS256")
    with pytest.raises(TokenAudienceError):
        await app.auth.verify_token(token)


async def test_a_token_from_another_issuer_is_invalid(app: App) -> None:
    token = jwt.encode(_claims(app, iss="someone-else"), _secret(app), algorithm="HS256")
    with pytest.raises(TokenInvalidError):
        await app.auth.verify_token(token)


async def test_an_unsigned_alg_none_token_is_refused(app: App) -> None:
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(app))}."
    with pytest.raises(TokenAlgorithmError):
        await app.auth.verify_token(token)


async def test_a_token_signed_with_another_algorithm_is_refused(app: App) -> None:
    token = jwt.encode(_claims(app), _secret(app) + "z" * 30, algorithm="HS512")
    with pytest.raises(TokenAlgorithmError):
        await app.auth.verify_token(token)


# refresh and revocation -----------------------------------------------------------------


async def test_refreshing_gives_a_new_token_and_revokes_the_old_one(
    app: App, alice: Principal
) -> None:
    old, _ = app.auth.issue_token(alice)
    assert await app.auth.verify_token(old) == alice
    refreshed = await app.auth.refresh(old)
    assert refreshed.token != old
    assert refreshed.principal == alice
    assert await app.auth.verify_token(refreshed.token) == alice
    with pytest.raises(TokenRevokedError):
        await app.auth.verify_token(old)
    with pytest.raises(TokenRevokedError):
        await app.auth.refresh(old)


async def test_a_revocation_is_seen_by_another_server_sharing_the_database(
    app: App, alice: Principal
) -> None:
    token, _ = app.auth.issue_token(alice)
    tokens = TokenSettings(_secret(app), app.settings.jwt_issuer, app.settings.jwt_audience, 3600)
    other = AuthService(app.store, app.clock, tokens)
    await app.auth.revoke(token)
    with pytest.raises(TokenRevokedError):
        await other.verify_token(token)


# resolve --------------------------------------------------------------------------------


async def test_an_api_key_resolves_to_an_agent_with_the_keys_permissions(app: App) -> None:
    _, key = await app.auth.create_api_key("ops-bot", ALL)
    by_name = await app.auth.resolve(key)
    assert by_name == Principal("ops-bot", "generic", ALL, source="api_key", key_name="ops-bot")
    _, team = await app.auth.create_api_key("team", READ_WRITE, TEAM)
    named = await app.auth.resolve(team, agent_id="worker-1", agent_type="claude")
    assert named == Principal("worker-1", "claude", READ_WRITE, source="api_key", key_name="team")


async def test_a_jwt_resolves_to_its_agent(app: App, alice: Principal) -> None:
    token, _ = app.auth.issue_token(alice)
    assert await app.auth.resolve(token) == alice


async def test_a_revoked_api_key_does_not_resolve(app: App) -> None:
    _, key = await app.auth.create_api_key("gone", READ)
    await app.auth.revoke_api_key("gone")
    with pytest.raises(AuthFailedError):
        await app.auth.resolve(key)


async def test_a_token_refused_for_its_permissions_registers_no_identity(app: App) -> None:
    _, plain = await app.auth.create_api_key("team-reader", READ, TEAM)
    with pytest.raises(PermissionDeniedError):
        await app.auth.authenticate("newcomer", "claude", plain, frozenset({Permission.WRITE}))
    assert await app.store.read(lambda tx: tx.identity.owner("newcomer")) is None
    issued = await app.auth.authenticate("newcomer", "claude", plain, frozenset(READ))
    assert issued.principal.permissions == READ
