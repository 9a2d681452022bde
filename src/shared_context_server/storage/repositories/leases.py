"""Leases: work one process of the database does at a time."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class LeaseRepository(Protocol):
    def claim(self, name: str, holder: str, now: datetime, until: datetime) -> bool:
        """Hold the lease ``name`` until ``until`` if it is free, lapsed (at ``now``) or
        already ``holder``'s: whether ``holder`` holds it now."""
        ...
