"""The EventBus protocol and the in-process bus."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from shared_context_server.domain.events import ChangeEvent

logger = logging.getLogger(__name__)

Listener = Callable[[ChangeEvent], None]


class EventBus(Protocol):
    def publish(self, event: ChangeEvent) -> None:
        """Hand ``event`` to every listener. Listeners must not block."""
        ...

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Register ``listener``; returns an idempotent unsubscribe."""
        ...


class InProcessBus:
    """Synchronous fan-out; a failing listener is logged and skipped."""

    def __init__(self) -> None:
        self._listeners: dict[object, Listener] = {}

    def publish(self, event: ChangeEvent) -> None:
        for listener in list(self._listeners.values()):
            try:
                listener(event)
            except Exception:
                logger.exception("event listener failed; skipped")

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        token = object()
        self._listeners[token] = listener

        def unsubscribe() -> None:
            self._listeners.pop(token, None)

        return unsubscribe
