"""Waiting for news: a bounded long-poll on the change feed, for clients that ignore
resource notifications. What a waiter receives goes through the same access rules."""

from __future__ import annotations

import functools
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio

from shared_context_server.clock import Clock
from shared_context_server.domain.access import can_hear, read_scope, require
from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.limits import check_int
from shared_context_server.domain.models import Message, Permission
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import InvalidInputError, LimitExceededError
from shared_context_server.events.bus import EventBus
from shared_context_server.services.sessions import SessionService
from shared_context_server.storage.store import Store
from shared_context_server.storage.unit_of_work import Snapshot

BATCH = 200
# Feed rows one call reads at most, whatever the cursor: a reader far behind (cursor=0 on
# a long feed) gets ``has_more`` and pages on, instead of making the server read it all.
SCAN_BUDGET = 10 * BATCH
Progress = Callable[[float, float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Update:
    event: ChangeEvent
    # The message itself for message events the caller may read now.
    message: Message | None = None


@dataclass(frozen=True, slots=True)
class UpdateBatch:
    updates: list[Update]
    # Pass back as ``cursor`` to continue exactly after what was scanned.
    next_cursor: int
    timed_out: bool
    # More of the feed lies after next_cursor already: this call stopped at its scan
    # budget (or a full batch). Call again at once to read on.
    has_more: bool = False


class UpdateService:
    def __init__(
        self,
        store: Store,
        bus: EventBus,
        clock: Clock,
        sessions: SessionService,
        *,
        max_wait_seconds: float,
        scan_budget: int = SCAN_BUDGET,
    ) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._sessions = sessions
        self.max_wait_seconds = max_wait_seconds
        self._scan_budget = scan_budget

    async def cursor(self) -> int:
        """The feed position now: reads that return it let a waiter resume after them."""
        return await self._store.read(lambda tx: tx.feed.latest_id())

    async def wait(
        self,
        principal: Principal,
        *,
        session_id: str | None = None,
        cursor: int | None = None,
        timeout_seconds: float = 20.0,
        progress: Progress | None = None,
    ) -> UpdateBatch:
        require(principal, Permission.READ)
        if not 0 <= timeout_seconds <= self.max_wait_seconds:
            raise LimitExceededError(
                f"timeout_s must be between 0 and {self.max_wait_seconds}",
                field="timeout_s",
                limit=self.max_wait_seconds,
            )
        if cursor is not None and cursor < 0:
            raise InvalidInputError("cursor must not be negative", field="cursor")
        if cursor is not None:
            check_int(cursor, "cursor")
        if session_id is not None:
            await self._sessions.get(principal, session_id)

        def wanted(event: ChangeEvent) -> bool:
            in_scope = session_id is None or event.session_id == session_id
            return in_scope and can_hear(principal, event)

        arrived = anyio.Event()

        def listener(event: ChangeEvent) -> None:
            if wanted(event):
                arrived.set()

        # Listen before reading, so nothing committed in between is missed.
        unsubscribe = self._bus.subscribe(listener)
        try:
            position = await self.cursor() if cursor is None else cursor
            scan = await self._scan(position, wanted)
            deadline = anyio.current_time() + timeout_seconds
            waited = 0.0
            while not scan.found and not scan.more:
                remaining = deadline - anyio.current_time()
                if remaining <= 0:
                    return UpdateBatch([], scan.position, timed_out=True)
                with anyio.move_on_after(min(1.0, remaining)):
                    await arrived.wait()
                waited = min(timeout_seconds, waited + 1.0)
                if arrived.is_set():
                    arrived = anyio.Event()
                    scan = await self._scan(scan.position, wanted)
                elif progress is not None:
                    await progress(waited, math.ceil(timeout_seconds))
        finally:
            unsubscribe()
        updates = _with_messages(principal, scan.found, scan.added)
        return UpdateBatch(updates, scan.position, False, has_more=scan.more)

    async def _scan(self, position: int, wanted: Callable[[ChangeEvent], bool]) -> _Scan:
        """Feed events after ``position`` until some are wanted, the end of the feed or the
        scan budget, with the messages the wanted ones added."""
        found: list[ChangeEvent] = []
        added: dict[int, Message] = {}
        read = 0
        while True:
            events, messages = await self._store.read(
                functools.partial(read_updates, after_id=position, limit=BATCH, keep=wanted)
            )
            read += len(events)
            if events:
                position = events[-1].id
            found += [e for e in events if wanted(e)]
            added.update((m.id, m) for m in messages)
            full = len(events) == BATCH
            if found or not full or read >= self._scan_budget:
                return _Scan(position, found, added, more=full)


def read_updates(
    tx: Snapshot, after_id: int, limit: int, keep: Callable[[ChangeEvent], bool] | None = None
) -> tuple[list[ChangeEvent], list[Message]]:
    """Feed events after ``after_id`` and the messages they added, in one snapshot; with
    ``keep``, only the messages of the events it keeps are read (others' content never
    is)."""
    events = tx.feed.after(after_id, limit)
    if not events:
        return [], []
    if keep is not None:
        ids = [
            e.message_id
            for e in events
            if e.kind is EventKind.MESSAGE_ADDED and e.message_id and keep(e)
        ]
        return events, tx.feed.messages_by_id(ids)
    return events, tx.feed.added_messages(after_id, events[-1].id)


@dataclass(frozen=True, slots=True)
class _Scan:
    position: int
    found: list[ChangeEvent]
    added: dict[int, Message]
    # The last batch was full: the feed may go on after ``position``.
    more: bool


def _with_messages(
    principal: Principal, events: list[ChangeEvent], messages: dict[int, Message]
) -> list[Update]:
    scope = read_scope(principal)
    updates = []
    for event in events:
        message = messages.get(event.message_id) if event.message_id else None
        # Only messages the caller may read now (a later visibility change may hide it).
        if message is not None and not scope.allows(message):
            message = None
        updates.append(Update(event, message))
    return updates
