"""The audit trail: appended inside the transaction of each change (see SqlBase._write)."""

from __future__ import annotations

from shared_context_server.domain.audit import AuditEvent
from shared_context_server.storage.sql_base import SqlBase, threaded


class AuditRows(SqlBase):
    @threaded
    def append_audit(self, event: AuditEvent) -> None:
        """Record an event that changes nothing else (a failed login, an admin read)."""
        with self._write(event):
            pass
