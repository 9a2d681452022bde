"""Named counters that hand out values in commit order."""

from __future__ import annotations

from typing import Protocol


class CounterRepository(Protocol):
    def next(self, name: str) -> int:
        """Bump the counter and return its new value (the row stays locked to commit)."""
        ...
