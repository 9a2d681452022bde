"""Background work: purge expired memory, archive sessions nobody has touched in a while,
anchor the audit trail's newest head outside the database."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import anyio

from shared_context_server.clock import Clock
from shared_context_server.events.bus import EventBus
from shared_context_server.services.memory import purge_expired
from shared_context_server.services.sessions import archive_inactive_sessions
from shared_context_server.services.unit_of_work import commit
from shared_context_server.storage.store import Store

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SweepReport:
    memory_purged: int
    sessions_archived: list[str]


class MaintenanceService:
    def __init__(
        self,
        store: Store,
        bus: EventBus,
        clock: Clock,
        *,
        archive_after_seconds: float,
        anchor: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._archive_after = timedelta(seconds=archive_after_seconds)
        self._anchor = anchor

    async def sweep(self) -> SweepReport:
        now = self._clock.now()
        purged = (await self._store.write(lambda tx: purge_expired(tx, now))).value
        before = now - self._archive_after
        archived = await commit(
            self._store, self._bus, lambda tx: archive_inactive_sessions(tx, before, now)
        )
        if self._anchor is not None:
            await self._anchor()  # after the sweep's own records
        return SweepReport(purged, archived)

    async def run(self, interval: float) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                logger.exception("maintenance sweep failed; retrying next interval")
            await anyio.sleep(interval)
