"""Background work: purge expired memory, archive sessions nobody has touched in a while,
anchor the audit trail's newest head outside the database.

However many server processes share the database, one sweeps at a time: the one holding
the maintenance lease, renewed every interval and taken over by another process once it
lapses (LEASE_INTERVALS intervals after its holder stopped renewing it).
"""

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
from shared_context_server.storage.unit_of_work import Transaction

logger = logging.getLogger(__name__)

LEASE = "maintenance"
LEASE_INTERVALS = 3


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
        before = now - self._archive_after

        def sweeping(tx: Transaction) -> SweepReport:
            """One unit of work: expired memory goes, then idle sessions are archived."""
            purged = purge_expired(tx, now)
            return SweepReport(purged, archive_inactive_sessions(tx, before, now))

        report = await commit(self._store, self._bus, sweeping)
        if self._anchor is not None:
            await self._anchor()  # after the sweep's own records
        return report

    async def lead(self, interval: float) -> bool:
        """Claim or renew this process's hold on the sweep: whether it is this one's turn."""
        now = self._clock.now()
        until = now + timedelta(seconds=LEASE_INTERVALS * interval)
        origin = self._store.origin
        claimed = await self._store.write(lambda tx: tx.leases.claim(LEASE, origin, now, until))
        return claimed.value

    async def run(self, interval: float) -> None:
        while True:
            try:
                if await self.lead(interval):
                    await self.sweep()
            except Exception:
                logger.exception("maintenance sweep failed; retrying next interval")
            await anyio.sleep(interval)
