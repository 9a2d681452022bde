"""Background work: purge expired memory, archive sessions nobody has touched in a while."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

import anyio

from shared_context_server.clock import Clock
from shared_context_server.events.bus import EventBus
from shared_context_server.storage.store import Store

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SweepReport:
    memory_purged: int
    sessions_archived: list[str]


class MaintenanceService:
    def __init__(
        self, store: Store, bus: EventBus, clock: Clock, *, archive_after_seconds: float
    ) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._archive_after = timedelta(seconds=archive_after_seconds)

    async def sweep(self) -> SweepReport:
        now = self._clock.now()
        purged = await self._store.purge_expired_memory(now)
        events = await self._store.archive_inactive_sessions(now - self._archive_after, now)
        for event in events:
            self._bus.publish(event)
        return SweepReport(purged, [event.session_id for event in events])

    async def run(self, interval: float) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                logger.exception("maintenance sweep failed; retrying next interval")
            await anyio.sleep(interval)
