"""Helpers to hear notifications through a real client, in either era."""

from __future__ import annotations

from typing import Any

import anyio
from mcp_types import ResourceListChangedNotification, ResourceUpdatedNotification


class Heard:
    """Collects what a 2025-era client's message handler receives."""

    def __init__(self) -> None:
        self.updated: list[str] = []
        self.list_changed = 0
        self._changed = anyio.Event()

    async def __call__(self, message: Any) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            self.updated.append(str(message.params.uri))
        elif isinstance(message, ResourceListChangedNotification):
            self.list_changed += 1
        else:
            return
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, predicate: Any) -> None:
        with anyio.fail_after(5):
            while not predicate():
                await self._changed.wait()


async def settle() -> None:
    """Give in-flight notifications a chance to arrive (used before asserting silence)."""
    for _ in range(20):
        await anyio.sleep(0.01)
