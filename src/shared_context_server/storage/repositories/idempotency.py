"""Results remembered under idempotency keys."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from shared_context_server.domain.idempotency import Remembered


class IdempotencyRepository(Protocol):
    def find(self, agent_id: str, operation: str, key: str, now: datetime) -> Remembered | None: ...

    def remember(
        self,
        agent_id: str,
        operation: str,
        key: str,
        remembered: Remembered,
        now: datetime,
    ) -> None:
        """Record (or replace an expired) result, kept for ``idempotency.WINDOW``."""
        ...

    def delete_expired(self, now: datetime) -> None:
        """Forget results whose window has passed by ``now``."""
        ...
