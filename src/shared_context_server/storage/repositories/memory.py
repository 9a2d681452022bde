"""The memory repository."""

from __future__ import annotations

from typing import Protocol


class MemoryRepository(Protocol):
    pass
