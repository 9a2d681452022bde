"""THE access rules: who may read which message and who may do what.

This module alone decides. ``can_read_message`` judges one message (a read by id, a
visibility change), ``can_hear`` one change event (live notifications, waits);
``ReadScope`` carries the same rule to storage, which turns it into SQL for lists and
search. A test proves the two agree; nothing else writes a visibility rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Protocol

from shared_context_server.domain.audit import SYSTEM_AGENT
from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.memory import GLOBAL_SCOPE
from shared_context_server.domain.models import ApiKey, Delegation, Message, Permission, Visibility
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import IdentityNotAllowedError, PermissionDeniedError

# Ids of the form "<delegator>:<name>" are minted only by delegation.
DELEGATE_SEPARATOR = ":"
RESERVED_AGENT_IDS = frozenset({SYSTEM_AGENT})


class VisibleMessage(Protocol):
    """What the rule needs to know of a message."""

    @property
    def sender(self) -> str: ...
    @property
    def sender_type(self) -> str: ...
    @property
    def visibility(self) -> Visibility: ...


@dataclass(frozen=True, slots=True)
class ReadScope:
    """The set of messages a reader may see, in a form storage can compile to SQL.

    A message is visible when it is public; or private and sent by ``agent_id``; or
    agent_only and its sender_type is ``agent_type``; or admin_only and ``admin``.
    ``include_private`` lets a reader leave out even their own private notes.
    """

    agent_id: str
    agent_type: str
    admin: bool
    include_private: bool = True

    def allows(self, message: VisibleMessage) -> bool:
        return self.allows_posted(message.sender, message.sender_type, message.visibility)

    def allows_posted(self, sender: str, sender_type: str, visibility: Visibility) -> bool:
        match visibility:
            case Visibility.PUBLIC:
                return True
            case Visibility.PRIVATE:
                return self.include_private and sender == self.agent_id
            case Visibility.AGENT_ONLY:
                return sender_type == self.agent_type
            case Visibility.ADMIN_ONLY:
                return self.admin


def read_scope(
    principal: Principal, *, include_private: bool = True, include_admin_only: bool = True
) -> ReadScope:
    return ReadScope(
        agent_id=principal.agent_id,
        agent_type=principal.agent_type,
        admin=principal.is_admin and include_admin_only,
        include_private=include_private,
    )


def memory_scopes(principal: Principal) -> tuple[str, ...] | None:
    """The scopes of the caller's memory a listing of every scope covers: all of them
    (None), or for a token limited to one session its global memory and that session's."""
    if principal.session_id is None:
        return None
    return (GLOBAL_SCOPE, principal.session_id)


def can_read_message(principal: Principal, message: Message) -> bool:
    """Whether ``principal`` may read ``message`` (its session, and the visibility rule)."""
    return principal.may_access(message.session_id) and read_scope(principal).allows(message)


def can_hear(principal: Principal, event: ChangeEvent) -> bool:
    """Whether a reader may learn of a change: message events follow the message's rule,
    session events reach every reader; credential events, none."""
    if event.kind is EventKind.CREDENTIAL_REVOKED:
        return False
    if not principal.has(Permission.READ) or not principal.may_access(event.session_id):
        return False
    if event.visibility is None or event.sender_type is None:
        return True
    scope = read_scope(principal)
    if scope.allows_posted(event.agent_id, event.sender_type, event.visibility):
        return True
    old = (
        event.payload.get("old_visibility") if event.kind is EventKind.VISIBILITY_CHANGED else None
    )
    return old is not None and scope.allows_posted(
        event.agent_id, event.sender_type, Visibility(old)
    )


def require_session(principal: Principal, session_id: str) -> None:
    """A delegated token works in its own session only."""
    if not principal.may_access(session_id):
        raise PermissionDeniedError(
            "this token is limited to another session", session_id=session_id
        )


def require(principal: Principal, permission: Permission) -> None:
    if not principal.has(permission):
        raise PermissionDeniedError(
            f"this action needs the '{permission.value}' permission",
            required=permission.value,
            granted=sorted(p.value for p in principal.permissions),
        )


