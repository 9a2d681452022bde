"""Cross-process delivery: read the change feed by id and replay other processes' events.

Events from this process reach the bus directly after commit; the relay publishes only
those written by other processes sharing the database, so nothing is heard twice.

Where the store offers a cheap change signal (a SQLite file's stat), the relay checks it
every ``interval`` and reads the feed only when another process moved it, and at least
every ``FULL_POLL_SECONDS`` in any case; otherwise it reads the feed every ``interval``.
"""

from __future__ import annotations

import logging
import time

import anyio

from shared_context_server.events.bus import EventBus
from shared_context_server.storage.store import Store

logger = logging.getLogger(__name__)

FULL_POLL_SECONDS = 1.0


class FeedRelay:
    def __init__(self, store: Store, bus: EventBus, *, interval: float, batch: int = 500) -> None:
        self._store = store
        self._bus = bus
        self._interval = interval
        self._batch = batch
        self._last_id = 0

    async def start_position(self) -> None:
        self._last_id = await self._store.read(lambda tx: tx.feed.latest_id())

    async def poll_once(self) -> int:
        """Publish foreign events newer than the last seen; returns how many were read."""
        after, batch = self._last_id, self._batch
        events = await self._store.read(lambda tx: tx.feed.after(after, batch))
        for event in events:
            self._last_id = event.id
            if event.origin != self._store.origin:
                self._bus.publish(event)
        return len(events)

    async def run(self) -> None:
        seen: object | None = None
        polled = 0.0
        while True:
            # Taken before reading, so a commit during the read shows as a change next time.
            signal = self._store.change_signal()
            due = time.monotonic() - polled > FULL_POLL_SECONDS
            if signal is None or due or (signal[0] != seen and not signal[1]):
                try:
                    while await self.poll_once() == self._batch:
                        pass
                    polled = time.monotonic()
                    seen = signal and signal[0]
                except Exception:
                    logger.exception("change feed poll failed; retrying")
            else:
                seen = signal[0]  # unchanged, or changed by our own commit only
            await anyio.sleep(self._interval)
