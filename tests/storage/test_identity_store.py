"""The identity repository on every backend: API keys, the registry of agent ids, revoked
tokens and delegations (with the registration and revocation steps the auth service runs
in its units of work)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from shared_context_server.domain.access import IdentityOwner
from shared_context_server.domain.audit import system_audit
from shared_context_server.domain.models import ApiKey, Delegation, KeyBinding, Permission
from shared_context_server.errors import ConflictError
from shared_context_server.services.auth import register_identity, revoke_token
from shared_context_server.storage.sql.store import SqlStore
from tests.storage.factories import T0, at

READ = frozenset({Permission.READ})
ALL = frozenset(Permission)
BOUND = KeyBinding("ci", agent_types=frozenset({"claude", "codex"}))


async def _create_key(
    store: SqlStore,
    key_id: str,
    name: str,
    key_hash: str,
    permissions: frozenset[Permission],
    binding: KeyBinding,
    now: datetime,
) -> None:
    key = ApiKey(key_id, name, permissions, now, binding)
    await store.write(lambda tx: tx.identity.insert_api_key(key, key_hash))


async def _find(store: SqlStore, key_hash: str) -> ApiKey | None:
    return await store.read(lambda tx: tx.identity.find_api_key(key_hash))


async def _keys(store: SqlStore) -> list[ApiKey]:
    return await store.read(lambda tx: tx.identity.list_api_keys())


async def _revoke_key(store: SqlStore, name: str, now: datetime) -> bool:
    done = await store.write(lambda tx: tx.identity.revoke_api_key(name, now))
    return done.value is not None


async def _revoke_token(store: SqlStore, jti: str, expires_at: datetime) -> None:
    event = system_audit("auth.token_revoked", T0, target=jti)
    await store.write(lambda tx: revoke_token(tx, jti, expires_at, event))


async def _is_revoked(store: SqlStore, jti: str) -> bool:
    return await store.read(lambda tx: tx.identity.is_token_revoked(jti))


async def _owner(store: SqlStore, agent_id: str) -> IdentityOwner | None:
    return await store.read(lambda tx: tx.identity.owner(agent_id))


async def _register(
    store: SqlStore, agent_id: str, key_name: str | None, now: datetime
) -> IdentityOwner:
    done = await store.write(lambda tx: register_identity(tx, agent_id, key_name, now))
    return done.value


async def test_api_keys_are_created_found_by_hash_and_listed(store: SqlStore) -> None:
    await _create_key(store, "id1", "ci", "a" * 64, READ, BOUND, T0)
    created = await _find(store, "a" * 64)
    assert created is not None
    assert (created.id, created.name, created.permissions, created.revoked_at) == (
        "id1",
        "ci",
        READ,
        None,
    )
    assert created.binding == BOUND
    await _create_key(store, "id2", "ops", "b" * 64, ALL, BOUND, at(1))
    assert await _find(store, "a" * 64) == created
    assert await _find(store, "c" * 64) is None
    listed = await _keys(store)
    assert [(k.name, k.permissions, k.created_at) for k in listed] == [
        ("ci", READ, T0),
        ("ops", ALL, at(1)),
    ]
    assert await store.read(lambda tx: tx.identity.get_api_key("ops")) == listed[1]
    assert await store.read(lambda tx: tx.identity.get_api_key("nobody")) is None


async def test_an_api_key_name_is_unique(store: SqlStore) -> None:
    await _create_key(store, "id1", "ci", "a" * 64, READ, BOUND, T0)
    with pytest.raises(ConflictError):
        await _create_key(store, "id2", "ci", "b" * 64, ALL, BOUND, T0)
    assert [k.id for k in await _keys(store)] == ["id1"]


async def test_an_api_key_secret_is_unique(store: SqlStore) -> None:
    await _create_key(store, "id1", "ci", "a" * 64, READ, BOUND, T0)
    with pytest.raises(ConflictError):
        await _create_key(store, "id2", "other", "a" * 64, ALL, BOUND, T0)


async def test_a_revoked_api_key_stays_listed_with_its_revocation_time(store: SqlStore) -> None:
    await _create_key(store, "id1", "ci", "a" * 64, READ, BOUND, T0)
    assert await store.read(lambda tx: tx.identity.is_key_revoked("ci")) is False
    assert await _revoke_key(store, "ci", at(5)) is True
    assert await _revoke_key(store, "ci", at(6)) is False
    assert await _revoke_key(store, "unknown", at(6)) is False
    found = await _find(store, "a" * 64)
    assert found is not None
    assert found.revoked_at == at(5)
    assert [k.revoked_at for k in await _keys(store)] == [at(5)]
    assert await store.read(lambda tx: tx.identity.is_key_revoked("ci")) is True


async def test_revoked_tokens_are_remembered_and_revoking_twice_is_harmless(
    store: SqlStore,
) -> None:
    assert await _is_revoked(store, "jti-1") is False
    await _revoke_token(store, "jti-1", at(100))
    await _revoke_token(store, "jti-1", at(100))
    assert await _is_revoked(store, "jti-1") is True
    assert await _is_revoked(store, "jti-2") is False


async def test_key_bindings_are_stored_as_given(store: SqlStore) -> None:
    bindings = {
        "fixed": BOUND,
        "pool": KeyBinding(agent_pattern="worker-*", agent_types=frozenset({"codex"})),
        "ops": KeyBinding(agent_types=None, any_agent=True),
    }
    for n, (name, binding) in enumerate(bindings.items()):
        await _create_key(store, f"id{n}", name, str(n) * 64, READ, binding, T0)
    assert {k.name: k.binding for k in await _keys(store)} == bindings


async def test_an_agent_id_is_registered_once_to_whoever_came_first(
    open_store: Any,
) -> None:
    first, second = open_store(), open_store()
    assert await _owner(first, "worker-1") is None
    assert await _register(first, "worker-1", "pool", T0) == IdentityOwner("pool")
    # Another process (or key) coming second learns who holds it; nothing changes.
    assert await _register(second, "worker-1", "other", at(1)) == IdentityOwner("pool")
    assert await _register(second, "alice", None, at(1)) == IdentityOwner(None)
    assert await _owner(first, "worker-1") == IdentityOwner("pool")
    assert await _owner(first, "alice") == IdentityOwner(None)


async def test_the_unexpired_delegations_of_a_key_are_found(store: SqlStore) -> None:
    for jti, key_name, expires in (("a", "k", at(10)), ("b", "k", at(1)), ("c", None, at(10))):
        delegation = Delegation(
            jti, "orch", f"orch:{jti}", "s", READ, T0, expires, key_name=key_name
        )
        await store.write(lambda tx, d=delegation: tx.identity.insert_delegation(d))
    assert [
        d.jti for d in await store.read(lambda tx: tx.identity.delegations_of_key("k", at(5)))
    ] == ["a"]
    assert await store.read(lambda tx: tx.identity.get_delegation("a")) == Delegation(
        "a", "orch", "orch:a", "s", READ, T0, at(10), key_name="k"
    )
    assert await store.read(lambda tx: tx.identity.get_delegation("zz")) is None
    # Unexpired ones count, whatever key they came from.
    assert await store.read(lambda tx: tx.identity.count_live_delegations("orch", at(5))) == 2
    assert await store.read(lambda tx: tx.identity.count_live_delegations("orch", at(10))) == 0
