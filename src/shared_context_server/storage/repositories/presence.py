"""The presence repository."""

from __future__ import annotations

from typing import Protocol


class PresenceRepository(Protocol):
    pass
