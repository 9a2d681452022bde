"""The session view's live stream: Server-Sent Events from the change feed.

It reads the feed through ``UpdateService.wait`` (the access rules of ``wait_for_updates``),
so a viewer hears only of what they may read. Each event carries its feed position as its
``id``: a browser that reconnects sends ``Last-Event-ID`` and resumes right after the last
event it got, nothing lost or repeated. The page passes the position it was read at, so
nothing between the page and the stream is missed either. The viewer's sign-in is checked
again between waits: a revoked or expired one ends the stream.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from shared_context_server.app import App
from shared_context_server.domain.access import read_scope
from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.models import Message, Visibility
from shared_context_server.errors import DomainError
from shared_context_server.services.updates import Update
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
    yield f"retry: {RETRY_MS}\n\n".encode()
    principal = viewer.principal
    while True:
        batch = await app.updates.wait(
            principal, session_id=session_id, cursor=cursor, timeout_seconds=WAIT_SECONDS
        )
        for update in batch.updates:
            yield await _frame(app, viewer, update, fragment)
        cursor = batch.next_cursor
        if batch.timed_out:
            yield b": alive\n\n"
        if not await signed_in():
            yield frame("signed-out", {})
            return


async def _frame(
    app: App, viewer: Viewer, update: Update, fragment: Callable[[Message], str]
) -> bytes:
    event = update.event
    if event.kind in (EventKind.MESSAGE_ADDED, EventKind.VISIBILITY_CHANGED) and event.message_id:
        message = update.message
        if message is None:  # a visibility change: the message as the viewer may see it now
            try:
                message = await app.messages.get(viewer.principal, event.message_id)
            except DomainError:
                message = None
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
