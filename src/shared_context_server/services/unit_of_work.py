"""Running a use case's steps as one unit of work, then telling subscribers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from shared_context_server.events.bus import EventBus
from shared_context_server.storage.store import Store
from shared_context_server.storage.unit_of_work import Transaction

T = TypeVar("T")


async def commit(store: Store, bus: EventBus, work: Callable[[Transaction], T]) -> T:
    """Run ``work`` in one write transaction; after it commits, publish its changes'
    events (a change that rolled back is never heard of)."""
    done = await store.write(work)
    for event in done.events:
        bus.publish(event)
    return done.value
