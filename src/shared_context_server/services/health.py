"""Is the database writable? What ``/health`` reports, cheaply.

The latest write of this process answers when there was one since the last check; when
there was none, a tiny committed write (a probe) does, at most once per ``probe_seconds``.
So an idle server probes every few seconds at most and a busy one never.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from shared_context_server.clock import Clock
from shared_context_server.errors import StorageUnavailableError
from shared_context_server.storage.store import Store, WriteOutcome

PROBE_SECONDS = 2.0
PROBE_COUNTER = "health.write_probe"


async def probe_write(store: Store) -> None:
    """Bump one counter and commit: a full disk, a read-only or an unreachable database
    refuse it (STORAGE_UNAVAILABLE), as they refuse every other write."""
    await store.write(lambda tx: tx.counters.next(PROBE_COUNTER))


@dataclass(frozen=True, slots=True)
class DatabaseHealth:
    writable: bool
    # Why not (disk_full, read_only, unreachable, busy, io_error); None when writable.
    reason: str | None = None


class HealthService:
    def __init__(self, store: Store, clock: Clock, *, probe_seconds: float = PROBE_SECONDS):
        self._store = store
        self._clock = clock
        self._probe_seconds = probe_seconds
        # seq 0: no write yet, so the first check probes.
        self._seen = WriteOutcome(seq=0)
        self._checked_at: float | None = None

    async def database(self) -> DatabaseHealth:
        outcome = self._store.write_outcome()
        now = self._clock.now().timestamp()
        if outcome.seq != self._seen.seq:
            self._checked_at = now  # writes since the last check tell
        elif self._checked_at is None or now - self._checked_at >= self._probe_seconds:
            with contextlib.suppress(StorageUnavailableError):  # noted in the outcome
                await probe_write(self._store)
            outcome = self._store.write_outcome()
            self._checked_at = now
        self._seen = outcome
        return DatabaseHealth(outcome.failure is None, outcome.failure)
