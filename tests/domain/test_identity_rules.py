"""Who may act as whom (domain/access.py): key bindings, first registration, reserved ids,
and the lock rules that keep anyone from locking people out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared_context_server.domain.access import (
    IdentityOwner,
    is_own_delegate,
    require_may_act_as,
    require_may_lock_exclusive,
    require_may_release,
)
from shared_context_server.domain.models import ApiKey, KeyBinding, Permission
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import IdentityNotAllowedError, PermissionDeniedError

RW = frozenset({Permission.READ, Permission.WRITE})
T0 = datetime(2026, 1, 1, tzinfo=UTC)
CLAUDE = frozenset({"claude"})


def key(name: str, binding: KeyBinding) -> ApiKey:
    return ApiKey(name, name, RW, T0, binding)


FIXED = key("alice-key", KeyBinding("alice", agent_types=CLAUDE))
WORKERS = key("workers", KeyBinding(agent_pattern="worker-*", agent_types=CLAUDE))
OPERATOR = key("ops", KeyBinding(agent_types=None, any_agent=True))


def reason(grant: ApiKey, agent_id: str, agent_type: str, owner: IdentityOwner | None) -> str:
    with pytest.raises(IdentityNotAllowedError) as refused:
        require_may_act_as(grant, agent_id, agent_type, owner)
    return str(refused.value.details["reason"])


def test_a_fixed_key_acts_as_its_agent_even_once_registered() -> None:
    require_may_act_as(FIXED, "alice", "claude", None)
    require_may_act_as(FIXED, "alice", "claude", IdentityOwner("another-key"))
    assert reason(FIXED, "bob", "claude", None) == "binding"
    assert reason(FIXED, "alice", "gemini", None) == "agent_type"


def test_a_pattern_key_takes_only_matching_ids_nobody_else_registered() -> None:
    require_may_act_as(WORKERS, "worker-1", "claude", None)
    require_may_act_as(WORKERS, "worker-1", "claude", IdentityOwner("workers"))
    assert reason(WORKERS, "worker-1", "claude", IdentityOwner("other")) == "owned"
    assert reason(WORKERS, "worker-1", "claude", IdentityOwner(None)) == "owned"
    assert reason(WORKERS, "planner", "claude", None) == "binding"
    assert reason(WORKERS, "Worker-1", "claude", None) == "binding"  # case matters


def test_an_operator_key_names_anyone_but_sub_agents_and_the_server() -> None:
    require_may_act_as(OPERATOR, "alice", "anything", IdentityOwner("alice-key"))
    assert reason(OPERATOR, "alice:helper", "claude", None) == "delegated_id"
    assert reason(OPERATOR, "system", "claude", None) == "reserved"
    assert reason(WORKERS, "worker-1:x", "claude", None) == "delegated_id"


def test_only_the_creator_their_sub_agents_and_admins_lock_exclusively() -> None:
    alice = Principal("alice", "claude", RW)
    helper = Principal("alice:h", "claude", RW, session_id="s", delegated_by="alice")
    admin = Principal("root", "claude", RW | {Permission.ADMIN})
    for principal in (alice, helper, admin):
        require_may_lock_exclusive(principal, "alice")
    with pytest.raises(PermissionDeniedError):
        require_may_lock_exclusive(Principal("bob", "claude", RW), "alice")


def test_a_delegator_releases_its_own_sub_agents_locks_only() -> None:
    alice = Principal("alice", "claude", RW)
    require_may_release(alice, "alice")
    require_may_release(alice, "alice:helper")
    assert is_own_delegate(alice, "alice:helper")
    for holder in ("bob", "bob:helper", "alicex:helper", "alice-2"):
        with pytest.raises(PermissionDeniedError):
            require_may_release(alice, holder)
    helper = Principal("alice:h", "claude", RW, session_id="s", delegated_by="alice")
    with pytest.raises(PermissionDeniedError):
        require_may_release(helper, "alice:h:x")
