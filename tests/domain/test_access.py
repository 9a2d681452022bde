"""THE visibility rule: the Python predicate and its SQL form agree, and permissions hold."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from shared_context_server.domain.access import (
    ReadScope,
    can_hear,
    can_read_message,
    read_scope,
    require,
    require_can_post,
    require_may_change_visibility,
    require_memory_owner,
)
from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.models import Message, Permission, Visibility
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import PermissionDeniedError
from shared_context_server.storage import migrate
from shared_context_server.storage.engine import create_engine
from shared_context_server.storage.repositories.messages import MessageQuery
from shared_context_server.storage.sql.rows import visible_to
from shared_context_server.storage.sql.store import SqlStore
from shared_context_server.storage.tables import messages
from tests.conftest import BACKENDS
from tests.storage.factories import (
    at,
    create_session,
    list_messages,
    make_session,
    new_message,
    post,
)

SENDERS = [("alice", "claude"), ("bob", "claude"), ("carol", "gemini")]
READER_IDS = ["alice", "bob", "carol", "stranger"]
READER_TYPES = ["claude", "gemini", "codex"]
SCOPES = [
    ReadScope(agent_id, agent_type, admin, include_private)
    for agent_id, agent_type, admin, include_private in itertools.product(
        READER_IDS, READER_TYPES, [False, True], [True, False]
    )
]
ALL = frozenset(Permission)
READ = frozenset({Permission.READ})
READ_WRITE = frozenset({Permission.READ, Permission.WRITE})


@pytest.fixture(params=BACKENDS)
async def every_kind_of_message(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[SqlStore, list[Message]]]:
    """A real database of each backend (a SQLite file, a fresh PostgreSQL schema) with a
    message for every sender, sender_type and visibility."""
    sqlite = f"sqlite:///{tmp_path / 'access.db'}"
    url = sqlite if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    store = SqlStore(create_engine(url))
    migrate.upgrade(store.engine)
    session = make_session()
    await create_session(store, session)
    posted = []
    senders = [(s, t) for s, _ in SENDERS for t in READER_TYPES]  # every sender with every type
    for i, ((sender, sender_type), visibility) in enumerate(itertools.product(senders, Visibility)):
        message, _ = await post(
            store,
            new_message(session.id, sender=sender, sender_type=sender_type, visibility=visibility),
            at(i),
        )
        posted.append(message)
    yield store, posted
    await store.close()


def _sql_visible_ids(store: SqlStore, scope: ReadScope) -> set[int]:
    with store.engine.connect() as conn:
        return set(conn.execute(sa.select(messages.c.id).where(visible_to(scope))).scalars())


async def test_the_sql_visibility_rule_agrees_with_the_python_predicate_for_every_case(
    every_kind_of_message: tuple[SqlStore, list[Message]],
) -> None:
    store, posted = every_kind_of_message
    assert len(posted) == len(SENDERS) * len(READER_TYPES) * len(Visibility)
    for scope in SCOPES:
        expected = {m.id for m in posted if scope.allows(m)}
        assert _sql_visible_ids(store, scope) == expected, scope
        listed = await list_messages(store, MessageQuery(posted[0].session_id, scope, limit=1_000))
        assert {m.id for m in listed} == expected, scope


def _message(sender: str, sender_type: str, visibility: Visibility) -> Message:
    return Message(
        id=1,
        session_id="s",
        sender=sender,
        sender_type=sender_type,
        content="c",
        metadata={},
        message_type="message",
        visibility=visibility,
        parent_message_id=None,
        created_at=at(0),
    )


@pytest.mark.parametrize(
    ("visibility", "sender", "sender_type", "reader", "visible"),
    [
        (Visibility.PUBLIC, "bob", "gemini", Principal("alice", "claude", READ), True),
        (Visibility.PRIVATE, "alice", "claude", Principal("alice", "claude", READ), True),
        (Visibility.PRIVATE, "bob", "claude", Principal("alice", "claude", READ), False),
        (Visibility.PRIVATE, "bob", "claude", Principal("root", "claude", ALL), False),
        (Visibility.AGENT_ONLY, "bob", "claude", Principal("alice", "claude", READ), True),
        (Visibility.AGENT_ONLY, "bob", "gemini", Principal("alice", "claude", READ), False),
        (Visibility.AGENT_ONLY, "bob", "gemini", Principal("root", "claude", ALL), False),
        (Visibility.ADMIN_ONLY, "bob", "claude", Principal("alice", "claude", READ), False),
        (Visibility.ADMIN_ONLY, "bob", "claude", Principal("root", "gemini", ALL), True),
    ],
    ids=[
        "public-everyone",
        "private-own",
        "private-others",
        "private-not-even-admin",
        "agent-only-same-type",
        "agent-only-other-type",
        "agent-only-admin-of-other-type",
        "admin-only-non-admin",
        "admin-only-admin",
    ],
)
def test_who_reads_which_message(
    visibility: Visibility, sender: str, sender_type: str, reader: Principal, visible: bool
) -> None:
    assert can_read_message(reader, _message(sender, sender_type, visibility)) is visible


def test_a_read_scope_can_leave_out_own_private_notes_and_admin_only_messages() -> None:
    root = Principal("root", "gemini", ALL)
    scope = read_scope(root, include_private=False, include_admin_only=False)
    assert not scope.allows(_message("root", "gemini", Visibility.PRIVATE))
    assert not scope.allows(_message("bob", "claude", Visibility.ADMIN_ONLY))
    assert scope.allows(_message("bob", "gemini", Visibility.AGENT_ONLY))
    # include_admin_only gives nothing to a non-admin.
    assert not read_scope(Principal("a", "claude", READ)).admin


def test_message_events_are_heard_only_by_those_who_may_read_the_message() -> None:
    event = ChangeEvent(
        id=1,
        kind=EventKind.MESSAGE_ADDED,
        session_id="s",
        agent_id="bob",
        message_id=7,
        sender_type="claude",
        visibility=Visibility.PRIVATE,
    )
    assert can_hear(Principal("bob", "claude", READ), event)
    assert not can_hear(Principal("alice", "claude", READ), event)
    assert not can_hear(Principal("bob", "claude", frozenset({Permission.WRITE})), event)


def test_session_events_reach_every_reader_but_not_those_without_read() -> None:
    event = ChangeEvent(id=1, kind=EventKind.SESSION_UPDATED, session_id="s", agent_id="bob")
    assert can_hear(Principal("anyone", "codex", READ), event)
    assert not can_hear(Principal("anyone", "codex", frozenset()), event)


def test_a_missing_permission_is_refused_with_what_was_needed_and_granted() -> None:
    with pytest.raises(PermissionDeniedError) as raised:
        require(Principal("a", "claude", READ), Permission.WRITE)
    assert raised.value.details == {"required": "write", "granted": ["read"]}
    require(Principal("a", "claude", READ), Permission.READ)


@pytest.mark.parametrize("visibility", list(Visibility))
def test_posting_needs_write(visibility: Visibility) -> None:
    with pytest.raises(PermissionDeniedError):
        require_can_post(Principal("a", "claude", READ), visibility)


def test_posting_admin_only_needs_admin_too() -> None:
    with pytest.raises(PermissionDeniedError):
        require_can_post(Principal("a", "claude", READ_WRITE), Visibility.ADMIN_ONLY)
    require_can_post(Principal("a", "claude", READ_WRITE), Visibility.PRIVATE)
    require_can_post(Principal("root", "claude", ALL), Visibility.ADMIN_ONLY)


def test_a_visibility_change_is_the_senders_or_an_admins_and_admin_only_is_an_admins() -> None:
    alices = _message("alice", "claude", Visibility.PUBLIC)
    alice = Principal("alice", "claude", READ_WRITE)
    require_may_change_visibility(alice, alices, Visibility.PRIVATE)
    with pytest.raises(PermissionDeniedError):
        require_may_change_visibility(alice, alices, Visibility.ADMIN_ONLY)
    with pytest.raises(PermissionDeniedError):
        require_may_change_visibility(
            Principal("alice", "claude", READ), alices, Visibility.PRIVATE
        )
    with pytest.raises(PermissionDeniedError):
        require_may_change_visibility(
            Principal("bob", "claude", READ_WRITE), alices, Visibility.PRIVATE
        )
    root = Principal("root", "claude", ALL)
    require_may_change_visibility(root, alices, Visibility.PRIVATE)
    require_may_change_visibility(root, alices, Visibility.ADMIN_ONLY)


def test_memory_is_its_owners_alone_even_against_admins() -> None:
    require_memory_owner(Principal("alice", "claude", READ), "alice")
    with pytest.raises(PermissionDeniedError):
        require_memory_owner(Principal("root", "claude", ALL), "alice")
