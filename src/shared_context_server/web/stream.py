"""The dashboard's live streams: Server-Sent Events from the change feed.

Every stream filters the process's shared window of the feed (``LiveFeed``) by the
access rules (``can_hear``, the viewer's read scope), so a viewer hears only of what they
may read, and a change costs one database read however many streams are open. Each event
carries its feed position as its ``id``: a browser that reconnects sends ``Last-Event-ID``
and resumes right after the last event it got, nothing lost or repeated. The page passes
the position it was read at, so nothing between the page and the stream is missed either.
The viewer's sign-in is checked again whenever the stream wakes: a revoked or expired one
ends the stream.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio

from shared_context_server.app import App
from shared_context_server.domain.access import can_hear, read_scope
from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.models import Message, Visibility
from shared_context_server.errors import DomainError
from shared_context_server.web.signin import Viewer

# A wait's length, and so how often a quiet stream says it is alive (and the sign-in is
# checked again).
WAIT_SECONDS = 15.0
RETRY_MS = 2_000


def frame(event: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


class StreamSlots:
    """Open streams per identity (its delegator's, for a sub-agent), at most ``limit``."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._open: dict[str, int] = {}

    def full(self, key: str) -> bool:
        return self._open.get(key, 0) >= self._limit

    @contextmanager
    def held(self, key: str) -> Iterator[None]:
        """One slot while the stream runs (taken as it starts: a stream whose client left
        before its first byte never holds one)."""
        self._open[key] = self._open.get(key, 0) + 1
        try:
            yield
        finally:
            left = self._open[key] - 1
            if left:
                self._open[key] = left
            else:
                del self._open[key]


async def session_events(
    app: App,
    viewer: Viewer,
    session_id: str | None,
    cursor: int,
    fragment: Callable[[Message], str],
    signed_in: Callable[[], Awaitable[bool]],
) -> AsyncIterator[bytes]:
    """The viewer's events of ``session_id`` (None: of every session) after ``cursor``,
    from the process's shared window of the feed (``LiveFeed``), or from the viewer's own
    read while it is further behind than the window reaches."""
    yield f"retry: {RETRY_MS}\n\n".encode()
    principal = viewer.principal
    scope = read_scope(principal)

    def wanted(event: ChangeEvent) -> bool:
        in_scope = session_id is None or event.session_id == session_id
        return in_scope and can_hear(principal, event)

    while True:
        entries = await app.live_feed.after(cursor)
        if entries is None:  # behind the window: its own backlog, a batch at a time
            batch = await app.updates.wait(
                principal, session_id=session_id, cursor=cursor, timeout_seconds=0
            )
            for update in batch.updates:
                message = update.message
                if message is None and update.event.kind is EventKind.VISIBILITY_CHANGED:
                    message = await _readable(app, viewer, update.event)
                yield await _frame(app, viewer, update.event, message, fragment)
            cursor = batch.next_cursor
            continue
        for entry in entries:
            cursor = entry.event.id
            if wanted(entry.event):
                seen = entry.message if entry.message and scope.allows(entry.message) else None
                yield await _frame(app, viewer, entry.event, seen, fragment)
        if not entries:
            with anyio.move_on_after(WAIT_SECONDS) as idle:
                await app.live_feed.news(session_id)
            if idle.cancelled_caught:
                yield b": alive\n\n"
        if not await signed_in():  # a cached verification, dropped at once on revocation
            yield frame("signed-out", {})
            return


async def _readable(app: App, viewer: Viewer, event: ChangeEvent) -> Message | None:
    try:
        return await app.messages.get(viewer.principal, event.message_id or 0)
    except DomainError:
        return None


async def _frame(
    app: App,
    viewer: Viewer,
    event: ChangeEvent,
    message: Message | None,
    fragment: Callable[[Message], str],
) -> bytes:
    """``message``: the one the change names, if the viewer may read it now."""
    if event.kind in (EventKind.MESSAGE_ADDED, EventKind.VISIBILITY_CHANGED) and event.message_id:
        data: dict[str, Any] = {
            "id": event.message_id,
            "session": event.session_id,
            "parent": message.parent_message_id if message else None,
            "html": fragment(message) if message else None,  # None: hidden from this viewer
            # How the count of messages the viewer may see changes (the sessions list).
            "delta": int(message is not None) - int(_was_visible(viewer, event)),
        }
        return frame("post", data, event.id)
    if event.kind is EventKind.SESSION_UPDATED:
        session = await app.sessions.get(viewer.principal, event.session_id)
        return frame("session", {"session": session.id, "status": session.status.value}, event.id)
    data = {"kind": event.kind.value, "agent_id": event.agent_id, **event.payload}
    return frame("activity", data, event.id)


def _was_visible(viewer: Viewer, event: ChangeEvent) -> bool:
    """Whether the viewer could see the message before this change (never, before it was
    added)."""
    old = (
        event.payload.get("old_visibility") if event.kind is EventKind.VISIBILITY_CHANGED else None
    )
    if old is None or event.sender_type is None:
        return False
    scope = read_scope(viewer.principal)
    return scope.allows_posted(event.agent_id, event.sender_type, Visibility(old))
