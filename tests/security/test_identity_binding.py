"""Issue 8, found in review: ids bound to keys by name cannot be claimed first by a pattern
key; sub-agents keep their delegator's type and budget; refusals are audited, boundedly.
On SQLite and PostgreSQL, through the services and a real MCP client."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from shared_context_server.app import App
from shared_context_server.domain.models import KeyBinding, Permission
from shared_context_server.errors import IdentityNotAllowedError, LimitExceededError
from shared_context_server.services.auth import REFUSALS_AUDITED_BURST
from shared_context_server.storage.tables import audit_log
from tests.mcp.conftest import connect_client, fails, ok

RW = frozenset({Permission.READ, Permission.WRITE})
CLAUDE = frozenset({"claude"})
ANYONE = KeyBinding(agent_pattern="*", agent_types=CLAUDE)


async def test_a_pattern_key_cannot_claim_an_id_a_key_is_bound_to_before_its_first_use(
    backend_app: App,
) -> None:
    auth = backend_app.auth
    _, alice_key = await auth.create_api_key(
        "alice-key", RW, KeyBinding("alice", agent_types=CLAUDE)
    )
    _, pattern = await auth.create_api_key("anyone", RW, ANYONE)
    with pytest.raises(IdentityNotAllowedError):
        await auth.authenticate("alice", "claude", pattern)
    with pytest.raises(IdentityNotAllowedError):
        await auth.resolve(pattern, "alice")
    assert (await auth.authenticate("alice", "claude", alice_key)).principal.agent_id == "alice"
    # An id a pattern key registered cannot be handed to a new key by name ...
    await auth.authenticate("worker-1", "claude", pattern)
    with pytest.raises(IdentityNotAllowedError):
        await auth.create_api_key("w1", RW, KeyBinding("worker-1", agent_types=CLAUDE))
    # ... but a key bound by name may be rotated: a second key for alice acts as her.
    _, rotated = await auth.create_api_key("alice-2", RW, KeyBinding("alice", agent_types=CLAUDE))
    assert (await auth.resolve(rotated)).agent_id == "alice"


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_a_sub_agent_has_its_delegators_type(backend_app: App, mode: str) -> None:
    _, key = await backend_app.auth.create_api_key("gen", RW, KeyBinding("gen"))
    async with connect_client(backend_app, key, mode=mode) as gen:
        session_id = (await ok(gen, "create_session", purpose="p"))["session"]["id"]
        widened = await fails(
            gen, "delegate_token", agent_id="x", session_id=session_id, agent_type="claude"
        )
        assert (widened["code"], widened["details"]["reason"]) == (
            "IDENTITY_NOT_ALLOWED",
            "agent_type",
        )
        minted = await ok(gen, "delegate_token", agent_id="x", session_id=session_id)
        assert minted["agent_type"] == "generic"


async def test_one_agent_may_hold_a_bounded_number_of_delegations(backend_app: App) -> None:
    _, key = await backend_app.auth.create_api_key("orch", RW, KeyBinding("orch"))
    orch = await backend_app.auth.resolve(key)
    session = await backend_app.sessions.create(orch, "many helpers")
    delegation = backend_app.delegation
    limit = backend_app.settings.abuse.delegations_per_agent
    for i in range(limit):
        minted = await delegation.delegate(orch, f"h{i}", None, session.id, RW, 60)
    # Revoking does not make room: a revoked delegation counts until it expires.
    await delegation.revoke(orch, minted.jti)
    with pytest.raises(LimitExceededError):
        await delegation.delegate(orch, "one-more", None, session.id, RW, 60)


async def test_refusals_are_audited_but_a_flood_of_them_is_not(backend_app: App) -> None:
    _, key = await backend_app.auth.create_api_key(
        "ro", frozenset({Permission.READ}), KeyBinding("ro")
    )
    for i in range(REFUSALS_AUDITED_BURST + 20):
        with pytest.raises(IdentityNotAllowedError):
            await backend_app.auth.resolve(key, f"victim-{i}")
    refused = sa.select(sa.func.count()).where(audit_log.c.event_type == "auth.identity_refused")
    with backend_app.store.engine.connect() as conn:
        assert conn.execute(refused).scalar_one() == REFUSALS_AUDITED_BURST