def require_can_post(principal: Principal, visibility: Visibility) -> None:
    """Writing needs ``write``; an admin_only message needs ``admin`` too."""
    require(principal, Permission.WRITE)
    if visibility is Visibility.ADMIN_ONLY:
        require(principal, Permission.ADMIN)


def require_may_change_visibility(
    principal: Principal, message: VisibleMessage, visibility: Visibility
) -> None:
    """The sender may change their own message's visibility; another agent's message
    needs ``admin``, as does making any message admin_only."""
    require(principal, Permission.WRITE)
    if message.sender != principal.agent_id or visibility is Visibility.ADMIN_ONLY:
        require(principal, Permission.ADMIN)


def require_may_monitor(principal: Principal) -> None:
    """The server's numbers (calls, errors, latency, activity) are an operator's view:
    ``admin`` or ``debug``."""
    if not (principal.has(Permission.ADMIN) or principal.has(Permission.DEBUG)):
        raise PermissionDeniedError(
            "monitoring needs the admin or debug permission", agent_id=principal.agent_id
        )


def require_may_update_session(principal: Principal, session_creator: str, session_id: str) -> None:
    """A session's purpose, metadata and status are its creator's (or an admin's) to change."""
    if session_creator != principal.agent_id and not principal.is_admin:
        raise PermissionDeniedError(
            "only the session's creator or an admin may update it", session_id=session_id
        )


def require_memory_owner(principal: Principal, owner: str) -> None:
    """Memory belongs to one agent; nobody else reads or writes it, admins included."""
    if principal.agent_id != owner:
        raise PermissionDeniedError("agents may only access their own memory", owner=owner)


def activity_scope(principal: Principal, agent_id: str | None) -> str | None:
    """Whose activity summary the caller may read: an admin anyone's (``None`` = everyone);
    any other reader only their own (naming another agent is refused)."""
    if principal.is_admin:
        return agent_id
    require(principal, Permission.READ)
    if agent_id is not None and agent_id != principal.agent_id:
        raise PermissionDeniedError(
            "only an admin may read another agent's activity", agent_id=agent_id
        )
    return principal.agent_id


# --- who may act as whom ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IdentityOwner:
    """Who registered an agent id first: an API key (by name) or, ``None``, an operator."""

    key_name: str | None


def require_mintable(agent_id: str) -> None:
    """No credential names a sub-agent id or a reserved id outside delegation."""
    if DELEGATE_SEPARATOR in agent_id:
        raise IdentityNotAllowedError(
            f"ids with '{DELEGATE_SEPARATOR}' name delegated sub-agents; use delegate_token",
            agent_id=agent_id,
            reason="delegated_id",
        )
    if agent_id in RESERVED_AGENT_IDS:
        raise IdentityNotAllowedError(
            f"{agent_id!r} is reserved for the server", agent_id=agent_id, reason="reserved"
        )


def require_may_act_as(
    key: ApiKey, agent_id: str, agent_type: str, owner: IdentityOwner | None
) -> None:
    """An API key proves who is speaking: it acts only as the ids and types it is bound to.

    An operator key (any agent) names anyone. A key bound to one id by name may act as
    that id even if it exists already (an operator bound it on purpose, e.g. to rotate a
    key). A pattern key may act as a matching id that no one has registered yet, or that
    it registered itself (``owner``: who registered the id; ``None`` if nobody has).
    """
    require_mintable(agent_id)
    binding = key.binding
    if binding.agent_types is not None and agent_type not in binding.agent_types:
        raise IdentityNotAllowedError(
            f"this key may act as agent types {', '.join(sorted(binding.agent_types))} only",
            agent_type=agent_type,
            reason="agent_type",
        )
    if binding.any_agent or binding.agent_id == agent_id:
        return
    if binding.agent_pattern is None or not fnmatchcase(agent_id, binding.agent_pattern):
        raise IdentityNotAllowedError(
            f"this key may act as {binding.describe()} only", agent_id=agent_id, reason="binding"
        )
    if owner is not None and owner.key_name != key.name:
        raise IdentityNotAllowedError(
            f"agent id {agent_id!r} belongs to another key", agent_id=agent_id, reason="owned"
        )


# --- locks and delegations ---------------------------------------------------------------


