"""One reader of the change feed per process for many live readers (the dashboard's
streams): each commit is read once, with the messages it names, and kept in a short
window that every reader filters by its own access, instead of each reader querying the
database for every change.

A reader resumes after a feed position. If the window still covers it, the window serves
it; if not (it is further behind than the window reaches), ``after`` says so and the
reader reads its backlog itself (``UpdateService.wait``), then comes back.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import anyio

from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.models import Message
from shared_context_server.events.bus import EventBus
from shared_context_server.storage.store import Store
from shared_context_server.storage.unit_of_work import Snapshot

BATCH = 200
# Changes kept for readers; a message's content is kept with its change, so the window
# is bounded in changes (and so in memory, by the content limit).
WINDOW = 512
_WITH_MESSAGE = (EventKind.MESSAGE_ADDED, EventKind.VISIBILITY_CHANGED)


@dataclass(frozen=True, slots=True)
class Entry:
    event: ChangeEvent
    # The message the change names, as it was read just after the change (None if none).
    message: Message | None


def _read(tx: Snapshot, after_id: int, limit: int) -> tuple[list[ChangeEvent], list[Message]]:
    events = tx.feed.after(after_id, limit)
    ids = [e.message_id for e in events if e.kind in _WITH_MESSAGE and e.message_id]
    return events, tx.feed.messages_by_id(ids) if ids else []


class LiveFeed:
    def __init__(self, store: Store, bus: EventBus, window: int = WINDOW) -> None:
        self._store = store
        self._entries: deque[Entry] = deque(maxlen=window)
        # Everything after ``_floor`` up to ``_position`` is in the window.
        self._floor: int | None = None
        self._position = 0
        self._dirty = True
        self._lock = anyio.Lock()
        # Readers wait for news of one session, or (key None) of any.
        self._news: dict[str | None, anyio.Event] = {}
        bus.subscribe(self._heard)

    def _heard(self, event: ChangeEvent) -> None:
        self._dirty = True
        for key in (None, event.session_id):
            news = self._news.pop(key, None)
            if news is not None:
                news.set()

    async def _refresh(self) -> None:
        """Read what was committed since the last read, once for every reader."""
        async with self._lock:
            if self._floor is None:
                self._position = await self._store.read(lambda tx: tx.feed.latest_id())
                self._floor = self._position
            while self._dirty:
                self._dirty = False
                read = functools.partial(_read, after_id=self._position, limit=BATCH)
                events, messages = await self._store.read(read)
                by_id = {m.id: m for m in messages}
                for event in events:
                    if len(self._entries) == self._entries.maxlen:
                        self._floor = self._entries[0].event.id
                    self._entries.append(Entry(event, by_id.get(event.message_id or 0)))
                if events:
                    self._position = events[-1].id
                self._dirty = self._dirty or len(events) == BATCH

    async def after(self, cursor: int) -> Sequence[Entry] | None:
        """The changes after ``cursor`` now (maybe none); None if the window no longer
        reaches back to ``cursor``."""
        if self._dirty or self._floor is None:
            await self._refresh()
        assert self._floor is not None
        if cursor < self._floor:
            return None
        newer: list[Entry] = []
        for entry in reversed(self._entries):  # in id order: the new ones are at the end
            if entry.event.id <= cursor:
                break
            newer.append(entry)
        newer.reverse()
        return newer

    async def news(self, session_id: str | None = None) -> None:
        """Until a change of ``session_id`` (None: of any session) is committed, in any
        process. Callers bound the wait (``anyio.move_on_after``); a reader then asks
        ``after`` again, which reads what is new once for everyone."""
        if self._dirty:  # committed since the last read: the reader may not have it yet
            return
        news = self._news.get(session_id)
        if news is None:
            news = self._news[session_id] = anyio.Event()
        await news.wait()
