"""Messages: who may post what, who reads what, and paging."""

from __future__ import annotations

from typing import Any

import pytest

from shared_context_server.app import App
from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.models import Session, Visibility
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import (
    InvalidInputError,
    InvalidParentError,
    LimitExceededError,
    MessageNotFoundError,
    PermissionDeniedError,
    SessionNotFoundError,
)


@pytest.fixture
async def session(app: App, alice: Principal) -> Session:
    return await app.sessions.create(alice, "shared work")


async def test_the_sender_comes_from_the_identity(
    app: App, session: Session, carol: Principal, heard: list[ChangeEvent]
) -> None:
    message = await app.messages.add(
        carol, session.id, "found it", metadata={"file": "a.py"}, message_type="finding"
    )
    assert (message.sender, message.sender_type, message.visibility) == (
        "carol",
        "gemini",
        Visibility.PUBLIC,
    )
    assert (message.metadata, message.message_type) == ({"file": "a.py"}, "finding")
    assert heard[-1].kind is EventKind.MESSAGE_ADDED
    assert heard[-1].message_id == message.id


async def test_posting_needs_write(app: App, session: Session, reader: Principal) -> None:
    with pytest.raises(PermissionDeniedError):
        await app.messages.add(reader, session.id, "hello")


async def test_posting_admin_only_needs_admin(
    app: App, session: Session, alice: Principal, admin: Principal
) -> None:
    with pytest.raises(PermissionDeniedError):
        await app.messages.add(alice, session.id, "secret", visibility=Visibility.ADMIN_ONLY)
    message = await app.messages.add(admin, session.id, "secret", visibility=Visibility.ADMIN_ONLY)
    assert message.visibility is Visibility.ADMIN_ONLY


async def test_posting_to_an_unknown_session_is_session_not_found(
    app: App, alice: Principal
) -> None:
    with pytest.raises(SessionNotFoundError):
        await app.messages.add(alice, "session_nope", "hello")


async def test_oversized_or_blank_content_is_refused(
    app: App, session: Session, alice: Principal
) -> None:
    with pytest.raises(LimitExceededError):
        await app.messages.add(alice, session.id, "x" * 100_001)
    with pytest.raises(InvalidInputError):
        await app.messages.add(alice, session.id, " ")
    assert (await app.messages.page(alice, session.id)).messages == []


async def test_a_reply_needs_a_parent_the_sender_can_see(
    app: App, session: Session, alice: Principal, bob: Principal
) -> None:
    secret = await app.messages.add(bob, session.id, "note", visibility=Visibility.PRIVATE)
    with pytest.raises(InvalidParentError):
        await app.messages.add(alice, session.id, "re", parent_message_id=secret.id)
    with pytest.raises(InvalidParentError):
        await app.messages.add(alice, session.id, "re", parent_message_id=999_999)
    public = await app.messages.add(bob, session.id, "public")
    reply = await app.messages.add(alice, session.id, "re", parent_message_id=public.id)
    assert reply.parent_message_id == public.id


async def test_a_reply_to_another_sessions_message_is_refused(
    app: App, session: Session, alice: Principal
) -> None:
    elsewhere = await app.sessions.create(alice, "other")
    foreign = await app.messages.add(alice, elsewhere.id, "there")
    with pytest.raises(InvalidParentError):
        await app.messages.add(alice, session.id, "re", parent_message_id=foreign.id)


async def test_a_visible_message_can_be_read_by_id(
    app: App, session: Session, alice: Principal, bob: Principal
) -> None:
    message = await app.messages.add(alice, session.id, "hi", visibility=Visibility.AGENT_ONLY)
    assert await app.messages.get(bob, message.id) == message


async def test_an_invisible_message_does_not_exist_for_the_reader(
    app: App, session: Session, alice: Principal, carol: Principal, admin: Principal
) -> None:
    private = await app.messages.add(alice, session.id, "mine", visibility=Visibility.PRIVATE)
    agent_only = await app.messages.add(alice, session.id, "cl", visibility=Visibility.AGENT_ONLY)
    admin_only = await app.messages.add(admin, session.id, "ad", visibility=Visibility.ADMIN_ONLY)
    for reader, message_id in [
        (carol, private.id),
        (admin, private.id),  # admins do not read others' private notes
        (carol, agent_only.id),
        (alice, admin_only.id),
        (alice, 999_999),
    ]:
        with pytest.raises(MessageNotFoundError):
            await app.messages.get(reader, message_id)
    assert await app.messages.get(alice, private.id) == private


async def test_pages_follow_the_cursor_until_nothing_is_left(
    app: App, session: Session, alice: Principal
) -> None:
    posted = [(await app.messages.add(alice, session.id, f"m{i}")).id for i in range(5)]
    first = await app.messages.page(alice, session.id, limit=2)
    assert [m.id for m in first.messages] == posted[:2]
    assert (first.next_cursor, first.has_more) == (posted[1], True)
    second = await app.messages.page(alice, session.id, limit=2, cursor=first.next_cursor)
    assert [m.id for m in second.messages] == posted[2:4]
    assert second.has_more
    third = await app.messages.page(alice, session.id, limit=2, cursor=second.next_cursor)
    assert [m.id for m in third.messages] == posted[4:]
    assert (third.next_cursor, third.has_more) == (posted[4], False)
    empty = await app.messages.page(alice, session.id, limit=2, cursor=third.next_cursor)
    assert (empty.messages, empty.next_cursor, empty.has_more) == ([], posted[4], False)
    exact = await app.messages.page(alice, session.id, limit=5)
    assert not exact.has_more