def require_may_lock_exclusive(principal: Principal, session_creator: str) -> None:
    """An exclusive lock makes a session read-only for everyone else, so only its creator,
    the creator's own sub-agents and admins may take one."""
    if principal.is_admin or session_creator in (principal.agent_id, principal.delegated_by):
        return
    raise PermissionDeniedError(
        "only the session's creator (or their sub-agents) and admins may lock it exclusively",
        created_by=session_creator,
    )


def is_own_delegate(principal: Principal, agent_id: str) -> bool:
    """Whether ``agent_id`` is a sub-agent the caller delegated (an undelegated caller)."""
    prefix = principal.agent_id + DELEGATE_SEPARATOR
    return principal.session_id is None and agent_id.startswith(prefix)


def require_may_release(principal: Principal, holder: str) -> None:
    """Agents release their own locks; a delegator also those of its sub-agents
    (anyone else's need an admin's force_unlock)."""
    if holder != principal.agent_id and not is_own_delegate(principal, holder):
        raise PermissionDeniedError(
            "you may release only your own locks and your sub-agents'; admins use force_unlock",
            holder=holder,
        )


def require_may_revoke(principal: Principal, delegation: Delegation) -> None:
    if delegation.delegator != principal.agent_id and not principal.is_admin:
        raise PermissionDeniedError("only its delegator or an admin may revoke a token")


# --- API keys, tokens and delegation -----------------------------------------------------

# What a delegated token may carry.
DELEGABLE = frozenset({Permission.READ, Permission.WRITE})


def require_may_bind(agent_id: str, owner: IdentityOwner | None, holder: ApiKey | None) -> None:
    """A key bound by name may share an id with operators and other keys bound to it by
    name (a rotation), never take one a pattern key registered (``owner``, whose key is
    ``holder``): that id's notes and memory are the pattern key's agent's."""
    if owner is None or owner.key_name is None:
        return
    if holder is None or holder.binding.agent_id != agent_id:
        raise IdentityNotAllowedError(
            f"agent id {agent_id!r} was registered by the key {owner.key_name!r}; bind this "
            "key to another id",
            agent_id=agent_id,
            reason="owned",
        )


def granted_by_key(key: ApiKey, wanted: frozenset[Permission]) -> frozenset[Permission]:
    """What a token obtained with ``key`` carries: the permissions asked for that the key
    holds (a key holding none of them is refused)."""
    granted = wanted & key.permissions
    if not granted:
        raise PermissionDeniedError(
            "the API key allows none of the requested permissions",
            requested=sorted(p.value for p in wanted),
        )
    return granted


def require_may_refresh(principal: Principal) -> None:
    """A delegated token's delegator set its lifetime and must be able to revoke it: no
    extensions."""
    if principal.session_id is not None:
        raise PermissionDeniedError(
            "a delegated token cannot be refreshed; ask its delegator for a new one"
        )


def require_may_delegate(principal: Principal) -> None:
    """Delegating needs ``write``, and a delegated token cannot delegate further."""
    require(principal, Permission.WRITE)
    if principal.session_id is not None:
        raise PermissionDeniedError("a delegated token cannot delegate further")


def delegate_id(principal: Principal, name: str) -> str:
    """A sub-agent is named under its delegator, so no delegator can pose as another agent."""
    prefix = principal.agent_id + DELEGATE_SEPARATOR
    return name if name.startswith(prefix) else prefix + name


def require_delegate_type(principal: Principal, agent_type: str) -> None:
    """A sub-agent has its delegator's agent type (a key vouches for the types its agents
    may have; a sub-agent cannot widen that)."""
    if agent_type != principal.agent_type:
        raise IdentityNotAllowedError(
            f"a sub-agent has its delegator's agent type ({principal.agent_type})",
            agent_type=agent_type,
            reason="agent_type",
        )


def require_delegable(principal: Principal, permissions: frozenset[Permission]) -> None:
    """A delegated token carries read and write only, and only those its delegator holds."""
    if permissions - DELEGABLE:
        raise PermissionDeniedError(
            "delegated tokens carry read and write only",
            not_delegable=sorted(p.value for p in permissions - DELEGABLE),
        )
    beyond = permissions - principal.permissions
    if beyond:
        raise PermissionDeniedError(
            "a delegated token can carry only permissions you hold",
            not_held=sorted(p.value for p in beyond),
        )
