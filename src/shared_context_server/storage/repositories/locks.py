"""Session locks."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class LockRepository(Protocol):
    def exclusive_holder(self, session_id: str, other_than: str, now: datetime) -> str | None:
        """Another agent's live exclusive lock on the session: its holder, if any."""
        ...