async def test_pages_skip_invisible_messages_and_apply_filters(
    app: App, session: Session, alice: Principal, bob: Principal, carol: Principal
) -> None:
    a1 = await app.messages.add(alice, session.id, "a1")
    await app.messages.add(bob, session.id, "b-private", visibility=Visibility.PRIVATE)
    c1 = await app.messages.add(carol, session.id, "c1", message_type="finding")
    a2 = await app.messages.add(alice, session.id, "a2", visibility=Visibility.AGENT_ONLY)

    page = await app.messages.page(alice, session.id)
    assert [m.id for m in page.messages] == [a1.id, c1.id, a2.id]
    by_sender = await app.messages.page(alice, session.id, senders=["carol", "bob"])
    assert [m.id for m in by_sender.messages] == [c1.id]
    by_type = await app.messages.page(alice, session.id, message_type="finding")
    assert [m.id for m in by_type.messages] == [c1.id]
    by_visibility = await app.messages.page(alice, session.id, visibilities=[Visibility.AGENT_ONLY])
    assert [m.id for m in by_visibility.messages] == [a2.id]
    carol_sees = await app.messages.page(carol, session.id)
    assert [m.id for m in carol_sees.messages] == [a1.id, c1.id]


async def test_bad_page_arguments_are_refused(app: App, session: Session, alice: Principal) -> None:
    for kwargs in (
        {"limit": 0},
        {"limit": 1_001},
        {"offset": -1},
        {"cursor": -1},
        {"senders": ["not valid"]},
    ):
        with pytest.raises((InvalidInputError, LimitExceededError)):
            await app.messages.page(alice, session.id, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(SessionNotFoundError):
        await app.messages.page(alice, "session_nope")


async def test_a_time_range_must_not_end_before_it_starts(
    app: App, session: Session, alice: Principal
) -> None:
    now = app.clock.now()
    with pytest.raises(InvalidInputError):
        await app.messages.page(alice, session.id, since=now, until=now.replace(year=2000))


async def test_context_gives_the_newest_messages_oldest_first(
    app: App, session: Session, alice: Principal
) -> None:
    posted = [(await app.messages.add(alice, session.id, f"m{i}")).id for i in range(6)]
    found = await app.messages.context(alice, session.id, limit=3)
    assert found.session.id == session.id
    assert [m.id for m in found.messages] == posted[3:]
    assert found.feed_cursor == await app.store.read(lambda tx: tx.feed.latest_id())
    older = await app.messages.context(alice, session.id, limit=3, offset=2)
    assert [m.id for m in older.messages] == posted[1:4]


async def test_context_can_leave_out_private_notes(
    app: App, session: Session, alice: Principal
) -> None:
    public = await app.messages.add(alice, session.id, "public")
    note = await app.messages.add(alice, session.id, "note", visibility=Visibility.PRIVATE)
    with_notes = await app.messages.context(alice, session.id)
    assert [m.id for m in with_notes.messages] == [public.id, note.id]
    without = await app.messages.context(alice, session.id, include_private=False)
    assert [m.id for m in without.messages] == [public.id]


async def test_reading_needs_read(app: App, session: Session, alice: Principal) -> None:
    message = await app.messages.add(alice, session.id, "x")
    nobody = Principal("writer", "claude", frozenset())
    with pytest.raises(PermissionDeniedError):
        await app.messages.get(nobody, message.id)
    with pytest.raises(PermissionDeniedError):
        await app.messages.page(nobody, session.id)
    with pytest.raises(PermissionDeniedError):
        await app.messages.context(nobody, session.id)


async def test_a_sender_cannot_undo_an_admin_hide_that_raced_their_change(
    app: App, session: Session, alice: Principal, admin: Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = await app.messages.add(alice, session.id, "the staging password is in vault")
    looked = app.messages.get

    async def admin_hides_after_the_sender_looked(principal: Principal, message_id: int) -> Any:
        seen = await looked(principal, message_id)
        if principal is alice:
            await app.messages.set_visibility(admin, message_id, Visibility.ADMIN_ONLY, "hide")
        return seen

    monkeypatch.setattr(app.messages, "get", admin_hides_after_the_sender_looked)
    with pytest.raises(MessageNotFoundError):
        await app.messages.set_visibility(alice, message.id, Visibility.PRIVATE, "mine")
    monkeypatch.undo()
    assert (await app.messages.get(admin, message.id)).visibility is Visibility.ADMIN_ONLY
    log = await app.audit.get_log(admin, event_type="message.visibility_changed")
    assert [(r.metadata["old"], r.metadata["new"]) for r in log.records] == [
        ("public", "admin_only")
    ]
