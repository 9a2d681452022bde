"""Whether the database takes writes: the latest write's outcome and a tiny probe."""

from __future__ import annotations

from shared_context_server.storage import dialects
from shared_context_server.storage.sql_base import SqlBase, threaded

PROBE_COUNTER = "health.write_probe"


class HealthRows(SqlBase):
    @threaded
    def probe_write(self) -> None:
        """Bump one counter and commit: a full disk, a read-only or an unreachable database
        refuse it (STORAGE_UNAVAILABLE), as they refuse every other write."""
        with self._write() as conn:
            dialects.next_counter(conn, PROBE_COUNTER)
