"""The audit trail: a keyed hash chain of records."""

from __future__ import annotations

from typing import Protocol

from shared_context_server.domain.audit import AuditEvent


class AuditRepository(Protocol):
    def append(self, event: AuditEvent) -> None:
        """Chain ``event`` onto the trail (the unit of work calls it at commit)."""
        ...
