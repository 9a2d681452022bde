"""Cross-process delivery: read the change feed by id and replay other processes' events.

Events from this process reach the bus directly after commit; the relay publishes only
those written by other processes sharing the database, so nothing is heard twice. It reads
the feed when the store's change watch says another process may have committed
(PostgreSQL: a notification; SQLite: the database file's stat), and after a safety
interval in any case.
"""

from __future__ import annotations

import logging

import anyio

from shared_context_server.events.bus import EventBus
from shared_context_server.storage.store import Store

logger = logging.getLogger(__name__)


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
        async with self._store.watch_changes(self._interval) as watch:
            while True:
                try:
                    while await self.poll_once() == self._batch:
                        pass
                except Exception:
                    logger.exception("change feed read failed; retrying")
                    await anyio.sleep(self._interval)
                    continue
                await watch.wait()
